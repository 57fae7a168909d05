package controller

import (
	"context"
	"encoding/json"
	"errors"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	ramdv1 "github.com/ramd-project/ramd/operator/api/v1alpha1"
)

func TestPlanRestart(t *testing.T) {
	now := time.Date(2026, 12, 4, 12, 0, 0, 0, time.UTC)
	base := restartInput{Policy: ramdv1.RestartRolling, Pending: []string{"pg-1", "pg-0"}, Leader: "pg-0", Now: now}
	with := func(f func(*restartInput)) restartInput { in := base; f(&in); return in }
	tests := []struct {
		name string
		in   restartInput
		want restartAction
		says string
	}{
		{"nothing pending", with(func(in *restartInput) { in.Pending = nil }), restartNone, "no member"},
		{"pending: ask", base, restartRequest, "pg-1, pg-0"},
		{"empty policy is Rolling (objects made before the field)", with(func(in *restartInput) { in.Policy = "" }), restartRequest, "asking"},
		{"a job runs: follow it, even when nothing shows pending any more", with(func(in *restartInput) { in.Job = "j1"; in.Pending = nil }), restartFollow, "j1"},
		{"manual", with(func(in *restartInput) { in.Policy = ramdv1.RestartManual }), restartHold, "ramctrl restart"},
		{"no leader", with(func(in *restartInput) { in.Leader = "" }), restartHold, "leader lock"},
		{"a switchover runs", with(func(in *restartInput) { in.Busy = "the requested switchover" }), restartHold, "switchover"},
		{"failed a minute ago", with(func(in *restartInput) { in.LastEnd = now.Add(-time.Minute); in.LastFailed = true }), restartHold, "failed"},
		{"failed at exactly the retry interval", with(func(in *restartInput) { in.LastEnd = now.Add(-restartRetry); in.LastFailed = true }), restartRequest, "asking"},
		{"succeeded just now, still listed", with(func(in *restartInput) { in.LastEnd = now.Add(-10 * time.Second) }), restartHold, "just ended"},
		{"succeeded a while ago, pending again (a new change)", with(func(in *restartInput) { in.LastEnd = now.Add(-restartSettle) }), restartRequest, "asking"},
	}
	for _, tt := range tests {
		got, why := planRestart(tt.in)
		if got != tt.want || !strings.Contains(why, tt.says) {
			t.Errorf("%s: %v %q, want %v saying %q", tt.name, got, why, tt.want, tt.says)
		}
	}
}

func TestBusyWith(t *testing.T) {
	c := &ramdv1.PostgreSQLCluster{}
	if b := busyWith(c); b != "" {
		t.Errorf("idle cluster busy with %q", b)
	}
	c.Status.Conditions = []metav1.Condition{{Type: ConditionScaleDown, Status: metav1.ConditionTrue}}
	if b := busyWith(c); b != "" {
		t.Errorf("a finished scale-down counts as busy: %q", b)
	}
	c.Status.Conditions = []metav1.Condition{{Type: ramdv1.ConditionRollingUpdate, Status: metav1.ConditionTrue}}
	if b := busyWith(c); !strings.Contains(b, "rolling update") {
		t.Errorf("rolling update: %q", b)
	}
	c.Annotations = map[string]string{AnnotationSwitchoverJob: "j9"}
	if b := busyWith(c); !strings.Contains(b, "switchover") {
		t.Errorf("switchover: %q", b)
	}
}

// TestHTTPRamdClientRollingRestart: the request ramd's API gets and the job id taken back.
func TestHTTPRamdClientRollingRestart(t *testing.T) {
	var got map[string]any
	mux := http.NewServeMux()
	mux.HandleFunc("POST /api/v1/restart", func(w http.ResponseWriter, r *http.Request) {
		if u, p, _ := r.BasicAuth(); u != "admin" || p != "pw" {
			w.WriteHeader(http.StatusUnauthorized)
			return
		}
		if err := json.NewDecoder(r.Body).Decode(&got); err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		w.WriteHeader(http.StatusAccepted)
		_, _ = w.Write([]byte(`{"job_id":"r1","job_url":"/api/v1/jobs/r1"}`))
	})
	srv := httptest.NewServer(mux)
	defer srv.Close()
	h := &HTTPRamdClient{Port: srv.Listener.Addr().(*net.TCPAddr).Port, Timeout: 2 * time.Second}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	pods := []corev1.Pod{{ObjectMeta: metav1.ObjectMeta{Name: "pg-0"}, Status: corev1.PodStatus{PodIP: "127.0.0.1"}}}
	if _, err := h.RollingRestart(ctx, nil, "admin", "pw"); !errors.Is(err, ErrNoMemberAddress) {
		t.Errorf("no pods: %v", err)
	}
	id, err := h.RollingRestart(ctx, pods, "admin", "pw")
	if err != nil || id != "r1" {
		t.Fatalf("rolling restart: %q %v", id, err)
	}
	if got["restart_pending"] != true || len(got) != 1 {
		t.Errorf("request body %v, want only restart_pending true", got)
	}
	if _, err := h.RollingRestart(ctx, pods, "admin", "wrong"); err == nil || !strings.Contains(err.Error(), "401") {
		t.Errorf("wrong password: %v", err)
	}
}
