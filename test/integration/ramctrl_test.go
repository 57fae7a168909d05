package integration

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/ramd-project/ramd/test/harness"
	"github.com/ramd-project/ramd/test/testenv"
)

// ramctrlCLI runs a ramctrl binary built for the test, with a clean environment (so an
// operator's CONSUL_HTTP_ADDR or RAMD_API_URL cannot leak in) plus the given variables.
type ramctrlCLI struct{ bin string }

// buildRamctrl compiles cmd/ramctrl into the test's temporary directory.
func buildRamctrl(t *testing.T) ramctrlCLI {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	root, err := exec.CommandContext(ctx, "go", "list", "-m", "-f", "{{.Dir}}").Output()
	if err != nil {
		t.Fatalf("find module root: %v", err)
	}
	bin := filepath.Join(t.TempDir(), "ramctrl")
	cmd := exec.CommandContext(ctx, "go", "build", "-o", bin, "./cmd/ramctrl")
	cmd.Dir = strings.TrimSpace(string(root))
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("build ramctrl: %v\n%s", err, out)
	}
	return ramctrlCLI{bin: bin}
}

// run runs ramctrl with env ("K=V") and args and returns its exit code and output.
func (r ramctrlCLI) run(t *testing.T, env []string, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	return r.runIn(t, env, "", args...)
}

// runIn is run with stdin as the program's standard input (answers to its prompts).
func (r ramctrlCLI) runIn(t *testing.T, env []string, stdin string, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, r.bin, args...)
	cmd.Stdin = strings.NewReader(stdin)
	cmd.Env = append([]string{"PATH=" + os.Getenv("PATH"), "HOME=" + os.Getenv("HOME")}, env...)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	var ee *exec.ExitError
	switch {
	case errors.As(err, &ee):
		code = ee.ExitCode()
	case err != nil:
		t.Fatalf("ramctrl %v: %v", args, err)
	}
	t.Logf("ramctrl %s: exit %d\n%s%s", strings.Join(args, " "), code, out.String(), errb.String())
	return code, out.String(), errb.String()
}

// ctlMember is a member as ramctrl list --output json prints it.
type ctlMember struct {
	Name  string `json:"name"`
	Role  string `json:"role"`
	State string `json:"state"`
}

// ctlLeader runs ramctrl list --output json and returns the members and the leader's name.
func (r ramctrlCLI) ctlLeader(t *testing.T, env []string, args ...string) ([]ctlMember, string, error) {
	t.Helper()
	code, out, errs := r.run(t, env, append([]string{"list", "--output", "json"}, args...)...)
	if code != 0 {
		return nil, "", fmt.Errorf("ramctrl list: exit %d: %s", code, errs)
	}
	var cl struct {
		Members []ctlMember `json:"members"`
	}
	if err := json.Unmarshal([]byte(out), &cl); err != nil {
		return nil, "", fmt.Errorf("ramctrl list --output json: %w", err)
	}
	leader := ""
	for _, m := range cl.Members {
		if m.Role == "leader" {
			if leader != "" {
				return nil, "", fmt.Errorf("two leaders: %s and %s", leader, m.Name)
			}
			leader = m.Name
		}
	}
	return cl.Members, leader, nil
}

