package integration

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/ramd-project/ramd/api/client"
	"github.com/ramd-project/ramd/test/harness"
	"github.com/ramd-project/ramd/test/testenv"
)

// pgbackrestCluster starts a cluster of size nodes with a local pgBackRest repository, waits
// until every member archives into it and takes a full backup.
func pgbackrestCluster(t *testing.T, size int) (*harness.Cluster, *harness.Node, string) {
	t.Helper()
	addr := needReal(t)
	needTool(t, "pgbackrest")
	repo := ownedDir(t, "repo")
	c := harness.New(t, ramdBin, addr, size, harness.Options{})
	c.StartAll()
	p := c.WaitPrimary(120 * time.Second)
	c.WaitReplicas(120 * time.Second)
	cfg := fmt.Sprintf(`{"backup":{"tool":"pgbackrest","archive_timeout":"5s","pgbackrest":{"repo_path":%q}}}`, repo)
	if code, body := patch(t, p.APIURL()+"/config", cfg, ""); code != http.StatusOK {
		t.Fatalf("PATCH backup: %d %s", code, body)
	}
	testenv.Eventually(t, 90*time.Second, 500*time.Millisecond, func() error {
		for _, n := range c.Nodes {
			v, err := showOn(t, n, "archive_command")
			if err != nil || !strings.Contains(v, "archive-push") {
				return fmt.Errorf("%s: archive_command %q (%w)", n.Name, v, err)
			}
		}
		if code, body := getURL(p.APIURL() + "/api/v1/backups"); code != http.StatusOK {
			return fmt.Errorf("GET /api/v1/backups: %d %s", code, body)
		}
		return nil
	})
	start := time.Now()
	if j := waitJob(t, p, startBackup(t, p, "full"), 3*time.Minute); j.State != client.JobSucceeded {
		t.Fatalf("full backup: %s %s", j.State, j.Error)
	}
	t.Logf("full backup job took %s", time.Since(start).Round(time.Millisecond))
	return c, p, repo
}

// restoreRefused posts a restore request that must be refused with status code and field.
func restoreRefused(t *testing.T, n *harness.Node, path, body string, code int, field string) {
	t.Helper()
	got, answer := post(t, n.APIURL()+path, body)
	var e client.ErrorBody
	if got != code || json.Unmarshal([]byte(answer), &e) != nil || e.Field != field {
		t.Errorf("POST %s %s: %d %s, want %d naming %s", path, body, got, answer, code, field)
	}
}

// waitNoRestoreState waits until the backup queue holds no restore state.
func waitNoRestoreState(t *testing.T, c *harness.Cluster) {
	t.Helper()
	testenv.Eventually(t, 30*time.Second, 250*time.Millisecond, func() error {
		if q := kv(t, c.ConsulAddr, "service/"+c.Scope+"/")["ramd/backup/queue"][0]; strings.Contains(q, `"restore"`) {
			return fmt.Errorf("restore state in the queue: %s", q)
		}
		return nil
	})
}

// restoreJobs are the restore jobs the cluster recorded.
func restoreJobs(t *testing.T, n *harness.Node) []client.Job {
	t.Helper()
	var js, out []client.Job
	code, body := getURL(n.APIURL() + "/api/v1/backup/jobs")
	if code != http.StatusOK || json.Unmarshal([]byte(body), &js) != nil {
		t.Fatalf("GET /api/v1/backup/jobs: %d %s", code, body)
	}
	for _, j := range js {
		if j.Kind == "restore" {
			out = append(out, j)
		}
	}
	return out
}

