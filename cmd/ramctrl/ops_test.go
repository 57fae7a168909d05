package main

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
)

// opsServer plays two members (n1 leader, n2 replica) on one test server: requests under
// /n2/ are n2's. It records every request and answers a job that ends after two reads.
func opsServer(t *testing.T) (*httptest.Server, func() []string) {
	t.Helper()
	var mu sync.Mutex
	var got []string
	jobReads := 0
	var srv *httptest.Server
	srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		mu.Lock()
		got = append(got, r.Method+" "+r.URL.Path+" "+string(b))
		mu.Unlock()
		path := strings.TrimPrefix(r.URL.Path, "/n2")
		switch {
		case path == "/cluster":
			_, _ = w.Write([]byte(`{"scope":"demo","members":[{"name":"n1","role":"leader","api_url":"` + srv.URL + `"},` +
				`{"name":"n2","role":"replica","api_url":"` + srv.URL + `/n2/patroni"}]}`))
		case path == "/restart" && r.URL.Path == "/restart":
			w.WriteHeader(http.StatusServiceUnavailable)
			_, _ = w.Write([]byte(`restart conditions are not satisfied`))
		case path == "/restart":
			_, _ = w.Write([]byte(`restarted successfully`))
		case path == "/reload":
			w.WriteHeader(http.StatusAccepted)
			_, _ = w.Write([]byte(`reload scheduled`))
		case path == "/api/v1/restart", path == "/api/v1/reinitialize":
			w.Header().Set("X-Ramd-Job-Id", "j1")
			w.WriteHeader(http.StatusAccepted)
			_, _ = w.Write([]byte(`{"job_id":"j1","job_url":"/api/v1/jobs/j1"}`))
		case path == "/api/v1/jobs/j1":
			mu.Lock()
			jobReads++
			done := jobReads >= 2
			mu.Unlock()
			if done {
				_, _ = w.Write([]byte(`{"id":"j1","kind":"rolling-restart","state":"succeeded","phases":[{"name":"requested","at":"2026-11-26T03:00:00Z","node":"n1"},{"name":"restarted n2","at":"2026-11-26T03:00:01Z","node":"n1"}]}`))
				return
			}
			_, _ = w.Write([]byte(`{"id":"j1","kind":"rolling-restart","state":"running","phases":[{"name":"requested","at":"2026-11-26T03:00:00Z","node":"n1"}]}`))
		default:
			http.NotFound(w, r)
		}
	}))
	t.Cleanup(srv.Close)
	return srv, func() []string {
		mu.Lock()
		defer mu.Unlock()
		return append([]string(nil), got...)
	}
}

func TestOpsCommands(t *testing.T) {
	t.Parallel()
	srv, requests := opsServer(t)
	run1 := func(stdin string, args ...string) (int, string, string) {
		var out, errb bytes.Buffer
		code := run(context.Background(), append(args, "--api", srv.URL), "", &out, &errb)
		if stdin != "" {
			t.Fatal("run reads os.Stdin; pass --force")
		}
		return code, out.String(), errb.String()
	}
	// A member restart with filters reaches that member's own API.
	code, out, errs := run1("", "restart", "n2", "--pending", "--role", "replica", "--pg-version", "16.2", "--force")
	if code != exitOK || !strings.Contains(out, "n2: restarted successfully") {
		t.Fatalf("restart n2: %d %q %q", code, out, errs)
	}
	if !strings.Contains(strings.Join(requests(), "\n"), `POST /n2/restart {"postgres_version":"16.2","restart_pending":true,"role":"replica"}`) {
		t.Errorf("restart request: %v", requests())
	}
	// A refused member restart exits 1 with the reason.
	if code, _, errs := run1("", "restart", "n1", "--force"); code != exitError || !strings.Contains(errs, "conditions are not satisfied") {
		t.Errorf("refused restart: %d %q", code, errs)
	}
	if code, _, errs := run1("", "restart", "n9", "--force"); code != exitError || !strings.Contains(errs, `no member "n9"`) {
		t.Errorf("unknown member: %d %q", code, errs)
	}
	if code, _, _ := run1("", "restart", "n2", "--scheduled", "tonight", "--force"); code != exitUsage {
		t.Errorf("bad schedule: %d", code)
	}
	if code, _, _ := run1("", "restart", "--role", "replica", "--force"); code != exitUsage {
		t.Errorf("cluster restart with --role: %d", code)
	}
	// The rolling restart is followed until its job ends, phases printed once each.
	code, out, errs = run1("", "restart", "--pending", "--force")
	if code != exitOK || strings.Count(out, "requested") != 1 || !strings.Contains(out, "restarted n2") || !strings.Contains(out, "succeeded") {
		t.Fatalf("rolling restart: %d %q %q", code, out, errs)
	}
	if !strings.Contains(strings.Join(requests(), "\n"), `POST /api/v1/restart {"in_place":false,"restart_pending":true}`) {
		t.Errorf("rolling restart request: %v", requests())
	}
	// reload goes to every member; reinit to the named one.
	if code, out, _ := run1("", "reload"); code != exitOK || !strings.Contains(out, "n1: reload scheduled") || !strings.Contains(out, "n2: reload scheduled") {
		t.Errorf("reload: %d %q", code, out)
	}
	if code, out, errs := run1("", "reinit", "n2", "--from-leader", "--force", "--wait=false"); code != exitOK || !strings.Contains(out, "job j1") {
		t.Errorf("reinit: %d %q %q", code, out, errs)
	}
	if !strings.Contains(strings.Join(requests(), "\n"), `POST /n2/api/v1/reinitialize {"force":true,"from_leader":true}`) {
		t.Errorf("reinit request: %v", requests())
	}
	if code, _, _ := run1("", "reinit", "--force"); code != exitUsage {
		t.Errorf("reinit without member: %d", code)
	}
}
