package integration

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/ramd-project/ramd/api/client"
	"github.com/ramd-project/ramd/test/harness"
	"github.com/ramd-project/ramd/test/testenv"
)

// pgbrTLS is a pgBackRest TLS server set-up for a test: one server certificate naming
// every member's address, a client certificate and the CA, owned by PostgreSQL's account.
type pgbrTLS struct {
	dir  string
	port int
}

// newPgbrTLS writes the certificates for members at hosts.
func newPgbrTLS(t *testing.T, hosts ...string) pgbrTLS {
	t.Helper()
	dir := ownedDir(t, "pgbrtls")
	ca := testenv.NewCA(t)
	serverCert, serverKey := ca.ServerFor(t, "pgbackrest-server", hosts...)
	clientCert, clientKey := ca.Client(t, "pgbackrest")
	writeOwnedFiles(t, dir, map[string][]byte{"ca.pem": ca.PEM, "server.pem": serverCert, "server.key": serverKey,
		"client.pem": clientCert, "client.key": clientKey})
	return pgbrTLS{dir: dir, port: testenv.FreePort(t)}
}

// config is the backup object with the TLS server enabled (or not). archive_timeout is
// off: a WAL switch of an idle primary would put a standby 16 MiB behind for a moment,
// beyond the lag limit of run_on standby (pgBackRest switches WAL itself for a backup).
func (s pgbrTLS) config(repo, runOn string, enabled bool) string {
	f := func(name string) string { return strconv.Quote(filepath.Join(s.dir, name)) }
	return fmt.Sprintf(`{"backup":{"tool":"pgbackrest","archive_timeout":0,"run_on":%q,"pgbackrest":{"repo_path":%q,
		"tls_server":{"enabled":%t,"port":%d,"cert_file":%s,"key_file":%s,"ca_file":%s,"client_cert_file":%s,"client_key_file":%s}}}}`,
		runOn, repo, enabled, s.port, f("server.pem"), f("server.key"), f("ca.pem"), f("client.pem"), f("client.key"))
}

// serverPid is the pid of n's pgBackRest TLS server from its pid file (0: none).
func serverPid(n *harness.Node) int {
	b, err := os.ReadFile(filepath.Join(filepath.Dir(n.DataDir), filepath.Base(n.DataDir)+".backup", "server.pid"))
	if err != nil {
		return 0
	}
	pid, _ := strconv.Atoi(strings.TrimSpace(string(b)))
	return pid
}

// waitServer waits until n's TLS server runs with a pid other than not and accepts TCP
// connections on n's address; it returns the pid.
func waitServer(t *testing.T, n *harness.Node, port, not int) int {
	t.Helper()
	var pid int
	testenv.Eventually(t, 60*time.Second, 200*time.Millisecond, func() error {
		pid = serverPid(n)
		if pid == 0 || pid == not {
			return fmt.Errorf("%s: server pid %d (want a new one, not %d)", n.Name, pid, not)
		}
		if err := syscall.Kill(pid, 0); err != nil {
			return fmt.Errorf("%s: server pid %d: %w", n.Name, pid, err)
		}
		c, err := net.DialTimeout("tcp", net.JoinHostPort(n.Host, strconv.Itoa(port)), time.Second)
		if err != nil {
			return fmt.Errorf("%s: the TLS server does not listen: %w", n.Name, err)
		}
		_ = c.Close()
		return nil
	})
	return pid
}

// gone reports whether pid no longer runs (a zombie is reaped by its parent soon after).
func gone(pid int) error {
	if err := syscall.Kill(pid, 0); errors.Is(err, syscall.ESRCH) {
		return nil
	}
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err == nil && strings.Contains(string(b), ") Z ") {
		return nil
	}
	return fmt.Errorf("pid %d still runs", pid)
}

