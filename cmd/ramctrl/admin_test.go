package main

import (
	"bytes"
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/ramd-project/ramd/api/client"
	"github.com/ramd-project/ramd/consul"
	"github.com/ramd-project/ramd/daemon"
)

func TestAdminCommands(t *testing.T) {
	t.Parallel()
	srv := startAPI(t, "n1")
	srv.setCluster([]daemon.MemberStatus{member("n1", client.RoleLeader), member("n2", client.RoleReplica)}, false)
	n1 := srv.nodes["n1"]
	n1.history = []consul.HistoryEntry{{Timeline: 1, LSN: 4294967296, Reason: "failover", Timestamp: time.Date(2026, 11, 26, 3, 0, 0, 0, time.UTC), NewLeader: "n2"}}
	n1.jobID = "abc"
	n1.jobs["abc"] = []consul.Job{{ID: "abc", Kind: "switchover", State: consul.JobSucceeded,
		Phases: []consul.JobPhase{phase("requested", 0, "n1"), phase("promoted", 1, "n2")}}}
	run1 := func(stdin string, args ...string) (int, string, string) {
		var out, errb bytes.Buffer
		code := runAdmin(context.Background(), args[0], append(args[1:], "--api", srv.URL), "", strings.NewReader(stdin), &out, &errb)
		return code, out.String(), errb.String()
	}
	if code, out, _ := run1("y\n", "switchover", "--candidate", "n2"); code != exitOK || !strings.Contains(out, "job abc") ||
		!strings.Contains(out, "promoted") || !strings.Contains(out, "switchover abc succeeded") {
		t.Fatalf("switchover: %d %q", code, out)
	}
	if !strings.Contains(srv.log(), `POST /api/v1/switchover {"candidate":"n2","leader":"n1"}`) {
		t.Errorf("switchover request: %v", srv.log())
	}
	if code, _, errs := run1("n\n", "switchover"); code != exitError || !strings.Contains(errs, "aborted") {
		t.Errorf("declined switchover: %d %q", code, errs)
	}
	n1.mu.Lock()
	n1.refuse = fmt.Errorf("%w: n9: candidate is not a member", daemon.ErrBadCandidate)
	n1.mu.Unlock()
	if code, _, errs := run1("", "failover", "--candidate", "n9", "--force"); code != exitError || !strings.Contains(errs, "412") {
		t.Errorf("refused failover: %d %q", code, errs)
	}
	if code, _, _ := run1("", "failover"); code != exitUsage {
		t.Errorf("failover without candidate: %d", code)
	}
	if code, out, _ := run1("", "history"); code != exitOK || !strings.Contains(out, "1/0") || !strings.Contains(out, "n2") {
		t.Errorf("history: %d %q", code, out)
	}
	if code, _, _ := run1("", "pause"); code != exitOK || !strings.Contains(srv.log(), `PATCH /config {"pause":true}`) {
		t.Errorf("pause: %d %v", code, srv.log())
	}
	if code, _, _ := run1("", "switchover", "--scheduled", "tomorrow", "--force"); code != exitUsage {
		t.Errorf("bad schedule: %d", code)
	}
}
