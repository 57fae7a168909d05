package main

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

func TestAdminCommands(t *testing.T) {
	t.Parallel()
	var got []string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		got = append(got, r.Method+" "+r.URL.Path+" "+string(b))
		switch r.URL.Path {
		case "/cluster":
			_, _ = w.Write([]byte(`{"scope":"demo","members":[{"name":"n1","role":"leader"},{"name":"n2","role":"replica"}]}`))
		case "/history":
			_, _ = w.Write([]byte(`[[1, 4294967296, "failover", "2026-11-26T03:00:00Z", "n2"]]`))
		case "/api/v1/switchover":
			w.Header().Set("X-Ramd-Job-Id", "abc")
			w.WriteHeader(http.StatusAccepted)
			_, _ = w.Write([]byte(`{"job_id":"abc","job_url":"/api/v1/jobs/abc"}`))
		case "/api/v1/jobs/abc":
			_, _ = w.Write([]byte(`{"id":"abc","kind":"switchover","state":"succeeded","phases":[{"name":"requested","at":"2026-11-26T03:00:00Z","node":"n1"},{"name":"promoted","at":"2026-11-26T03:00:01Z","node":"n2"}]}`))
		case "/api/v1/failover":
			w.WriteHeader(http.StatusPreconditionFailed)
			_, _ = w.Write([]byte(`{"error":"refused","detail":"candidate is not a member"}`))
		default:
			_, _ = w.Write([]byte(`{}`))
		}
	}))
	t.Cleanup(srv.Close)
	run1 := func(stdin string, args ...string) (int, string, string) {
		var out, errb bytes.Buffer
		code := runAdmin(context.Background(), args[0], append(args[1:], "--api", srv.URL), "", strings.NewReader(stdin), &out, &errb)
		return code, out.String(), errb.String()
	}
	if code, out, _ := run1("y\n", "switchover", "--candidate", "n2"); code != exitOK || !strings.Contains(out, "job abc") ||
		!strings.Contains(out, "promoted") || !strings.Contains(out, "switchover abc succeeded") {
		t.Fatalf("switchover: %d %q", code, out)
	}
	if !strings.Contains(strings.Join(got, "\n"), `POST /api/v1/switchover {"candidate":"n2","leader":"n1"}`) {
		t.Errorf("switchover request: %v", got)
	}
	if code, _, errs := run1("n\n", "switchover"); code != exitError || !strings.Contains(errs, "aborted") {
		t.Errorf("declined switchover: %d %q", code, errs)
	}
	if code, _, errs := run1("", "failover", "--candidate", "n9", "--force"); code != exitError || !strings.Contains(errs, "412") {
		t.Errorf("refused failover: %d %q", code, errs)
	}
	if code, _, _ := run1("", "failover"); code != exitUsage {
		t.Errorf("failover without candidate: %d", code)
	}
	if code, out, _ := run1("", "history"); code != exitOK || !strings.Contains(out, "1/0") || !strings.Contains(out, "n2") {
		t.Errorf("history: %d %q", code, out)
	}
	if code, _, _ := run1("", "pause"); code != exitOK || !strings.Contains(strings.Join(got, "\n"), `PATCH /config {"pause": true}`) {
		t.Errorf("pause: %d %v", code, got)
	}
	if code, _, _ := run1("", "switchover", "--scheduled", "tomorrow", "--force"); code != exitUsage {
		t.Errorf("bad schedule: %d", code)
	}
}