// TestBackupInPlaceRestore: a 3-node cluster restored in place to a point in time through
// the API. Refusals (no or wrong confirmation, a target in the future or before the first
// recoverability point, another job running) change nothing. The restore job passes its
// phases; afterwards the primary holds exactly the rows committed before the target, every
// member streams on the new timeline with the same rows, and archiving goes on into the same
// stanza (a WAL switch of the new timeline lands in the archive, the tool's check passes).
func TestBackupInPlaceRestore(t *testing.T) {
	t.Parallel()
	ctl := buildRamctrl(t)
	c, p, repo := pgbackrestCluster(t, 3)
	ctx := context.Background()
	pitrTable(t, p)
	target := pitrTarget(t, p, archiverPast(t, p))
	tl := timeline(t, p)

	// Refusals: each answers with the field and leaves the cluster as it was.
	future := time.Now().Add(time.Hour).UTC().Format(time.RFC3339)
	restoreRefused(t, p, "/api/v1/restore", `{}`, http.StatusBadRequest, "confirm")
	restoreRefused(t, c.Nodes[1], "/api/v1/backup/restore", `{"confirm":"another"}`, http.StatusBadRequest, "confirm")
	restoreRefused(t, p, "/api/v1/restore", `{"target":{"type":"time","value":"`+future+`"},"confirm":"`+c.Scope+`"}`, http.StatusBadRequest, "target.value")
	restoreRefused(t, p, "/api/v1/restore", `{"target":{"type":"time","value":"2001-01-01T00:00:00Z"},"confirm":"`+c.Scope+`"}`, http.StatusBadRequest, "target.value")
	restoreRefused(t, p, "/api/v1/restore", `{"backup_id":"20010101-000000F","confirm":"`+c.Scope+`"}`, http.StatusBadRequest, "backup_id")
	busy := startBackup(t, p, "incr")
	restoreRefused(t, c.Nodes[2], "/api/v1/restore", `{"target":{"type":"time","value":"`+target+`"},"confirm":"`+c.Scope+`"}`, http.StatusConflict, "queue")
	if j := waitJob(t, p, busy, 3*time.Minute); j.State != client.JobSucceeded {
		t.Fatalf("incremental backup: %s %s", j.State, j.Error)
	}
	if js := restoreJobs(t, p); len(js) != 0 {
		t.Errorf("refused restores left jobs: %+v", js)
	}
	waitNoRestoreState(t, c)
	// Eventually: on a loaded machine the fence guard may restart the primary in place
	// meanwhile, which is not the refusals' doing.
	testenv.Eventually(t, 30*time.Second, 250*time.Millisecond, func() error {
		if n, err := p.QueryInt(ctx, "SELECT count(*) FROM pitr"); err != nil || n != 1500 || timeline(t, p) != tl {
			return fmt.Errorf("after the refusals: %d rows (%w), timeline %d; want 1500 on timeline %d", n, err, timeline(t, p), tl)
		}
		return nil
	})
	if q := c.WaitPrimary(10 * time.Second); q != p {
		t.Fatalf("after the refusals the primary is %s, not %s", q.Name, p.Name)
	}

	// A restore that cannot reach its target (no such restore point) fails after the
	// restore: the old data directory is put back and the cluster runs on as before.
	// Asked with ramctrl, which follows the job phase by phase.
	start := time.Now()
	exit, out, errOut := ctl.run(t, nil, "backup", "restore", "--api", p.APIURL(), "--target-name", "never-created", "--confirm", c.Scope)
	var failedID string
	if _, err := fmt.Sscanf(out, "job %s queued", &failedID); err != nil || exit == 0 ||
		!strings.Contains(out, "restoring backup") || !strings.Contains(errOut, "failed") {
		t.Fatalf("ramctrl backup restore to a missing restore point: exit %d (%v)\n%s%s", exit, err, out, errOut)
	}
	failed := waitJob(t, p, failedID, 10*time.Minute)
	for _, ph := range failed.Phases {
		t.Logf("  %s  %-70s %s", ph.At.Format("15:04:05.000"), ph.Name, ph.Node)
	}
	if failed.State != client.JobFailed || !strings.Contains(failed.Error, "recovery") {
		t.Fatalf("restore to a missing restore point: %s %q", failed.State, failed.Error)
	}
	c.WaitReplicas(3 * time.Minute)
	t.Logf("failed restore rolled back, cluster streaming again after %s: %s", time.Since(start).Round(time.Millisecond), failed.Error)
	if n, err := p.QueryInt(ctx, "SELECT count(*) FROM pitr"); err != nil || n != 1500 || timeline(t, p) != tl {
		t.Fatalf("after the failed restore: %d rows (%v), timeline %d; want 1500 on timeline %d", n, err, timeline(t, p), tl)
	}
	if q := c.WaitPrimary(30 * time.Second); q != p {
		t.Fatalf("after the failed restore the primary is %s, not %s", q.Name, p.Name)
	}

	// The restore, asked on a replica, run by the leader.
	q, newTL := inPlaceRestore(t, c, p, c.Nodes[1], "pgBackRest", target)

	// Archiving goes on into the same stanza, on the new timeline.
	prefix := fmt.Sprintf("%08X", newTL)
	testenv.Eventually(t, 90*time.Second, time.Second, func() error {
		if _, err := q.QueryString(ctx, "SELECT pg_walfile_name(pg_switch_wal())"); err != nil {
			return err
		}
		a := archived(t, repo)
		if !a[prefix+".history"] {
			return fmt.Errorf("no %s.history in the archive", prefix)
		}
		for name := range a {
			if strings.HasPrefix(name, prefix) && !strings.HasSuffix(name, ".history") {
				return nil
			}
		}
		return fmt.Errorf("no segment of timeline %d in the archive yet", newTL)
	})
	if chk := waitJob(t, q, mustAccepted(t, q, "/api/v1/backups/check"), 3*time.Minute); chk.State != client.JobSucceeded {
		t.Errorf("pgbackrest check after the restore: %s %s", chk.State, chk.Error)
	}
	if bk := waitJob(t, q, startBackup(t, q, "full"), 3*time.Minute); bk.State != client.JobSucceeded {
		t.Errorf("a backup after the restore: %s %s", bk.State, bk.Error)
	}
}

