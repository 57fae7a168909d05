package integration

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/ramd-project/ramd/daemon/pg"
	"github.com/ramd-project/ramd/test/harness"
	"github.com/ramd-project/ramd/test/testenv"
)

// startHAProxy runs a real HAProxy configured the way Patroni's documentation does: one
// frontend for the primary (OPTIONS /primary), one for the replicas (OPTIONS /replica).
func startHAProxy(t *testing.T, c *harness.Cluster) (primaryPort, replicaPort int) {
	t.Helper()
	bin := testenv.Binary(t, "haproxy", "haproxy")
	primaryPort, replicaPort = testenv.FreePort(t), testenv.FreePort(t)
	var servers strings.Builder
	for _, n := range c.Nodes {
		fmt.Fprintf(&servers, "  server %s 127.0.0.1:%d check port %d\n", n.Name, n.PGPort, n.APIPort)
	}
	cfg := fmt.Sprintf(`global
  maxconn 200
defaults
  mode tcp
  timeout connect 2s
  timeout client 30m
  timeout server 30m
  default-server inter 1s fall 2 rise 1 on-marked-down shutdown-sessions
listen primary
  bind 127.0.0.1:%d
  option httpchk OPTIONS /primary
  http-check expect status 200
%slisten replicas
  bind 127.0.0.1:%d
  balance roundrobin
  option httpchk OPTIONS /replica
  http-check expect status 200
%s`, primaryPort, servers.String(), replicaPort, servers.String())
	path := filepath.Join(t.TempDir(), "haproxy.cfg")
	if err := os.WriteFile(path, []byte(cfg), 0o644); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin, "-f", path, "-db")
	log, _ := os.Create(path + ".log")
	cmd.Stdout, cmd.Stderr = log, log
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		t.Fatalf("start haproxy: %v", err)
	}
	done := make(chan struct{})
	go func() { _ = cmd.Wait(); close(done) }()
	t.Cleanup(func() {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			_ = cmd.Process.Kill()
			<-done
		}
		_ = log.Close()
	})
	return primaryPort, replicaPort
}

// through connects through HAProxy and reports the backend's port and whether it is a
// standby; when write is set it also inserts a row.
func through(port int, write bool) (int, bool, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	pw, _, err := pg.LoopbackPasswords()
	if err != nil {
		return 0, false, err
	}
	conn, err := pgx.Connect(ctx, harness.SuperuserDSN(port, pw))
	if err != nil {
		return 0, false, err
	}
	defer conn.Close(context.Background())
	var backend int
	var standby bool
	if err := conn.QueryRow(ctx, "SELECT current_setting('port')::int, pg_is_in_recovery()").Scan(&backend, &standby); err != nil {
		return 0, false, err
	}
	if write {
		if _, err := conn.Exec(ctx, "CREATE TABLE IF NOT EXISTS via_haproxy (at timestamptz DEFAULT now()); INSERT INTO via_haproxy DEFAULT VALUES"); err != nil {
			return backend, standby, err
		}
	}
	return backend, standby, nil
}

// waitRouted waits until HAProxy's primary frontend reaches want and accepts a write, and the
// replica frontend reaches a standby.
func waitRouted(t *testing.T, primaryPort, replicaPort int, want *harness.Node) {
	t.Helper()
	testenv.Eventually(t, 60*time.Second, 200*time.Millisecond, func() error {
		backend, standby, err := through(primaryPort, true)
		if err != nil {
			return fmt.Errorf("primary frontend: %w", err)
		}
		if backend != want.PGPort || standby {
			return fmt.Errorf("primary frontend reached port %d (standby %v), want %s on %d", backend, standby, want.Name, want.PGPort)
		}
		if _, standby, err := through(replicaPort, false); err != nil || !standby {
			return fmt.Errorf("replica frontend: standby %v, %w", standby, err)
		}
		return nil
	})
}

// TestHAProxyRoutesWrites: a real HAProxy with Patroni's documented checks sends writes to
// the primary before and after a switchover and a failover, and reads to a standby.
func TestHAProxyRoutesWrites(t *testing.T) {
	t.Parallel()
	addr := needReal(t)
	c := harness.New(t, ramdBin, addr, 3, harness.Options{})
	c.StartAll()
	p := c.WaitPrimary(120 * time.Second)
	c.WaitReplicas(120 * time.Second)
	pp, rp := startHAProxy(t, c)
	waitRouted(t, pp, rp, p)

	var target *harness.Node
	for _, n := range c.Nodes {
		if n != p {
			target = n
			break
		}
	}
	if code, body := post(t, p.APIURL()+"/switchover", fmt.Sprintf(`{"leader":%q,"candidate":%q}`, p.Name, target.Name)); code != 200 {
		t.Fatalf("switchover: %d %s", code, body)
	}
	c.WaitReplicas(120 * time.Second)
	waitRouted(t, pp, rp, target)

	target.Kill()
	next := c.WaitPrimary(60 * time.Second)
	waitRouted(t, pp, rp, next)
}