// TestBackupFromStandbyTLS: members on their own loopback addresses, pgBackRest's TLS
// server enabled: a backup with run_on standby is taken from the standby as a remote pg2
// through its TLS server (the job says so, the backup's manifest says backup-standby), is
// listed with its job, and restores into a new cluster with the rows written before it.
func TestBackupFromStandbyTLS(t *testing.T) {
	t.Parallel()
	addr := needReal(t)
	needTool(t, "pgbackrest")
	hosts := map[string]string{"n1": "127.0.0.2", "n2": "127.0.0.3"}
	tls := newPgbrTLS(t, "127.0.0.2", "127.0.0.3")
	repo := ownedDir(t, "repo")
	c := harness.New(t, ramdBin, addr, 2, harness.Options{NodeAddr: hosts, Env: map[string]string{"RAMD_PG_HBA_ALLOW": "127.0.0.0/8"}})
	c.StartAll()
	p := c.WaitPrimary(120 * time.Second)
	c.WaitReplicas(120 * time.Second)
	s := c.Other(p)
	if code, body := patch(t, p.APIURL()+"/config", tls.config(repo, "standby", true), ""); code != http.StatusOK {
		t.Fatalf("PATCH backup: %d %s", code, body)
	}
	for _, n := range c.Nodes {
		t.Logf("%s: TLS server pid %d on %s:%d", n.Name, waitServer(t, n, tls.port, 0), n.Host, tls.port)
	}
	prefix := "service/" + c.Scope + "/"
	testenv.Eventually(t, 90*time.Second, 500*time.Millisecond, func() error {
		for _, n := range c.Nodes {
			if v, err := showOn(t, n, "archive_command"); err != nil || !strings.Contains(v, "archive-push") {
				return fmt.Errorf("%s: archive_command %q (%w)", n.Name, v, err)
			}
		}
		if rec := kv(t, c.ConsulAddr, prefix)["members/"+s.Name][0]; !strings.Contains(rec, `"data_dir"`) {
			return fmt.Errorf("%s publishes no data_dir yet: %s", s.Name, rec)
		}
		if code, body := getURL(p.APIURL() + "/api/v1/backups"); code != http.StatusOK {
			return fmt.Errorf("GET /api/v1/backups: %d %s", code, body)
		}
		return nil
	})
	ctx := context.Background()
	if err := p.Exec(ctx, "CREATE TABLE sb (v int); INSERT INTO sb SELECT generate_series(1, 100)"); err != nil {
		t.Fatal(err)
	}
	// run_on standby refuses a standby whose published replay position is behind the
	// primary's by more than the lag limit (1 MiB). After a WAL switch on an idle primary
	// (the leader's repository check forces one) the primary reports the next segment's
	// start while the standby's replay position stays at the end of the switch record, one
	// segment minus a little "behind", until more WAL is written: the first request is
	// refused for that (measured: "replay lag 16672520 bytes" every run), the next one,
	// after more WAL, is served. Wait for the published position, and try again a few times.
	var j client.Job
	var start time.Time
	for attempt := 1; attempt <= 5; attempt++ {
		testenv.Eventually(t, 30*time.Second, 250*time.Millisecond, func() error {
			at, err := p.QueryInt(ctx, "SELECT (pg_current_wal_lsn() - '0/0')::bigint")
			if err != nil {
				return err
			}
			var rec struct {
				ReplayLSN *uint64 `json:"replay_lsn"`
			}
			raw := kv(t, c.ConsulAddr, prefix)["members/"+s.Name][0]
			if err := json.Unmarshal([]byte(raw), &rec); err != nil || rec.ReplayLSN == nil || *rec.ReplayLSN < uint64(at) {
				return fmt.Errorf("%s has not published the replay position %d yet: %s", s.Name, at, raw)
			}
			return nil
		})
		start = time.Now()
		j = waitJob(t, p, startBackup(t, p, "full"), 4*time.Minute)
		if j.State != client.JobFailed || !strings.Contains(j.Error, "replay lag") {
			break
		}
		t.Logf("attempt %d refused: %s", attempt, j.Error)
	}
	t.Logf("full backup from the standby over TLS took %s: %s", time.Since(start).Round(time.Millisecond), j.Backup.MemberReason)
	for _, ph := range j.Phases {
		t.Logf("  %s  %s", ph.At.Format("15:04:05.000"), ph.Name)
	}
	via := fmt.Sprintf("through its pgBackRest TLS server at %s:%d", s.Host, tls.port)
	if j.State != client.JobSucceeded || j.Backup.Member != s.Name || j.Node != p.Name || j.Backup.Label == "" || !strings.Contains(j.Backup.MemberReason, via) {
		t.Fatalf("backup from the standby over TLS: %s %s, served by %q (%s), job node %s", j.State, j.Error, j.Backup.Member, j.Backup.MemberReason, j.Node)
	}
	wantBackupListed(t, p, j)
	// pgBackRest's own record: a backup taken from the standby.
	manifest, err := os.ReadFile(filepath.Join(repo, "backup", c.Scope, j.Backup.Label, "backup.manifest"))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(manifest), "option-backup-standby=true") {
		t.Errorf("the manifest of %s does not record a backup from the standby:\n%s", j.Backup.Label, manifest)
	}

	// The backup restores: a new cluster bootstrapped from it holds the rows.
	boot := filepath.Join(ownedDir(t, "boot"), "bootstrap.json")
	doc := fmt.Sprintf(`{"bootstrap":{"method":"backup","backup_id":%q,"from":{"tool":"pgbackrest","pgbackrest":{"repo_path":%q,"stanza":%q}},
		"target":{"type":"immediate"}},"backup":{"tool":"pgbackrest","archive_timeout":"5s","pgbackrest":{"repo_path":%q}}}`, j.Backup.Label, repo, c.Scope, repo)
	if err := os.WriteFile(boot, []byte(doc), 0o644); err != nil {
		t.Fatal(err)
	}
	dst := harness.New(t, ramdBin, addr, 1, harness.Options{Env: map[string]string{"RAMD_BOOTSTRAP_CONFIG": boot}})
	start = time.Now()
	dst.StartAll()
	q := dst.WaitPrimary(4 * time.Minute)
	t.Logf("restored %s into a new cluster in %s", j.Backup.Label, time.Since(start).Round(time.Millisecond))
	if n, err := q.QueryInt(ctx, "SELECT count(*) FROM sb"); err != nil || n != 100 {
		t.Fatalf("restored rows: %d (%v), want 100", n, err)
	}
}