// TestBackupFromStandby: with run_on prefer-standby the backup job runs pgBackRest against
// the streaming standby (the primary as pg2) and records it as the member that served; with
// the standby stopped the next backup falls back to the primary and says why.
func TestBackupFromStandby(t *testing.T) {
	t.Parallel()
	c, p, repo := pgbackrestCluster(t, 2)
	var s *harness.Node
	for _, n := range c.Nodes {
		if n != p {
			s = n
		}
	}
	cfg := fmt.Sprintf(`{"backup":{"tool":"pgbackrest","archive_timeout":"5s","run_on":"prefer-standby","pgbackrest":{"repo_path":%q}}}`, repo)
	if code, body := patch(t, p.APIURL()+"/config", cfg, ""); code != http.StatusOK {
		t.Fatalf("PATCH run_on: %d %s", code, body)
	}
	prefix := "service/" + c.Scope + "/"
	testenv.Eventually(t, 30*time.Second, 250*time.Millisecond, func() error {
		rec := kv(t, c.ConsulAddr, prefix)["members/"+s.Name][0]
		if !strings.Contains(rec, `"data_dir"`) {
			return fmt.Errorf("%s publishes no data_dir yet: %s", s.Name, rec)
		}
		return nil
	})
	ctx := context.Background()
	if err := p.Exec(ctx, "CREATE TABLE sb (v int); INSERT INTO sb SELECT generate_series(1, 100)"); err != nil {
		t.Fatal(err)
	}
	// The leader judges a standby's lag from its record and pg_stat_replication, which an
	// idle standby updates every few seconds: under load the first backup's WAL can still
	// count against it (8.6 MiB once). The choice under test is that of a standby within
	// the limit.
	waitCaughtUp(t, p, s)
	start := time.Now()
	j := waitJob(t, p, startBackup(t, p, "full"), 4*time.Minute)
	t.Logf("full backup from the standby took %s: %s", time.Since(start).Round(time.Millisecond), j.Backup.MemberReason)
	for _, ph := range j.Phases {
		t.Logf("  %s  %s", ph.At.Format("15:04:05.000"), ph.Name)
	}
	if j.State != client.JobSucceeded || j.Backup.Member != s.Name || j.Node != p.Name || j.Backup.Label == "" {
		t.Fatalf("backup from the standby: %s %s, served by %q (%s), job node %s", j.State, j.Error, j.Backup.Member, j.Backup.MemberReason, j.Node)
	}
	// pgBackRest's own record: the backup exists and is complete.
	wantBackupListed(t, p, j)

	// The standby stopped: the next backup falls back to the primary.
	if err := s.Stop(); err != nil {
		t.Fatal(err)
	}
	testenv.Eventually(t, 30*time.Second, 250*time.Millisecond, func() error {
		if rec, ok := kv(t, c.ConsulAddr, prefix)["members/"+s.Name]; ok && strings.Contains(rec[0], `"state":"running"`) {
			return fmt.Errorf("%s still published as running", s.Name)
		}
		return nil
	})
	j = waitJob(t, p, startBackup(t, p, "incr"), 4*time.Minute)
	t.Logf("with the standby stopped: %s", j.Backup.MemberReason)
	if j.State != client.JobSucceeded || j.Backup.Member != p.Name || !strings.Contains(j.Backup.MemberReason, "the primary serves") {
		t.Fatalf("fallback to the primary: %s %s, served by %q (%s)", j.State, j.Error, j.Backup.Member, j.Backup.MemberReason)
	}
}

