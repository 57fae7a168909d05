package integration

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ramd-project/ramd/api/client"
	"github.com/ramd-project/ramd/test/harness"
	"github.com/ramd-project/ramd/test/testenv"
)

// barmanCluster starts a cluster of size nodes backed up by a local Barman server (no
// SSH) with backup.run_on runOn, and waits until Barman's check passes through ramd. It
// returns the cluster, its primary and Barman's home.
func barmanCluster(t *testing.T, size int, runOn string) (*harness.Cluster, *harness.Node, string) {
	t.Helper()
	addr := needReal(t)
	needTool(t, "barman")
	home := ownedDir(t, "barman")
	c := harness.New(t, ramdBin, addr, size, harness.Options{})
	c.StartAll()
	p := c.WaitPrimary(120 * time.Second)
	c.WaitReplicas(120 * time.Second)
	cfg := fmt.Sprintf(`{"backup":{"tool":"barman","run_on":%q,"barman":{"home":%q}}}`, runOn, home)
	if code, body := patch(t, p.APIURL()+"/config", cfg, ""); code != http.StatusOK {
		t.Fatalf("PATCH backup: %d %s", code, body)
	}
	start := time.Now()
	testenv.Eventually(t, 3*time.Minute, time.Second, func() error {
		code, body := post(t, p.APIURL()+"/api/v1/backups/check", "")
		var a client.JobAccepted
		if code != http.StatusAccepted || json.Unmarshal([]byte(body), &a) != nil {
			return fmt.Errorf("POST /api/v1/backups/check: %d %s", code, body)
		}
		if j := waitJob(t, p, a.JobID, 2*time.Minute); j.State != client.JobSucceeded {
			return fmt.Errorf("barman check: %s", j.Error)
		}
		return nil
	})
	t.Logf("barman check OK %s after the configuration", time.Since(start).Round(time.Millisecond))
	return c, p, home
}

// barmanBackupInfo is Barman's backup.info of a backup of the cluster's server.
func barmanBackupInfo(t *testing.T, c *harness.Cluster, home, id string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(home, c.Scope, "base", id, "backup.info"))
	if err != nil {
		t.Fatalf("Barman's record of backup %s: %v", id, err)
	}
	return string(b)
}

// barmanArchived waits until seg is in Barman's WAL archive (ramd's maintenance, barman cron
// once a minute, files what pg_receivewal received). It reads the directory rather than
// GET /api/v1/backups: with Barman that runs a Python process per backup, which can take
// longer than the client's timeout on a loaded machine.
func barmanArchived(t *testing.T, c *harness.Cluster, home, seg string) {
	t.Helper()
	path := filepath.Join(home, c.Scope, "wals", seg[:16], seg)
	testenv.Eventually(t, 3*time.Minute, time.Second, func() error {
		if _, err := os.Stat(path); err != nil {
			return fmt.Errorf("%s not in Barman's archive yet", seg)
		}
		return nil
	})
}

