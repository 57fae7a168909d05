package controller

import (
	"context"
	"encoding/json"
	"errors"
	"net"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// TestHTTPRamdClientSwitchover checks the requests the operator sends for a switchover and
// how it reads ramd's answers, against two members on loopback addresses of their own.
func TestHTTPRamdClientSwitchover(t *testing.T) {
	type call struct{ member, body string }
	var mu sync.Mutex
	var calls []call
	member := func(name string, answer func(w http.ResponseWriter, r *http.Request)) *httptest.Server {
		mux := http.NewServeMux()
		mux.HandleFunc("POST /api/v1/switchover", func(w http.ResponseWriter, r *http.Request) {
			var b map[string]string
			_ = json.NewDecoder(r.Body).Decode(&b)
			raw, _ := json.Marshal(b)
			mu.Lock()
			calls = append(calls, call{name, string(raw)})
			mu.Unlock()
			if u, p, _ := r.BasicAuth(); u != apiUser || p != "pw" {
				w.WriteHeader(http.StatusUnauthorized)
				return
			}
			answer(w, r)
		})
		mux.HandleFunc("GET /api/v1/jobs/{id}", func(w http.ResponseWriter, r *http.Request) {
			if r.PathValue("id") != "j1" {
				w.WriteHeader(http.StatusNotFound)
				return
			}
			_, _ = w.Write([]byte(`{"id":"j1","kind":"switchover","from":"pg-0","to":"pg-1","state":"succeeded"}`))
		})
		srv := httptest.NewServer(mux)
		t.Cleanup(srv.Close)
		return srv
	}
	accept := func(w http.ResponseWriter, _ *http.Request) {
		w.WriteHeader(http.StatusAccepted)
		_, _ = w.Write([]byte(`{"job_id":"j1","job_url":"/api/v1/jobs/j1"}`))
	}
	refuse := func(w http.ResponseWriter, _ *http.Request) {
		w.WriteHeader(http.StatusPreconditionFailed)
		_, _ = w.Write([]byte(`{"error":"refused","detail":"daemon: candidate is not a member that can take over"}`))
	}
	pod := func(name string, srv *httptest.Server) corev1.Pod {
		host, port, err := net.SplitHostPort(srv.Listener.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		p := corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: name}, Status: corev1.PodStatus{PodIP: host}}
		p.Spec.Containers = []corev1.Container{{Name: "ramd", Ports: []corev1.ContainerPort{{Name: "api", ContainerPort: int32(mustAtoi(t, port))}}}}
		return p
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	h := &HTTPRamdClient{Timeout: 2 * time.Second}

	// The leader's pod is asked first, whatever the order of the list.
	pods := []corev1.Pod{pod("pg-0", member("pg-0", refuse)), pod("pg-1", member("pg-1", accept))}
	id, err := h.Switchover(ctx, pods, apiUser, "pw", "pg-1", "pg-0")
	if err != nil || id != "j1" {
		t.Fatalf("switchover: %q, %v", id, err)
	}
	if len(calls) != 1 || calls[0] != (call{"pg-1", `{"candidate":"pg-0","leader":"pg-1"}`}) {
		t.Errorf("calls %v", calls)
	}
	// A refusal is final: the other members are not asked.
	calls = nil
	_, err = h.Switchover(ctx, pods, apiUser, "pw", "pg-0", "pg-7")
	var refused *SwitchoverRefusedError
	if !errors.As(err, &refused) || refused.Code != http.StatusPreconditionFailed || len(calls) != 1 {
		t.Errorf("refusal: %v after %v", err, calls)
	}
	// A wrong password is not a refusal: the next member is tried, and the error tells.
	calls = nil
	if _, err := h.Switchover(ctx, pods, apiUser, "bad", "pg-0", ""); err == nil || errors.As(err, &refused) || len(calls) != 2 {
		t.Errorf("wrong password: %v after %v", err, calls)
	}
	if _, err := h.Switchover(ctx, nil, apiUser, "pw", "pg-0", ""); !errors.Is(err, ErrNoMemberAddress) {
		t.Errorf("no pods: %v", err)
	}

	j, err := h.Job(ctx, pods, "j1")
	if err != nil || j.State != JobSucceeded || j.From != "pg-0" || j.To != "pg-1" {
		t.Errorf("job: %+v, %v", j, err)
	}
	if _, err := h.Job(ctx, pods, "gone"); !errors.Is(err, ErrJobNotFound) {
		t.Errorf("unknown job: %v, want ErrJobNotFound", err)
	}
}

func mustAtoi(t *testing.T, s string) int {
	t.Helper()
	var n int
	if err := json.Unmarshal([]byte(s), &n); err != nil {
		t.Fatal(err)
	}
	return n
}