// TestBackupInPlaceRestoreLeaderKilled: the leader's ramd is killed while it restores. The
// restore state holds the members only while its leader holds the lock: once the lock is
// gone, a replica (still holding the data from before the restore) takes over, ends the job
// as failed and removes the state.
func TestBackupInPlaceRestoreLeaderKilled(t *testing.T) {
	t.Parallel()
	c, p, _ := pgbackrestCluster(t, 3)
	ctx := context.Background()
	if err := p.Exec(ctx, "CREATE TABLE kept (v int); INSERT INTO kept SELECT generate_series(1, 300)"); err != nil {
		t.Fatal(err)
	}
	code, body := post(t, p.APIURL()+"/api/v1/restore", `{"target":{"type":"immediate"},"confirm":"`+c.Scope+`"}`)
	var a client.JobAccepted
	if code != http.StatusAccepted || json.Unmarshal([]byte(body), &a) != nil {
		t.Fatalf("POST /api/v1/restore: %d %s", code, body)
	}
	testenv.Eventually(t, 2*time.Minute, 100*time.Millisecond, func() error {
		var j client.Job
		code, body := getURL(p.APIURL() + "/api/v1/backup/status/" + a.JobID)
		if code != http.StatusOK && code != http.StatusAccepted || json.Unmarshal([]byte(body), &j) != nil {
			return fmt.Errorf("job: %d %s", code, body)
		}
		for _, ph := range j.Phases {
			if strings.HasPrefix(ph.Name, "restoring backup") {
				return nil
			}
		}
		return fmt.Errorf("job %s not restoring yet (%d phases)", j.State, len(j.Phases))
	})
	p.Kill()
	start := time.Now()
	var q *harness.Node
	testenv.Eventually(t, 3*time.Minute, 500*time.Millisecond, func() error {
		n, err := c.Primary()
		if err != nil {
			return err
		}
		if n == p {
			return fmt.Errorf("the killed node is primary")
		}
		q = n
		return nil
	})
	t.Logf("%s took over %s after the leader was killed during the restore", q.Name, time.Since(start).Round(time.Millisecond))
	if rows, err := q.QueryInt(ctx, "SELECT count(*) FROM kept"); err != nil || rows != 300 {
		t.Fatalf("the new primary has %d rows (%v), want the 300 from before the restore", rows, err)
	}
	j := waitJob(t, q, a.JobID, 2*time.Minute)
	if j.State != client.JobFailed {
		t.Errorf("the interrupted restore job: %s %s", j.State, j.Error)
	}
	t.Logf("job: %s", j.Error)
	waitNoRestoreState(t, c)
}

// pitrTable creates table pitr with 1000 rows on p.
func pitrTable(t *testing.T, p *harness.Node) {
	t.Helper()
	if err := p.Exec(context.Background(), "CREATE TABLE pitr (v int); INSERT INTO pitr SELECT generate_series(1, 1000)"); err != nil {
		t.Fatal(err)
	}
}

// pitrTarget takes a time target on p between pauses of 1.1 s, writes 500 more rows into
// pitr after it, switches WAL and calls archived with the switched segment, which waits until
// the archive has it. It returns the target (RFC 3339, microseconds): a restore to it holds
// exactly the rows written before.
func pitrTarget(t *testing.T, p *harness.Node, archived func(seg string)) string {
	t.Helper()
	ctx := context.Background()
	time.Sleep(1100 * time.Millisecond)
	target, err := p.QueryString(ctx, `SELECT to_char(now() AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"')`)
	if err != nil {
		t.Fatal(err)
	}
	time.Sleep(1100 * time.Millisecond)
	if err := p.Exec(ctx, "INSERT INTO pitr SELECT generate_series(1001, 1500)"); err != nil {
		t.Fatal(err)
	}
	seg, err := p.QueryString(ctx, "SELECT pg_walfile_name(pg_switch_wal())")
	if err != nil {
		t.Fatal(err)
	}
	archived(seg)
	return target
}