// TestBackupFromStandbyBarman: with run_on prefer-standby the Barman backup job runs
// against the streaming standby (conninfo and pg_basebackup at the standby,
// primary_conninfo at the primary) and records it as the member that served; Barman's own
// record names the standby's data directory and PostgreSQL's backup label says "BACKUP
// FROM: standby". The streaming archiver and its slot stay on the primary. With the standby
// stopped, the next backup runs on the primary and says why; with run_on standby it fails
// and names the reason.
func TestBackupFromStandbyBarman(t *testing.T) {
	t.Parallel()
	c, p, home := barmanCluster(t, 2, "prefer-standby")
	s := c.Other(p)
	ctx := context.Background()
	if err := p.Exec(ctx, "CREATE TABLE sb (v int); INSERT INTO sb SELECT generate_series(1, 1000)"); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	j := waitJob(t, p, startBackup(t, p, "full"), 4*time.Minute)
	t.Logf("Barman full backup from the standby took %s: %s", time.Since(start).Round(time.Millisecond), j.Backup.MemberReason)
	for _, ph := range j.Phases {
		t.Logf("  %s  %s", ph.At.Format("15:04:05.000"), ph.Name)
	}
	if j.State != client.JobSucceeded || j.Backup.Member != s.Name || j.Node != p.Name || j.Backup.Label == "" {
		t.Fatalf("backup from the standby: %s %s, served by %q (%s), job node %s", j.State, j.Error, j.Backup.Member, j.Backup.MemberReason, j.Node)
	}
	info := barmanBackupInfo(t, c, home, j.Backup.Label)
	if !strings.Contains(info, "\npgdata="+s.DataDir+"\n") || !strings.Contains(info, "BACKUP FROM: standby") {
		t.Errorf("Barman's record of %s does not show the standby %s (%s) as the source:\n%s", j.Backup.Label, s.Name, s.DataDir, info)
	}
	for _, n := range []*harness.Node{p, s} {
		want := int64(0)
		if n == p {
			want = 1
		}
		if got, err := n.QueryInt(ctx, "SELECT count(*) FROM pg_replication_slots WHERE slot_name = 'barman' AND active"); err != nil || got != want {
			t.Errorf("%s: %d active barman slots (%v), want %d: the archiver streams from the primary", n.Name, got, err, want)
		}
	}
	if chk := waitJob(t, p, mustAccepted(t, p, "/api/v1/backups/check"), 2*time.Minute); chk.State != client.JobSucceeded {
		t.Errorf("barman check after the backup from the standby: %s %s", chk.State, chk.Error)
	}

	// The standby stopped: the next backup falls back to the primary.
	if err := s.Stop(); err != nil {
		t.Fatal(err)
	}
	prefix := "service/" + c.Scope + "/"
	testenv.Eventually(t, 30*time.Second, 250*time.Millisecond, func() error {
		if rec, ok := kv(t, c.ConsulAddr, prefix)["members/"+s.Name]; ok && strings.Contains(rec[0], `"state":"running"`) {
			return fmt.Errorf("%s still published as running", s.Name)
		}
		return nil
	})
	start = time.Now()
	j = waitJob(t, p, startBackup(t, p, "full"), 4*time.Minute)
	t.Logf("with the standby stopped (%s): %s", time.Since(start).Round(time.Millisecond), j.Backup.MemberReason)
	if j.State != client.JobSucceeded || j.Backup.Member != p.Name || !strings.Contains(j.Backup.MemberReason, "the primary serves") {
		t.Fatalf("fallback to the primary: %s %s, served by %q (%s)", j.State, j.Error, j.Backup.Member, j.Backup.MemberReason)
	}
	if info := barmanBackupInfo(t, c, home, j.Backup.Label); !strings.Contains(info, "\npgdata="+p.DataDir+"\n") || strings.Contains(info, "BACKUP FROM: standby") {
		t.Errorf("Barman's record of %s does not show the primary as the source:\n%s", j.Backup.Label, info)
	}

	// run_on standby with no standby: the job fails and says why.
	cfg := fmt.Sprintf(`{"backup":{"tool":"barman","run_on":"standby","barman":{"home":%q}}}`, home)
	if code, body := patch(t, p.APIURL()+"/config", cfg, ""); code != http.StatusOK {
		t.Fatalf("PATCH run_on standby: %d %s", code, body)
	}
	testenv.Eventually(t, 30*time.Second, time.Second, func() error {
		j = waitJob(t, p, startBackup(t, p, "full"), 2*time.Minute)
		if j.State != client.JobFailed || !strings.Contains(j.Error, "backup.run_on is standby") {
			return fmt.Errorf("run_on standby with the standby stopped: %s %q", j.State, j.Error)
		}
		return nil
	})
	t.Logf("run_on standby, no standby: %s", j.Error)
}

// TestBackupInPlaceRestoreBarman: a 2-member cluster backed up by Barman (from the standby,
// run_on prefer-standby) restored in place to a point in time through the API. Afterwards
// the primary holds exactly the rows committed before the target, the other member was
// cloned again and streams on the new timeline, and archiving goes on: Barman's streaming
// archiver follows the new timeline (a switched segment of it reaches the archive), its
// check passes and a new backup succeeds.
func TestBackupInPlaceRestoreBarman(t *testing.T) {
	t.Parallel()
	c, p, home := barmanCluster(t, 2, "prefer-standby")
	bk, target := inPlaceRows(t, p, func(seg string) { barmanArchived(t, c, home, seg) })
	t.Logf("the backup restored came from %s", bk.Backup.Member)
	q, newTL := inPlaceRestore(t, c, p, p, "Barman", target)

	// Archiving goes on, on the new timeline: a switched segment reaches Barman, its check
	// passes and a new backup succeeds.
	seg2, err := q.QueryString(context.Background(), "SELECT pg_walfile_name(pg_switch_wal())")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(seg2, fmt.Sprintf("%08X", newTL)) {
		t.Errorf("segment %s is not of timeline %d", seg2, newTL)
	}
	barmanArchived(t, c, home, seg2)
	afterInPlaceRestore(t, q)
}