// dynamicConfig reads GET /config: its ETag and body.
func dynamicConfig(t *testing.T, n *harness.Node) (etag, body string) {
	t.Helper()
	resp, err := (&http.Client{Timeout: 5 * time.Second}).Get(n.APIURL() + "/config")
	if err != nil {
		t.Fatalf("GET /config: %v", err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET /config: %s %s", resp.Status, b)
	}
	return resp.Header.Get("ETag"), string(b)
}

// TestRamctrl drives a live three-node cluster with the built ramctrl: list, discovery
// through Consul, topology, version, config edit (refused, applied, in an editor) and a
// switchover.
func TestRamctrl(t *testing.T) {
	t.Parallel()
	addr := needReal(t)
	ctl := buildRamctrl(t)
	c := harness.New(t, ramdBin, addr, 3, harness.Options{})
	c.StartAll()
	p := c.WaitPrimary(120 * time.Second)
	c.WaitReplicas(120 * time.Second)
	var urls []string
	for _, n := range c.Nodes {
		urls = append(urls, n.APIURL())
	}
	apiEnv := []string{"RAMD_API_URL=" + strings.Join(urls, ",")}
	consulEnv := []string{"CONSUL_HTTP_ADDR=" + addr, "RAMD_SCOPE=" + c.Scope}

	t.Run("list", func(t *testing.T) {
		// Through Consul discovery the leader answers first; wait until it sees both
		// replicas running, as a switchover needs.
		testenv.Eventually(t, 60*time.Second, 500*time.Millisecond, func() error {
			members, leader, err := ctl.ctlLeader(t, consulEnv)
			if err != nil {
				return err
			}
			if len(members) != 3 || leader != p.Name {
				return fmt.Errorf("members %v, leader %q; want 3 with leader %s", members, leader, p.Name)
			}
			for _, m := range members {
				if m.State != "running" && m.State != "streaming" {
					return fmt.Errorf("the leader sees %s %s", m.Name, m.State)
				}
			}
			return nil
		})
		if code, out, _ := ctl.run(t, apiEnv, "list"); code != 0 || strings.Count(out, "Leader") != 1 {
			t.Errorf("ramctrl list: exit %d\n%s", code, out)
		}
	})

	t.Run("discovery", func(t *testing.T) {
		for _, tc := range []struct {
			name      string
			env, args []string
		}{
			{name: "environment", env: consulEnv},
			{name: "flags", args: []string{"--consul", addr, "--scope", c.Scope}},
			// No member records under that namespace: the catalog's api_url meta is used.
			{name: "catalog", args: []string{"--consul", addr, "--scope", c.Scope, "--namespace", "elsewhere"}},
		} {
			members, leader, err := ctl.ctlLeader(t, tc.env, tc.args...)
			if err != nil || len(members) != 3 || leader != p.Name {
				t.Errorf("%s: members %v, leader %q, %v", tc.name, members, leader, err)
			}
		}
		code, _, errs := ctl.run(t, nil, "list", "--consul", addr, "--scope", "no-such-cluster")
		if code != 1 || !strings.Contains(errs, "service/no-such-cluster/members/") {
			t.Errorf("unknown scope: exit %d, %s", code, errs)
		}
	})

	t.Run("topology", func(t *testing.T) {
		code, out, _ := ctl.run(t, consulEnv, "topology")
		lines := strings.Split(strings.TrimSpace(out), "\n")
		if code != 0 || len(lines) != 5 || !strings.HasPrefix(lines[2], p.Name+" ") ||
			!strings.HasPrefix(lines[3], "+ ") || !strings.HasPrefix(lines[4], "+ ") {
			t.Errorf("ramctrl topology: exit %d\n%s", code, out)
		}
	})

	t.Run("version", func(t *testing.T) {
		code, out, _ := ctl.run(t, apiEnv, "version")
		if code != 0 {
			t.Fatalf("ramctrl version: exit %d", code)
		}
		for _, n := range c.Nodes {
			re := regexp.MustCompile(`(?m)^` + n.Name + `: ramd \S+ PostgreSQL \d+\.\d+$`)
			if !re.MatchString(out) {
				t.Errorf("ramctrl version lacks %s:\n%s", n.Name, out)
			}
		}
	})

	t.Run("config edit", func(t *testing.T) {
		etag, body := dynamicConfig(t, p)
		code, _, errs := ctl.run(t, apiEnv, "config", "edit", "--set", "maximum_lag_on_failover=-5", "--force")
		if code != 1 || !strings.Contains(errs, "maximum_lag_on_failover") {
			t.Errorf("a negative maximum_lag_on_failover: exit %d, %s", code, errs)
		}
		if etag2, body2 := dynamicConfig(t, p); etag2 != etag || body2 != body {
			t.Fatalf("a refused edit changed the config: ETag %s -> %s, %s -> %s", etag, etag2, body, body2)
		}

		if code, out, _ := ctl.run(t, apiEnv, "config", "edit", "--set", "maximum_lag_on_failover=2097152", "--force"); code != 0 || !strings.Contains(out, `+  "maximum_lag_on_failover": 2097152`) {
			t.Fatalf("a good --set: exit %d\n%s", code, out)
		}
		etag3, body3 := dynamicConfig(t, p)
		if etag3 == etag || !strings.Contains(body3, `"maximum_lag_on_failover":2097152`) {
			t.Fatalf("after --set: ETag %s (was %s), %s", etag3, etag, body3)
		}

		editor := filepath.Join(t.TempDir(), "editor.sh")
		script := "#!/bin/sh\nsed -i 's/\"maximum_lag_on_failover\": 2097152/\"maximum_lag_on_failover\": 3145728/' \"$1\"\n"
		if err := os.WriteFile(editor, []byte(script), 0o755); err != nil {
			t.Fatal(err)
		}
		if code, _, errs := ctl.run(t, append(apiEnv, "EDITOR="+editor), "config", "edit", "--force"); code != 0 {
			t.Fatalf("edit in an editor: exit %d, %s", code, errs)
		}
		if _, body := dynamicConfig(t, p); !strings.Contains(body, `"maximum_lag_on_failover":3145728`) {
			t.Fatalf("after the editor: %s", body)
		}
		etag4, _ := dynamicConfig(t, p)
		if code, out, _ := ctl.run(t, append(apiEnv, "EDITOR=true"), "config", "edit"); code != 0 || strings.TrimSpace(out) != "no changes" {
			t.Errorf("an unchanged edit: exit %d, %q", code, out)
		}
		if etag5, _ := dynamicConfig(t, p); etag5 != etag4 {
			t.Errorf("an unchanged edit wrote: ETag %s -> %s", etag4, etag5)
		}
	})

	t.Run("switchover", func(t *testing.T) {
		var target *harness.Node
		for _, n := range c.Nodes {
			if n != p {
				target = n
				break
			}
		}
		code, out, errs := ctl.run(t, consulEnv, "switchover", "--candidate", target.Name, "--force")
		if code != 0 || !strings.Contains(out, "job ") || !strings.Contains(out, "promoted") || !strings.Contains(out, "succeeded") {
			t.Fatalf("ramctrl switchover: exit %d\n%s%s", code, out, errs)
		}
		testenv.Eventually(t, 60*time.Second, 200*time.Millisecond, func() error {
			_, leader, err := ctl.ctlLeader(t, nil, "--api", target.APIURL())
			if err != nil {
				return err
			}
			if leader != target.Name {
				return fmt.Errorf("/cluster names %q the leader, want %s", leader, target.Name)
			}
			return nil
		})
		if now := c.WaitPrimary(60 * time.Second); now != target {
			t.Fatalf("primary is %s after a switchover to %s", now.Name, target.Name)
		}
	})

	t.Run("restart and reinit", func(t *testing.T) {
		c.WaitReplicas(120 * time.Second)
		p := c.WaitPrimary(60 * time.Second)
		var replica *harness.Node
		for _, n := range c.Nodes {
			if n != p {
				replica = n
				break
			}
		}
		before := replica.PostmasterPID()
		code, out, errs := ctl.run(t, consulEnv, "restart", replica.Name, "--force")
		if code != 0 || !strings.Contains(out, replica.Name+": restarted successfully") {
			t.Fatalf("ramctrl restart: exit %d\n%s%s", code, out, errs)
		}
		if pid := replica.PostmasterPID(); pid == before || pid == 0 {
			t.Fatalf("postmaster pid %d -> %d after ramctrl restart", before, pid)
		}
		if code, _, errs := ctl.run(t, consulEnv, "reinit", p.Name, "--force"); code != 1 || !strings.Contains(errs, "I am the leader") {
			t.Fatalf("ramctrl reinit of the leader: exit %d %s", code, errs)
		}
		code, out, errs = ctl.run(t, consulEnv, "reinit", replica.Name, "--force")
		if code != 0 || !strings.Contains(out, "cloning") || !strings.Contains(out, "succeeded") {
			t.Fatalf("ramctrl reinit: exit %d\n%s%s", code, out, errs)
		}
		c.WaitReplicas(120 * time.Second)
	})
}