// archiverPast returns an archived function for pitrTarget that waits until p's
// pg_stat_archiver has archived the segment (archive_command succeeded).
func archiverPast(t *testing.T, p *harness.Node) func(seg string) {
	t.Helper()
	return func(seg string) {
		t.Helper()
		testenv.Eventually(t, 60*time.Second, 200*time.Millisecond, func() error {
			last, err := p.QueryString(context.Background(), "SELECT coalesce(last_archived_wal, '') FROM pg_stat_archiver")
			if err != nil || last < seg {
				return fmt.Errorf("archived up to %q, waiting for %s (%w)", last, seg, err)
			}
			return nil
		})
	}
}

// inPlaceRestore asks ask for an in-place restore of the cluster to the time target, follows
// the job on p through the seed's route (/api/v1/backup/status/{id}), and checks the outcome: the job succeeded on the leader with a new timeline, the primary holds
// exactly the 1000 rows committed before the target, its archive_command is not the
// tool's "false", and every other member was cloned again and streams on the new timeline.
// It returns the primary and its timeline.
func inPlaceRestore(t *testing.T, c *harness.Cluster, p, ask *harness.Node, tool, target string) (*harness.Node, int) {
	t.Helper()
	ctx := context.Background()
	tl := timeline(t, p)
	start := time.Now()
	code, body := post(t, ask.APIURL()+"/api/v1/restore", `{"target":{"type":"time","value":"`+target+`"},"confirm":"`+c.Scope+`"}`)
	var a client.JobAccepted
	if code != http.StatusAccepted || json.Unmarshal([]byte(body), &a) != nil {
		t.Fatalf("POST /api/v1/restore: %d %s", code, body)
	}
	j := waitJobAt(t, p, "/api/v1/backup/status/"+a.JobID, 10*time.Minute)
	took := time.Since(start)
	for _, ph := range j.Phases {
		t.Logf("  %s  %-70s %s", ph.At.Format("15:04:05.000"), ph.Name, ph.Node)
	}
	if j.State != client.JobSucceeded || j.Backup == nil || j.Backup.Timeline <= tl || j.Node != p.Name {
		t.Fatalf("restore job: %s %s node %s backup %+v", j.State, j.Error, j.Node, j.Backup)
	}
	t.Logf("in-place restore with %s of %d members to %s took %s (job), new timeline %d", tool, len(c.Nodes), target, took.Round(time.Millisecond), j.Backup.Timeline)
	q := c.WaitPrimary(60 * time.Second)
	c.WaitReplicas(5 * time.Minute)
	if q != p {
		t.Errorf("the restored primary is %s, not the leader %s that ran the job", q.Name, p.Name)
	}
	if n, err := q.QueryInt(ctx, "SELECT count(*) FROM pitr"); err != nil || n != 1000 {
		t.Fatalf("restored rows: %d (%v), want the 1000 committed before the target", n, err)
	}
	newTL := timeline(t, q)
	if newTL != j.Backup.Timeline {
		t.Errorf("primary timeline %d, job says %d", newTL, j.Backup.Timeline)
	}
	if v, _ := showOn(t, q, "archive_command"); v == "false" {
		t.Errorf("the restored primary kept the tool's archive_command = false")
	}
	if err := q.Exec(ctx, "INSERT INTO pitr VALUES (-1)"); err != nil {
		t.Fatal(err)
	}
	for _, n := range c.Nodes {
		if n == q {
			continue
		}
		testenv.Eventually(t, 60*time.Second, 250*time.Millisecond, func() error {
			rows, err := n.QueryInt(ctx, "SELECT count(*) FROM pitr")
			if err != nil || rows != 1001 || timeline(t, n) != newTL {
				return fmt.Errorf("%s: %d rows (%w), timeline %d; want 1001 on %d", n.Name, rows, err, timeline(t, n), newTL)
			}
			return nil
		})
	}
	return q, newTL
}

// wantBackupListed checks that the backup job j took is listed by p's API, done, with its job.
func wantBackupListed(t *testing.T, p *harness.Node, j client.Job) {
	t.Helper()
	var list client.BackupList
	code, body := getURL(p.APIURL() + "/api/v1/backups")
	if code != http.StatusOK || json.Unmarshal([]byte(body), &list) != nil {
		t.Fatalf("GET /api/v1/backups: %d %s", code, body)
	}
	found := false
	for _, b := range list.Backups {
		found = found || b.ID == j.Backup.Label && b.Status == "done" && b.JobID == j.ID
	}
	if !found {
		t.Errorf("backup %s of job %s not in the list: %+v", j.Backup.Label, j.ID, list.Backups)
	}
}