// TestPatronictl: the real patronictl (Debian's patroni package) reads our cluster from
// Consul, shows its history and switches over through our API.
func TestPatronictl(t *testing.T) {
	t.Parallel()
	addr := needReal(t)
	bin := testenv.Binary(t, "patronictl", "patroni python3-consul")
	c := harness.New(t, ramdBin, addr, 3, harness.Options{})
	c.StartAll()
	p := c.WaitPrimary(120 * time.Second)
	c.WaitReplicas(120 * time.Second)
	cfg := filepath.Join(t.TempDir(), "patroni.yml")
	if err := os.WriteFile(cfg, []byte(fmt.Sprintf("scope: %s\nnamespace: /service/\nname: ctl\nconsul:\n  host: %s\n", c.Scope, addr)), 0o644); err != nil {
		t.Fatal(err)
	}
	ctl := func(args ...string) string {
		t.Helper()
		ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
		defer cancel()
		out, err := exec.CommandContext(ctx, bin, append([]string{"-c", cfg}, args...)...).CombinedOutput()
		if err != nil {
			t.Fatalf("patronictl %v: %v\n%s", args, err, out)
		}
		return string(out)
	}
	var members []struct {
		Member, Role, State string
	}
	if err := json.Unmarshal([]byte(ctl("list", "-f", "json")), &members); err != nil {
		t.Fatalf("patronictl list -f json: %v", err)
	}
	roles := map[string]string{}
	for _, m := range members {
		roles[m.Member] = m.Role + "/" + m.State
	}
	if len(members) != 3 || roles[p.Name] != "Leader/running" {
		t.Fatalf("patronictl list: %+v, want 3 members with %s the running leader", members, p.Name)
	}
	var target *harness.Node
	for _, n := range c.Nodes {
		if n != p {
			target = n
			break
		}
	}
	out := ctl("switchover", "--leader", p.Name, "--candidate", target.Name, "--force")
	if !strings.Contains(out, "Successfully switched over") {
		t.Fatalf("patronictl switchover: %s", out)
	}
	if now := c.WaitPrimary(30 * time.Second); now != target {
		t.Fatalf("primary is %s after patronictl switchover to %s", now.Name, target.Name)
	}
	if hist := ctl("history"); !strings.Contains(hist, "switchover") {
		t.Fatalf("patronictl history lacks the switchover:\n%s", hist)
	}
	c.WaitReplicas(120 * time.Second)

	// restart, a scheduled restart and its flush, reload and reinit of a replica.
	before := p.PostmasterPID()
	if out := ctl("restart", c.Scope, p.Name, "--force"); !strings.Contains(out, "Success: restart on member "+p.Name) {
		t.Fatalf("patronictl restart: %s", out)
	}
	if pid := p.PostmasterPID(); pid == before || pid == 0 {
		t.Fatalf("patronictl restart: postmaster pid %d -> %d", before, pid)
	}
	at := time.Now().Add(time.Hour).UTC().Format("2006-01-02T15:04:05+00:00")
	if out := ctl("restart", c.Scope, p.Name, "--scheduled", at, "--force"); !strings.Contains(out, "Success: restart scheduled on member "+p.Name) {
		t.Fatalf("patronictl restart --scheduled: %s", out)
	}
	if out := ctl("flush", c.Scope, p.Name, "restart", "--force"); !strings.Contains(out, "Success: flush scheduled restart for member "+p.Name) {
		t.Fatalf("patronictl flush restart: %s", out)
	}
	if out := ctl("reload", c.Scope, p.Name, "--force"); !strings.Contains(out, "Reload request received for member "+p.Name) {
		t.Fatalf("patronictl reload: %s", out)
	}
	if out := ctl("reinit", c.Scope, p.Name, "--force", "--wait"); !strings.Contains(out, "Success: reinitialize for member "+p.Name) ||
		!strings.Contains(out, "Reinitialize is completed on: "+p.Name) {
		t.Fatalf("patronictl reinit: %s", out)
	}
	c.WaitReplicas(120 * time.Second)

	// edit-config writes straight into Consul, past the API's validation: a value ramd refuses
	// is never acted on and the leader writes the last valid configuration back; a valid one
	// stays.
	ctl("edit-config", "--set", "maximum_lag_on_failover=2097152", "--force")
	// The leader must have taken the valid edit before the next one lands (it restores the
	// last configuration it applied): wait until it runs the version GET /config shows.
	testenv.Eventually(t, 20*time.Second, 100*time.Millisecond, func() error {
		leader, err := c.Primary()
		if err != nil {
			return err
		}
		code, etag := headETag(t, leader.APIURL()+"/config")
		v, err := clusterView(leader)
		if err != nil || code != http.StatusOK || fmt.Sprint(v.Node.Config.Index) != etag {
			return fmt.Errorf("leader runs config version %d, GET /config is %s (%w)", v.Node.Config.Index, etag, err)
		}
		return nil
	})
	ctl("edit-config", "--set", "ttl=banana", "--set", "loop_wait=0", "--force")
	testenv.Eventually(t, 20*time.Second, 200*time.Millisecond, func() error {
		out := ctl("show-config")
		if strings.Contains(out, "banana") || !strings.Contains(out, "maximum_lag_on_failover: 2097152") || !strings.Contains(out, "ttl: 3") {
			return fmt.Errorf("patronictl show-config:\n%s", out)
		}
		return nil
	})
	if ev := c.LogEvents("refusing the configuration in Consul"); len(ev) == 0 {
		t.Error("no member logged the refusal of patronictl's edit")
	}
	// The everyday tuning workflow: edit-config --pg reaches PostgreSQL on every member.
	ctl("edit-config", "--pg", "work_mem=16MB", "--force")
	testenv.Eventually(t, 30*time.Second, 200*time.Millisecond, func() error {
		for _, n := range c.Nodes {
			if v, err := showOn(t, n, "work_mem"); err != nil || v != "16MB" {
				return fmt.Errorf("%s: work_mem %q (%w)", n.Name, v, err)
			}
		}
		return nil
	})
}