// TestPgBackRestTLSServerSupervised: the TLS server ramd runs is started again after a
// SIGKILL (by pid), stopped when the configuration turns it off, started again when it
// turns it on, and stopped with ramd.
func TestPgBackRestTLSServerSupervised(t *testing.T) {
	t.Parallel()
	addr := needReal(t)
	needTool(t, "pgbackrest")
	tls := newPgbrTLS(t, "127.0.0.6")
	repo := ownedDir(t, "repo")
	c := harness.New(t, ramdBin, addr, 1, harness.Options{NodeAddr: map[string]string{"n1": "127.0.0.6"}})
	c.StartAll()
	p := c.WaitPrimary(120 * time.Second)
	if code, body := patch(t, p.APIURL()+"/config", tls.config(repo, "primary", true), ""); code != http.StatusOK {
		t.Fatalf("PATCH backup: %d %s", code, body)
	}
	pid := waitServer(t, p, tls.port, 0)
	for i := range 3 {
		if err := syscall.Kill(pid, syscall.SIGKILL); err != nil {
			t.Fatal(err)
		}
		start := time.Now()
		next := waitServer(t, p, tls.port, pid)
		t.Logf("kill %d: server %d killed, %d serves again after %s", i+1, pid, next, time.Since(start).Round(time.Millisecond))
		if err := gone(pid); err != nil {
			t.Error(err)
		}
		pid = next
	}
	// Off: the server stops and its port closes.
	if code, body := patch(t, p.APIURL()+"/config", tls.config(repo, "primary", false), ""); code != http.StatusOK {
		t.Fatalf("PATCH tls_server off: %d %s", code, body)
	}
	testenv.Eventually(t, 30*time.Second, 200*time.Millisecond, func() error {
		if now := serverPid(p); now != 0 {
			return fmt.Errorf("pid file still names %d", now)
		}
		return gone(pid)
	})
	// On again, then ramd stops: the server stops with it.
	if code, body := patch(t, p.APIURL()+"/config", tls.config(repo, "primary", true), ""); code != http.StatusOK {
		t.Fatalf("PATCH tls_server on: %d %s", code, body)
	}
	pid = waitServer(t, p, tls.port, 0)
	if err := p.Stop(); err != nil {
		t.Fatal(err)
	}
	testenv.Eventually(t, 10*time.Second, 100*time.Millisecond, func() error { return gone(pid) })
}
