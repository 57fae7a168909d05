package integration

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/ramd-project/ramd/test/harness"
	"github.com/ramd-project/ramd/test/testenv"
)

// TestPatronictlAndRamctrlSideBySide runs the real patronictl and the matching ramctrl
// command on the same live cluster and compares what each shows or does: list, topology,
// show-config, history, dsn, version, pause and resume, a scheduled switchover and its flush,
// a scheduled restart and its flush, and a switchover. A patronictl user switching to
// ramctrl loses none of them.
func TestPatronictlAndRamctrlSideBySide(t *testing.T) {
	t.Parallel()
	addr := needReal(t)
	patronictl := testenv.Binary(t, "patronictl", "patroni python3-consul")
	ramctrl := buildRamctrl(t)
	c := harness.New(t, ramdBin, addr, 3, harness.Options{})
	c.StartAll()
	p := c.WaitPrimary(120 * time.Second)
	c.WaitReplicas(120 * time.Second)
	cfg := filepath.Join(t.TempDir(), "patroni.yml")
	if err := os.WriteFile(cfg, []byte(fmt.Sprintf("scope: %s\nnamespace: /service/\nname: ctl\nconsul:\n  host: %s\n", c.Scope, addr)), 0o644); err != nil {
		t.Fatal(err)
	}
	pctl := func(t *testing.T, stdin string, args ...string) string {
		t.Helper()
		ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
		defer cancel()
		cmd := exec.CommandContext(ctx, patronictl, append([]string{"-c", cfg}, args...)...)
		cmd.Stdin = strings.NewReader(stdin)
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("patronictl %v: %v\n%s", args, err, out)
		}
		return string(out)
	}
	env := []string{"CONSUL_HTTP_ADDR=" + addr, "RAMD_SCOPE=" + c.Scope}
	rctl := func(t *testing.T, args ...string) string {
		t.Helper()
		code, out, errs := ramctrl.run(t, env, args...)
		if code != 0 {
			t.Fatalf("ramctrl %v: exit %d\n%s%s", args, code, out, errs)
		}
		return out
	}
	// members is "name role state" per member, sorted, from either tool's JSON list.
	members := func(t *testing.T, patroni bool) string {
		t.Helper()
		var rows []string
		if patroni {
			var ms []struct{ Member, Role, State string }
			if err := json.Unmarshal([]byte(pctl(t, "", "list", "-f", "json")), &ms); err != nil {
				t.Fatal(err)
			}
			for _, m := range ms {
				rows = append(rows, strings.ToLower(strings.ReplaceAll(m.Member+" "+m.Role+" "+m.State, " Standby", "_standby")))
			}
		} else {
			var cl struct {
				Members []struct{ Name, Role, State string } `json:"members"`
			}
			if err := json.Unmarshal([]byte(rctl(t, "list", "-o", "json")), &cl); err != nil {
				t.Fatal(err)
			}
			for _, m := range cl.Members {
				// Patroni 3.0's patronictl shows a streaming replica as running (later
				// versions show its replication state, as ramctrl does).
				rows = append(rows, m.Name+" "+m.Role+" "+strings.Replace(m.State, "streaming", "running", 1))
			}
		}
		sort.Strings(rows)
		return strings.Join(rows, "\n")
	}
	same := func(t *testing.T, what string, f func(*testing.T, bool) string) {
		t.Helper()
		testenv.Eventually(t, 30*time.Second, 300*time.Millisecond, func() error {
			if a, b := f(t, true), f(t, false); a != b {
				return fmt.Errorf("%s: patronictl shows\n%s\nramctrl shows\n%s", what, a, b)
			}
			return nil
		})
	}

	t.Run("list", func(t *testing.T) { same(t, "list", members) })

	t.Run("topology", func(t *testing.T) {
		// Both put the leader first and every replica under it.
		for _, out := range []string{pctl(t, "", "topology"), rctl(t, "topology")} {
			if !strings.Contains(out, p.Name) || strings.Count(out, "+ n") != 2 { // the harness names members n1, n2, n3
				t.Errorf("topology:\n%s", out)
			}
		}
	})

	t.Run("show-config", func(t *testing.T) {
		rctl(t, "edit-config", "-s", "maximum_lag_on_failover=2097152", "--force")
		same(t, "show-config", func(t *testing.T, patroni bool) string {
			t.Helper()
			out := rctl(t, "show-config", "-f", "yaml")
			if patroni {
				out = pctl(t, "", "show-config")
			}
			for _, line := range strings.Split(out, "\n") {
				if strings.HasPrefix(line, "maximum_lag_on_failover:") {
					return line
				}
			}
			return out
		})
	})

	t.Run("dsn", func(t *testing.T) {
		if a, b := pctl(t, "", "dsn", c.Scope), rctl(t, "dsn"); strings.TrimSpace(a) != strings.TrimSpace(b) {
			t.Errorf("dsn: patronictl %q, ramctrl %q", a, b)
		}
	})

	t.Run("version", func(t *testing.T) {
		a, b := pctl(t, "", "version", c.Scope), rctl(t, "version")
		for _, n := range c.Nodes {
			if !strings.Contains(a, n.Name+": Patroni ") || !strings.Contains(b, n.Name+": ramd ") {
				t.Errorf("version lacks %s:\n%s\n%s", n.Name, a, b)
			}
		}
	})

	t.Run("pause and resume", func(t *testing.T) {
		for _, tool := range []string{"patronictl", "ramctrl"} {
			run := func(cmd string) {
				if tool == "patronictl" {
					pctl(t, "", cmd, c.Scope, "--wait")
				} else {
					rctl(t, cmd)
				}
			}
			run("pause")
			if out := pctl(t, "", "list"); !strings.Contains(out, "Maintenance mode: on") {
				t.Errorf("%s pause: patronictl list does not show it:\n%s", tool, out)
			}
			waitList(t, ramctrl, env, nil, true, "Maintenance mode: on")
			run("resume")
			waitList(t, ramctrl, env, nil, false, "Maintenance mode: on")
		}
	})

	var target *harness.Node
	for _, n := range c.Nodes {
		if n != p {
			target = n
			break
		}
	}

	t.Run("scheduled switchover and flush", func(t *testing.T) {
		at := time.Now().Add(time.Hour).UTC().Format("2006-01-02T15:04:05+00:00")
		// Scheduled with one tool, seen and flushed with the other, and back.
		pctl(t, "", "switchover", c.Scope, "--leader", p.Name, "--candidate", target.Name, "--scheduled", at, "--force")
		waitList(t, ramctrl, env, nil, true, "Switchover scheduled at:", "to: "+target.Name)
		rctl(t, "flush", "switchover")
		if out := pctl(t, "", "list"); strings.Contains(out, "Switchover scheduled") {
			t.Errorf("patronictl still shows the flushed switchover:\n%s", out)
		}
		rctl(t, "switchover", "--candidate", target.Name, "--scheduled", at, "--force")
		testenv.Eventually(t, 30*time.Second, 300*time.Millisecond, func() error {
			if out := pctl(t, "", "list"); !strings.Contains(out, "Switchover scheduled") {
				return fmt.Errorf("patronictl does not show ramctrl's scheduled switchover:\n%s", out)
			}
			return nil
		})
		pctl(t, "", "flush", c.Scope, "switchover", "--force")
		waitList(t, ramctrl, env, nil, false, "Switchover scheduled at:")
	})

	t.Run("scheduled restart and flush", func(t *testing.T) {
		at := time.Now().Add(time.Hour).UTC().Format("2006-01-02T15:04:05+00:00")
		pctl(t, "", "restart", c.Scope, target.Name, "--scheduled", at, "--force")
		waitList(t, ramctrl, env, []string{"-e"}, true, "Scheduled restart", at[:16])
		rctl(t, "flush", "restart", target.Name, "--force")
		testenv.Eventually(t, 30*time.Second, 300*time.Millisecond, func() error {
			if out := pctl(t, "", "list", "-e"); strings.Contains(out, at[:16]) {
				return fmt.Errorf("patronictl still shows the flushed restart:\n%s", out)
			}
			return nil
		})
	})

	t.Run("switchover and history", func(t *testing.T) {
		rctl(t, "switchover", "--candidate", target.Name, "--force")
		if now := c.WaitPrimary(60 * time.Second); now != target {
			t.Fatalf("primary %s after ramctrl switchover to %s", now.Name, target.Name)
		}
		c.WaitReplicas(120 * time.Second)
		same(t, "list after the switchover", members)
		hp, hr := pctl(t, "", "history", c.Scope), rctl(t, "history")
		if !strings.Contains(hp, target.Name) || !strings.Contains(hr, target.Name) || !strings.Contains(hr, "switchover") {
			t.Errorf("history:\n%s\n%s", hp, hr)
		}
	})
}
