package integration

import (
	"fmt"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/ramd-project/ramd/test/harness"
	"github.com/ramd-project/ramd/test/testenv"
)

// TestRamctrlPatronictlCommands drives the commands ramctrl has for patronictl's dsn, query,
// flush and remove, and list's extended view, on a live two-node cluster with the built
// ramctrl: the connection string and a query reach the member asked for, a scheduled restart
// and a scheduled switchover show in list and are flushed, and remove deletes the stopped
// cluster's keys only after the typed confirmations.
func TestRamctrlPatronictlCommands(t *testing.T) {
	t.Parallel()
	addr := needReal(t)
	ctl := buildRamctrl(t)
	psql := filepath.Join(testenv.PGBinDir(t), "psql")
	c := harness.New(t, ramdBin, addr, 2, harness.Options{})
	c.StartAll()
	p := c.WaitPrimary(120 * time.Second)
	c.WaitReplicas(120 * time.Second)
	var r *harness.Node
	for _, n := range c.Nodes {
		if n != p {
			r = n
		}
	}
	pw, err := p.SuperuserPassword()
	if err != nil {
		t.Fatal(err)
	}
	// psql authenticates with scram on TCP like every client (the password from libpq's variable).
	env := []string{"CONSUL_HTTP_ADDR=" + addr, "RAMD_SCOPE=" + c.Scope, "PGPASSWORD=" + pw}

	t.Run("dsn", func(t *testing.T) {
		for role, n := range map[string]*harness.Node{"leader": p, "replica": r} {
			code, out, _ := ctl.run(t, env, "dsn", "--role", role)
			if want := "host=127.0.0.1 port=" + strconv.Itoa(n.PGPort) + "\n"; code != 0 || out != want {
				t.Errorf("dsn --role %s: exit %d %q, want %q", role, code, out, want)
			}
		}
	})

	t.Run("query", func(t *testing.T) {
		for role, want := range map[string]string{"leader": "pg_is_in_recovery\nf\n", "replica": "pg_is_in_recovery\nt\n"} {
			code, out, errs := ctl.run(t, env, "query", "--psql", psql, "-U", "postgres", "-r", role, "-o", "tsv", "-c", "SELECT pg_is_in_recovery()")
			if code != 0 || out != want {
				t.Errorf("query on the %s: exit %d %q (%s), want %q", role, code, out, errs, want)
			}
		}
		if code, _, _ := ctl.run(t, env, "query", "--psql", psql, "-U", "postgres", "-c", "SELECT nonsense"); code != 1 {
			t.Errorf("a failing query: exit %d, want 1", code)
		}
	})

	t.Run("flush restart", func(t *testing.T) {
		at := time.Now().Add(time.Hour).UTC().Format(time.RFC3339)
		if code, _, errs := ctl.run(t, env, "restart", r.Name, "--scheduled", at, "--force"); code != 0 {
			t.Fatalf("schedule a restart: exit %d %s", code, errs)
		}
		waitList(t, ctl, env, []string{"-e"}, true, "Scheduled restart", at[:16])
		code, out, _ := ctl.run(t, env, "flush", "restart", r.Name, "--force")
		if code != 0 || !strings.Contains(out, "Success: flush scheduled restart for member "+r.Name) {
			t.Fatalf("flush restart: exit %d %s", code, out)
		}
		waitList(t, ctl, env, []string{"-e"}, false, at[:16])
	})

	t.Run("flush switchover", func(t *testing.T) {
		at := time.Now().Add(time.Hour).UTC().Format(time.RFC3339)
		if code, _, errs := ctl.run(t, env, "switchover", "--candidate", r.Name, "--scheduled", at, "--force"); code != 0 {
			t.Fatalf("schedule a switchover: exit %d %s", code, errs)
		}
		waitList(t, ctl, env, nil, true, "Switchover scheduled at:")
		if code, out, _ := ctl.run(t, env, "flush", "switchover"); code != 0 || out != "Success: scheduled switchover deleted\n" {
			t.Fatalf("flush switchover: exit %d %q", code, out)
		}
		waitList(t, ctl, env, nil, false, "Switchover scheduled at:")
		if code, out, _ := ctl.run(t, env, "flush", "switchover"); code != 0 || out != "No pending switchover\n" {
			t.Errorf("flush switchover again: exit %d %q", code, out)
		}
	})

	t.Run("remove", func(t *testing.T) {
		for _, n := range c.Nodes {
			n.Signal(syscall.SIGTERM)
		}
		for _, n := range c.Nodes {
			if err := n.Stop(); err != nil {
				t.Fatal(err)
			}
		}
		answers := c.Scope + "\nYes I am not\n"
		if code, _, errs := ctl.runIn(t, env, answers, "remove", c.Scope); code != 1 || !strings.Contains(errs, "nothing removed") {
			t.Fatalf("remove without the sentence: exit %d %s", code, errs)
		}
		if code, _, _ := ctl.runIn(t, env, "other\n", "remove", c.Scope); code != 1 {
			t.Fatalf("remove with the wrong name: exit %d", code)
		}
		code, out, errs := ctl.runIn(t, env, c.Scope+"\nYes I am aware\n", "remove", c.Scope)
		if code != 0 || !strings.Contains(out, "Removed ") {
			t.Fatalf("remove: exit %d %s %s", code, out, errs)
		}
		if code, _, errs := ctl.run(t, env, "remove", c.Scope); code != 1 || !strings.Contains(errs, "no keys under service/"+c.Scope+"/") {
			t.Errorf("remove again: exit %d %s", code, errs)
		}
	})
}

// waitList waits until ramctrl list (with args) shows, or no longer shows, every one of
// wants (want says which).
func waitList(t *testing.T, ctl ramctrlCLI, env, args []string, want bool, wants ...string) {
	t.Helper()
	testenv.Eventually(t, 30*time.Second, 300*time.Millisecond, func() error {
		code, out, errs := ctl.run(t, env, append([]string{"list"}, args...)...)
		if code != 0 {
			return fmt.Errorf("list: exit %d %s", code, errs)
		}
		for _, w := range wants {
			if strings.Contains(out, w) != want {
				return fmt.Errorf("list shows %q: %v, want %v:\n%s", w, !want, want, out)
			}
		}
		return nil
	})
}