// inPlaceRows writes 1000 rows into table pitr, takes a full backup job, then a target
// (pitrTarget, archived waiting for its segment). It returns the backup job and the target.
func inPlaceRows(t *testing.T, p *harness.Node, archived func(seg string)) (client.Job, string) {
	t.Helper()
	pitrTable(t, p)
	start := time.Now()
	bk := waitJob(t, p, startBackup(t, p, "full"), 4*time.Minute)
	if bk.State != client.JobSucceeded {
		t.Fatalf("full backup: %s %s", bk.State, bk.Error)
	}
	t.Logf("full backup %s from %s took %s", bk.Backup.Label, bk.Backup.Member, time.Since(start).Round(time.Millisecond))
	return bk, pitrTarget(t, p, archived)
}

// afterInPlaceRestore checks that the tool's check and a new backup succeed on the
// restored primary q.
func afterInPlaceRestore(t *testing.T, q *harness.Node) {
	t.Helper()
	if chk := waitJob(t, q, mustAccepted(t, q, "/api/v1/backups/check"), 3*time.Minute); chk.State != client.JobSucceeded {
		t.Errorf("the tool's check after the restore: %s %s", chk.State, chk.Error)
	}
	start := time.Now()
	if bk := waitJob(t, q, startBackup(t, q, "full"), 4*time.Minute); bk.State != client.JobSucceeded {
		t.Errorf("a backup after the restore: %s %s", bk.State, bk.Error)
	} else {
		t.Logf("a backup after the restore (from %s) took %s", bk.Backup.Member, time.Since(start).Round(time.Millisecond))
	}
}

// TestBackupInPlaceRestoreCustom: the same in-place restore with the shipped example
// script as a custom tool: exactly the rows before the target on the primary, the other
// member cloned again, and archiving on the new timeline into the script's repository
// (its history file and a switched segment), then the check and a new backup.
func TestBackupInPlaceRestoreCustom(t *testing.T) {
	t.Parallel()
	addr := needReal(t)
	dir := ownedDir(t, "custom")
	script := filepath.Join(dir, "ramd-backup-example.sh")
	src, err := os.ReadFile(filepath.Join("..", "..", "deploy", "backup", "ramd-backup-example.sh"))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(script, src, 0o755); err != nil { //nolint:gosec // an executable script
		t.Fatal(err)
	}
	repo := filepath.Join(dir, "repo")
	c := harness.New(t, ramdBin, addr, 2, harness.Options{})
	c.StartAll()
	p := c.WaitPrimary(120 * time.Second)
	c.WaitReplicas(120 * time.Second)
	cmd := script + " " + repo
	cfg := map[string]any{"backup": map[string]any{"tool": "custom", "archive_timeout": "5s",
		"custom": map[string]any{"backup": cmd, "list": cmd, "restore": cmd, "expire": cmd, "timeout": "2m",
			"archive_command": cmd + ` archive "%p" "%f"`, "restore_command": cmd + ` restore-wal "%f" "%p"`}}}
	body, _ := json.Marshal(cfg)
	if code, out := patch(t, p.APIURL()+"/config", string(body), ""); code != http.StatusOK {
		t.Fatalf("PATCH backup: %d %s", code, out)
	}
	ctx := context.Background()
	archivedOn := func(seg string) {
		t.Helper()
		testenv.Eventually(t, 60*time.Second, 200*time.Millisecond, func() error {
			if _, err := os.Stat(filepath.Join(repo, "wal", seg)); err != nil {
				return fmt.Errorf("%s not in the script's archive yet", seg)
			}
			return nil
		})
	}
	testenv.Eventually(t, 90*time.Second, 500*time.Millisecond, func() error {
		for _, n := range c.Nodes {
			v, err := showOn(t, n, "archive_command")
			if err != nil || !strings.Contains(v, "ramd-backup-example.sh") {
				return fmt.Errorf("%s: archive_command %q (%w)", n.Name, v, err)
			}
		}
		return nil
	})
	_, target := inPlaceRows(t, p, archivedOn)
	q, newTL := inPlaceRestore(t, c, p, p, "the example script", target)
	seg2, err := q.QueryString(ctx, "SELECT pg_walfile_name(pg_switch_wal())")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(seg2, fmt.Sprintf("%08X", newTL)) {
		t.Errorf("segment %s is not of timeline %d", seg2, newTL)
	}
	archivedOn(fmt.Sprintf("%08X.history", newTL))
	archivedOn(seg2)
	afterInPlaceRestore(t, q)
}
