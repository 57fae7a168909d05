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
	pctl := func(stdin string, args ...string) string {
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
	rctl := func(args ...string) string {
		t.Helper()
		code, out, errs := ramctrl.run(t, env, args...)
		if code != 0 {
			t.Fatalf("ramctrl %v: exit %d\n%s%s", args, code, out, errs)
		}
		return out
	}
	// members is "name role state" per member, sorted, from either tool's JSON list.
	members := func(patroni bool) string {
		t.Helper()
		var rows []string
		if patroni {
			var ms []struct{ Member, Role, State string }
			if err := json.Unmarshal([]byte(pctl("", "list", "-f", "json")), &ms); err != nil {
				t.Fatal(err)
			}
			for _, m := range ms {
				rows = append(rows, strings.ToLower(strings.ReplaceAll(m.Member+" "+m.Role+" "+m.State, " Standby", "_standby")))
			}
		} else {
			var cl struct {
				Members []struct{ Name, Role, State string } `json:"members"`
			}
			if err := json.Unmarshal([]byte(rctl("list", "-o", "json")), &cl); err != nil {
				t.Fatal(err)
			}
			for _, m := range cl.Members {
				rows = append(rows, m.Name+" "+m.Role+" "+m.State)
			}
		}
		sort.Strings(rows)
		return strings.Join(rows, "\n")
	}
	same := func(what string, f func(bool) string) {
		t.Helper()
		testenv.Eventually(t, 30*time.Second, 300*time.Millisecond, func() error {
			if a, b := f(true), f(false); a != b {
				return fmt.Errorf("%s: patronictl shows\n%s\nramctrl shows\n%s", what, a, b)
			}
			return nil
		})
	}

	t.Run("list", func(t *testing.T) { same("list", members) })

	t.Run("topology", func(t *testing.T) {
		// Both put the leader first and every replica under it.
		for _, out := range []string{pctl("", "topology"), rctl("topology")} {
			if !strings.Contains(out, p.Name) || strings.Count(out, "+ ") != 2 {
				t.Errorf("topology:\n%s", out)
			}
		}
	})

	t.Run("show-config", func(t *testing.T) {
		rctl("edit-config", "-s", "maximum_lag_on_failover=2097152", "--force")
		same("show-config", func(patroni bool) string {
			out := rctl("show-config", "-f", "yaml")
			if patroni {
				out = pctl("", "show-config")
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
		if a, b := pctl("", "dsn", c.Scope), rctl("dsn"); strings.TrimSpace(a) != strings.TrimSpace(b) {
			t.Errorf("dsn: patronictl %q, ramctrl %q", a, b)
		}
	})

	t.Run("version", func(t *testing.T) {
		a, b := pctl("", "version", c.Scope), rctl("version")
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
					pctl("", cmd, c.Scope, "--wait")
				} else {
					rctl(cmd)
				}
			}
			run("pause")
			if out := pctl("", "list"); !strings.Contains(out, "Maintenance mode: on") {
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
		pctl("", "switchover", c.Scope, "--leader", p.Name, "--candidate", target.Name, "--scheduled", at, "--force")
		waitList(t, ramctrl, env, nil, true, "Switchover scheduled at:", "to: "+target.Name)
		rctl("flush", "switchover")
		if out := pctl("", "list"); strings.Contains(out, "Switchover scheduled") {
			t.Errorf("patronictl still shows the flushed switchover:\n%s", out)
		}
		rctl("switchover", "--candidate", target.Name, "--scheduled", at, "--force")
		testenv.Eventually(t, 30*time.Second, 300*time.Millisecond, func() error {
			if out := pctl("", "list"); !strings.Contains(out, "Switchover scheduled") {
				return fmt.Errorf("patronictl does not show ramctrl's scheduled switchover:\n%s", out)
			}
			return nil
		})
		pctl("", "flush", c.Scope, "switchover", "--force")
		waitList(t, ramctrl, env, nil, false, "Switchover scheduled at:")
	})

	t.Run("scheduled restart and flush", func(t *testing.T) {
		at := time.Now().Add(time.Hour).UTC().Format("2006-01-02T15:04:05+00:00")
		pctl("", "restart", c.Scope, target.Name, "--scheduled", at, "--force")
		waitList(t, ramctrl, env, []string{"-e"}, true, "Scheduled restart", at[:16])
		rctl("flush", "restart", target.Name, "--force")
		testenv.Eventually(t, 30*time.Second, 300*time.Millisecond, func() error {
			if out := pctl("", "list", "-e"); strings.Contains(out, at[:16]) {
				return fmt.Errorf("patronictl still shows the flushed restart:\n%s", out)
			}
			return nil
		})
	})

	t.Run("switchover and history", func(t *testing.T) {
		rctl("switchover", "--candidate", target.Name, "--force")
		if now := c.WaitPrimary(60 * time.Second); now != target {
			t.Fatalf("primary %s after ramctrl switchover to %s", now.Name, target.Name)
		}
		c.WaitReplicas(120 * time.Second)
		same("list after the switchover", members)
		hp, hr := pctl("", "history", c.Scope), rctl("history")
		if !strings.Contains(hp, target.Name) || !strings.Contains(hr, target.Name) || !strings.Contains(hr, "switchover") {
			t.Errorf("history:\n%s\n%s", hp, hr)
		}
	})
}
