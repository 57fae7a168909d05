package main

import (
	"bytes"
	"context"
	"strings"
	"testing"

	"github.com/ramd-project/ramd/api/client"
	"github.com/ramd-project/ramd/consul"
	"github.com/ramd-project/ramd/daemon"
)

// opsServer serves two members, n1 leader (whose own restart is refused) and n2 replica
// (under /n2/), and a job j1 that ends on its second read.
func opsServer(t *testing.T) (*apiServer, func() string) {
	t.Helper()
	srv := startAPI(t, "n1", "n2")
	srv.setCluster([]daemon.MemberStatus{member("n1", client.RoleLeader), member("n2", client.RoleReplica)}, false)
	n1, n2 := srv.nodes["n1"], srv.nodes["n2"]
	n1.restartErr = daemon.ErrConditions
	n1.jobID, n2.jobID = "j1", "j1"
	n1.jobs["j1"] = []consul.Job{
		{ID: "j1", Kind: "rolling-restart", State: consul.JobRunning, Phases: []consul.JobPhase{phase("requested", 0, "n1")}},
		{ID: "j1", Kind: "rolling-restart", State: consul.JobSucceeded, Phases: []consul.JobPhase{phase("requested", 0, "n1"), phase("restarted n2", 1, "n1")}},
	}
	return srv, srv.log
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
	if !strings.Contains(requests(), `POST /n2/restart {"postgres_version":"16.2","restart_pending":true,"role":"replica"}`) {
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
	if !strings.Contains(requests(), `POST /api/v1/restart {"in_place":false,"restart_pending":true}`) {
		t.Errorf("rolling restart request: %v", requests())
	}
	// reload goes to every member; reinit to the named one.
	if code, out, _ := run1("", "reload"); code != exitOK || !strings.Contains(out, "n1: reload scheduled") || !strings.Contains(out, "n2: reload scheduled") {
		t.Errorf("reload: %d %q", code, out)
	}
	if code, out, errs := run1("", "reinit", "n2", "--from-leader", "--force", "--wait=false"); code != exitOK || !strings.Contains(out, "job j1") {
		t.Errorf("reinit: %d %q %q", code, out, errs)
	}
	if !strings.Contains(requests(), `POST /n2/api/v1/reinitialize {"force":true,"from_leader":true}`) {
		t.Errorf("reinit request: %v", requests())
	}
	if code, _, _ := run1("", "reinit", "--force"); code != exitUsage {
		t.Errorf("reinit without member: %d", code)
	}
}
