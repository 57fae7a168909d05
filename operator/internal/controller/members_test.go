package controller

import (
	"context"
	"encoding/json"
	"errors"
	"net"
	"net/http"
	"net/http/httptest"
	"strconv"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
)

func TestLagBytes(t *testing.T) {
	for raw, want := range map[string]int64{"0": 0, "4096": 4096, ` 12 `: 12} {
		got := ClusterMember{Lag: json.RawMessage(raw)}.LagBytes()
		if got == nil || *got != want {
			t.Errorf("lag %s: %v, want %d", raw, got, want)
		}
	}
	for _, raw := range []string{`"unknown"`, ``, `null`} {
		if got := (ClusterMember{Lag: json.RawMessage(raw)}).LagBytes(); got != nil {
			t.Errorf("lag %q: %d, want none", raw, *got)
		}
	}
}

func TestRoleOf(t *testing.T) {
	st := &ClusterStatus{Leader: "a", Members: []ClusterMember{
		{Name: "a", State: "running"}, {Name: "b", State: "streaming"}, {Name: "c", State: "running"},
		{Name: "d", State: "stopped"}, {Name: "e", State: "creating replica"},
	}}
	for name, want := range map[string]string{"a": RolePrimary, "b": RoleReplica, "c": RoleReplica, "d": "", "e": "", "zz": ""} {
		if got := RoleOf(st, name); got != want {
			t.Errorf("RoleOf(%s) = %q, want %q", name, got, want)
		}
	}
}

func TestDynamicConfig(t *testing.T) {
	c := minimal("ns", "x")
	doc, err := DynamicConfig(c)
	if err != nil || len(doc) != 0 {
		t.Fatalf("empty spec: %v %v", doc, err)
	}
	c = full("ns", "x")
	doc, err = DynamicConfig(c)
	if err != nil {
		t.Fatal(err)
	}
	raw, err := json.Marshal(doc)
	if err != nil {
		t.Fatal(err)
	}
	want := `{"backup":{"schedules":{"full":{"cron":"0 1 * * 0"}},"tool":"pgbackrest"},"postgresql":{"parameters":{"max_connections":"200","work_mem":"8MB"}},"synchronous_mode":"on","synchronous_node_count":1}`
	if string(raw) != want {
		t.Errorf("dynamic configuration\n got %s\nwant %s", raw, want)
	}
	c.Spec.Backup = &apiextensionsv1.JSON{Raw: []byte(`{`)}
	if _, err := DynamicConfig(c); err == nil {
		t.Error("broken backup JSON accepted")
	}
}

func TestHTTPRamdClient(t *testing.T) {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /api/v1/cluster", func(w http.ResponseWriter, _ *http.Request) {
		_, _ = w.Write([]byte(`{"leader":"m0","timeline":3,"members":[{"name":"m0","role":"leader","state":"running","timeline":3,"lag":0}],"node":{"backup":{"last_success":"2026-12-04T01:00:00Z"}}}`))
	})
	mux.HandleFunc("PATCH /config", func(w http.ResponseWriter, r *http.Request) {
		if u, p, _ := r.BasicAuth(); u != "admin" || p != "pw" {
			w.WriteHeader(http.StatusUnauthorized)
			return
		}
		w.WriteHeader(http.StatusUnprocessableEntity)
		_, _ = w.Write([]byte(`{"field":"postgresql.parameters.x"}`))
	})
	srv := httptest.NewServer(mux)
	defer srv.Close()
	_, portText, err := net.SplitHostPort(srv.Listener.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	port, err := strconv.Atoi(portText)
	if err != nil {
		t.Fatal(err)
	}
	h := &HTTPRamdClient{Port: port, Timeout: 2 * time.Second}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()

	if _, err := h.Status(ctx, nil); !errors.Is(err, ErrNoMemberAddress) {
		t.Errorf("no pods: %v, want ErrNoMemberAddress", err)
	}
	// A closed port is a connection error, not "no address".
	closed, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	deadPort := closed.Addr().(*net.TCPAddr).Port
	_ = closed.Close()
	dead := &HTTPRamdClient{Port: deadPort, Timeout: time.Second}
	pods := []corev1.Pod{{Status: corev1.PodStatus{PodIP: "127.0.0.1"}}}
	if _, err := dead.Status(ctx, pods); err == nil || errors.Is(err, ErrNoMemberAddress) {
		t.Errorf("closed port: %v, want a connection error", err)
	}
	// A pod without an address is skipped; the one with it answers.
	st, err := h.Status(ctx, []corev1.Pod{{}, {Status: corev1.PodStatus{PodIP: "127.0.0.1"}}})
	if err != nil {
		t.Fatal(err)
	}
	if st.Leader != "m0" || st.Timeline != 3 || len(st.Members) != 1 || st.Node.Backup == nil || st.Node.Backup.LastSuccess.IsZero() {
		t.Errorf("status %+v", st)
	}
	err = h.PatchConfig(ctx, pods, "admin", "pw", map[string]any{"x": 1})
	var refused *ConfigRefusedError
	if !errors.As(err, &refused) || refused.Body != `{"field":"postgresql.parameters.x"}` {
		t.Errorf("refusal: %v", err)
	}
	if err := h.PatchConfig(ctx, pods, "admin", "wrong", map[string]any{"x": 1}); err == nil || errors.As(err, &refused) {
		t.Errorf("wrong password: %v, want a plain error", err)
	}
}
