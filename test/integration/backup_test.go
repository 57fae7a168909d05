package integration

import (
	"context"
	"encoding/json"
	"fmt"
	"io/fs"
	"net/http"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ramd-project/ramd/api/client"
	"github.com/ramd-project/ramd/test/harness"
	"github.com/ramd-project/ramd/test/testenv"
)

// needTool skips (or fails under RAMD_TEST_REQUIRE_REAL=1) when a backup tool is missing.
func needTool(t *testing.T, name string) {
	t.Helper()
	if _, err := exec.LookPath(name); err != nil {
		testenv.Missing(t, "%s is not installed (make deps installs it)", name)
	}
}

// ownedDir is a new directory the PostgreSQL OS user owns (the tools run as it).
func ownedDir(t *testing.T, name string) string {
	t.Helper()
	dir := testenv.DataDir(t, name)
	if err := os.Mkdir(dir, 0o750); err != nil {
		t.Fatal(err)
	}
	if os.Geteuid() == 0 {
		u, err := user.Lookup("postgres")
		if err != nil {
			t.Fatalf("the postgres OS user: %v", err)
		}
		uid, _ := strconv.Atoi(u.Uid)
		gid, _ := strconv.Atoi(u.Gid)
		if err := os.Chown(dir, uid, gid); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

// waitJob follows a job until it ended, bounded by timeout.
func waitJob(t *testing.T, n *harness.Node, id string, timeout time.Duration) client.Job {
	t.Helper()
	return waitJobAt(t, n, "/api/v1/jobs/"+id, timeout)
}

// waitJobAt is waitJob reading the job at path (the seed's /api/v1/backup/status/{id}, or
// /api/v1/jobs/{id}).
func waitJobAt(t *testing.T, n *harness.Node, path string, timeout time.Duration) client.Job {
	t.Helper()
	var j client.Job
	testenv.Eventually(t, timeout, 500*time.Millisecond, func() error {
		code, body := getURL(n.APIURL() + path)
		if code != http.StatusOK && code != http.StatusAccepted {
			return fmt.Errorf("%s: %d %s", path, code, body)
		}
		if err := json.Unmarshal([]byte(body), &j); err != nil {
			return err
		}
		if !j.Ended() {
			return fmt.Errorf("%s still %s (%v)", path, j.State, j.Phases)
		}
		return nil
	})
	return j
}

// startBackup queues a backup through the API and returns its job id.
func startBackup(t *testing.T, n *harness.Node, typ string) string {
	t.Helper()
	code, body := post(t, n.APIURL()+"/api/v1/backups", `{"type":"`+typ+`"}`)
	if code != http.StatusAccepted {
		t.Fatalf("POST /api/v1/backups %s: %d %s", typ, code, body)
	}
	var a client.JobAccepted
	if err := json.Unmarshal([]byte(body), &a); err != nil || a.JobID == "" {
		t.Fatalf("POST /api/v1/backups: %s (%v)", body, err)
	}
	return a.JobID
}

// archived lists the WAL file names (segments and history files) in a pgBackRest archive.
func archived(t *testing.T, repo string) map[string]bool {
	t.Helper()
	out := map[string]bool{}
	_ = filepath.WalkDir(filepath.Join(repo, "archive"), func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return nil
		}
		name := d.Name()
		switch {
		case len(name) > 24 && name[24] == '-':
			out[name[:24]] = true
		case strings.HasSuffix(name, ".history"):
			out[name] = true
		}
		return nil
	})
	return out
}

// nextSegment is the WAL segment after seg (16 MiB segments: 256 per log file).
func nextSegment(seg string) string {
	tli, log, num := seg[:8], seg[8:16], seg[16:24]
	l, _ := strconv.ParseUint(log, 16, 32)
	s, _ := strconv.ParseUint(num, 16, 32)
	s++
	if s == 0x100 {
		s, l = 0, l+1
	}
	return fmt.Sprintf("%s%08X%08X", tli, l, s)
}

// TestBackupArchiveContinuity: pgBackRest through ramd's API (full, diff, incr backups as
// jobs, two requests queued, not failed), then the failover archive gap: archiving broken on
// the primary, WAL switches streamed to the replicas, the primary killed — every segment of
// the old timeline up to the switch point reaches the archive from the new primary, with the
// history file, and the tool's check passes there.
func TestBackupArchiveContinuity(t *testing.T) {
	t.Parallel()
	addr := needReal(t)
	needTool(t, "pgbackrest")
	repo := ownedDir(t, "repo")
	c := harness.New(t, ramdBin, addr, 3, harness.Options{})
	c.StartAll()
	p := c.WaitPrimary(120 * time.Second)
	c.WaitReplicas(120 * time.Second)
	ctx := context.Background()

	cfg := fmt.Sprintf(`{"backup":{"tool":"pgbackrest","archive_timeout":"5s","pgbackrest":{"repo_path":%q}}}`, repo)
	if code, body := patch(t, p.APIURL()+"/config", cfg, ""); code != http.StatusOK {
		t.Fatalf("PATCH backup: %d %s", code, body)
	}
	// Every member writes pgBackRest's configuration and the archive command; the leader
	// creates the stanza and checks archiving.
	testenv.Eventually(t, 90*time.Second, 500*time.Millisecond, func() error {
		for _, n := range c.Nodes {
			v, err := showOn(t, n, "archive_command")
			if err != nil || !strings.Contains(v, "archive-push") {
				return fmt.Errorf("%s: archive_command %q (%w)", n.Name, v, err)
			}
		}
		code, body := getURL(p.APIURL() + "/api/v1/backups")
		if code != http.StatusOK {
			return fmt.Errorf("GET /api/v1/backups: %d %s", code, body)
		}
		return nil
	})

	start := time.Now()
	full := waitJob(t, p, startBackup(t, p, "full"), 3*time.Minute)
	t.Logf("full backup job took %s", time.Since(start).Round(time.Millisecond))
	if full.State != client.JobSucceeded || full.Backup == nil || full.Backup.Label == "" || full.Backup.StartLSN == "" || full.Node != p.Name {
		t.Fatalf("full backup job: %+v backup %+v", full, full.Backup)
	}
	// Two requests at once: the second waits in the queue instead of failing on the lock.
	var wg sync.WaitGroup
	ids := make([]string, 2)
	for i, typ := range []string{"diff", "incr"} {
		wg.Add(1)
		go func() { defer wg.Done(); ids[i] = startBackup(t, c.Nodes[i], typ) }()
	}
	wg.Wait()
	for i, id := range ids {
		j := waitJob(t, p, id, 3*time.Minute)
		if j.State != client.JobSucceeded || j.Backup == nil || j.Backup.Label == "" {
			t.Errorf("concurrent backup %d: %s %s %+v", i, j.State, j.Error, j.Backup)
		}
	}
	var list client.BackupList
	code, body := getURL(c.Nodes[1].APIURL() + "/api/v1/backup/list")
	if code != http.StatusOK || json.Unmarshal([]byte(body), &list) != nil {
		t.Fatalf("GET /api/v1/backup/list: %d %s", code, body)
	}
	types := map[string]int{}
	for _, b := range list.Backups {
		types[b.Type]++
	}
	if types["full"] != 1 || types["diff"] != 1 || types["incr"] != 1 || list.FirstRecoverability.IsZero() {
		t.Errorf("backup list %+v: want one full, one diff, one incr and a first recoverability point", list)
	}

	// Failover: archiving broken on the primary, its node lost.
	g := openGap(t, c, p, repo)
	p.Kill()
	g.restore()
	next := c.WaitPrimary(60 * time.Second)
	if next == p {
		t.Fatal("the killed node is still primary")
	}
	g.waitArchived(t, repo, timeline(t, next))
	t.Logf("failover: %d segments of the old timeline (%s..%s, %d archive failures on the old primary) and the history file archived from the new primary %s",
		len(g.segments()), g.first, g.last, g.failed, next.Name)
	// The old primary rejoins: it archives what it still had waiting before pg_rewind.
	p.Start()
	testenv.Eventually(t, 120*time.Second, 500*time.Millisecond, func() error {
		if code := p.Health("/replica"); code != http.StatusOK {
			return fmt.Errorf("old primary /replica = %d", code)
		}
		return nil
	})
	if ev := c.LogEvents("archived the former primary's waiting WAL before pg_rewind"); len(ev) == 0 {
		t.Error("the old primary did not archive its waiting WAL before pg_rewind")
	}

	// Switchover with archiving working: the new primary pushes again what it streamed past
	// the old primary's last archived segment; identical copies are accepted, nothing fails.
	c.WaitReplicas(60 * time.Second)
	g = &gap{}
	for i := range 3 {
		if err := next.Exec(ctx, "INSERT INTO gap SELECT generate_series(1, 1000)"); err != nil {
			t.Fatal(err)
		}
		seg, err := next.QueryString(ctx, "SELECT pg_walfile_name(pg_switch_wal())")
		if err != nil {
			t.Fatal(err)
		}
		if i == 0 {
			g.first = seg
		}
		g.last = seg
	}
	target := p
	code, body = post(t, next.APIURL()+"/switchover", fmt.Sprintf(`{"leader":%q,"candidate":%q}`, next.Name, target.Name))
	if code != http.StatusOK {
		t.Fatalf("switchover: %d %s", code, body)
	}
	if now := c.WaitPrimary(60 * time.Second); now != target {
		t.Fatalf("switchover went to %s, not %s", now.Name, target.Name)
	}
	g.waitArchived(t, repo, timeline(t, target))
	testenv.Eventually(t, 30*time.Second, 500*time.Millisecond, func() error {
		if r, _ := target.QueryInt(ctx, "SELECT count(*) FROM pg_ls_archive_statusdir() WHERE name LIKE '%.ready'"); r != 0 {
			return fmt.Errorf("%d files still waiting for the archiver on %s", r, target.Name)
		}
		return nil
	})
	if f, err := target.QueryInt(ctx, "SELECT failed_count FROM pg_stat_archiver"); err != nil || f != 0 {
		t.Errorf("archive failures on the new primary after the switchover: %d (%v)", f, err)
	}
	t.Logf("switchover: %d segments (%s..%s) and the history file archived, no archive failure on %s", len(g.segments()), g.first, g.last, target.Name)
	next = target
	check := waitJob(t, next, mustAccepted(t, next, "/api/v1/backups/check"), 3*time.Minute)
	if check.State != client.JobSucceeded {
		t.Errorf("pgbackrest check on the new primary: %s %s %+v", check.State, check.Error, check.Backup)
	}

	// A replica created from the latest backup plus the archive, then streaming.
	if code, body := patch(t, next.APIURL()+"/config", `{"backup":{"replica_methods":["backup","basebackup"]}}`, ""); code != http.StatusOK {
		t.Fatalf("PATCH replica_methods: %d %s", code, body)
	}
	var clone *harness.Node
	for _, n := range c.Nodes {
		if n != next && n.Running() {
			clone = n
		}
	}
	testenv.Eventually(t, 30*time.Second, 500*time.Millisecond, func() error {
		code, body := post(t, clone.APIURL()+"/reinitialize", `{"force":true}`)
		if code != http.StatusOK {
			return fmt.Errorf("reinitialize %s: %d %s", clone.Name, code, body)
		}
		return nil
	})
	testenv.Eventually(t, 3*time.Minute, 500*time.Millisecond, func() error {
		if ev := c.LogEvents(`msg="replica created from backup" node=` + clone.Name); len(ev) == 0 {
			return fmt.Errorf("%s not created from a backup yet", clone.Name)
		}
		state, err := next.QueryString(ctx, "SELECT state FROM pg_stat_replication WHERE application_name = $1", clone.Name)
		if err != nil || state != "streaming" {
			return fmt.Errorf("%s not streaming from %s: %q (%w)", clone.Name, next.Name, state, err)
		}
		return nil
	})
	sysID := func(n *harness.Node) string {
		v, err := n.QueryString(ctx, "SELECT system_identifier::text FROM pg_control_system()")
		if err != nil {
			t.Fatal(err)
		}
		return v
	}
	if a, b := sysID(clone), sysID(next); a != b {
		t.Errorf("clone system identifier %s, primary %s", a, b)
	}
	ac, _ := showOn(t, clone, "archive_command")
	if !strings.Contains(ac, "/"+clone.Name+".backup/") {
		t.Errorf("the clone's archive_command does not use its own configuration: %s", ac)
	}
	if rc, _ := showOn(t, clone, "restore_command"); !strings.Contains(rc, "/"+clone.Name+".backup/") {
		t.Errorf("the clone's restore_command is not its own: %s", rc)
	}
	t.Logf("replica %s created from the latest backup and streaming from %s", clone.Name, next.Name)
}

// gap is WAL a primary could not archive: segments first..last, streamed to every replica.
type gap struct {
	first, last string
	failed      int64
	restore     func()
}

// openGap breaks archiving on primary p (every directory of the archive read-only), switches
// WAL three times under writes, waits until archiving failed and every replica received it.
// restore makes the archive writable again (also at the end of the test).
func openGap(t *testing.T, c *harness.Cluster, p *harness.Node, repo string) *gap {
	t.Helper()
	ctx := context.Background()
	archiveDir := filepath.Join(repo, "archive")
	chmodDirs := func(mode fs.FileMode) {
		_ = filepath.WalkDir(archiveDir, func(path string, d fs.DirEntry, err error) error {
			if err == nil && d.IsDir() {
				err = os.Chmod(path, mode)
			}
			return err
		})
	}
	g := &gap{}
	var once sync.Once
	g.restore = func() { once.Do(func() { chmodDirs(0o750) }) }
	t.Cleanup(g.restore)
	before, _ := p.QueryInt(ctx, "SELECT failed_count FROM pg_stat_archiver")
	chmodDirs(0o500)
	for i := range 3 {
		if err := p.Exec(ctx, "CREATE TABLE IF NOT EXISTS gap (v int); INSERT INTO gap SELECT generate_series(1, 1000)"); err != nil {
			t.Fatal(err)
		}
		conn, err := p.Conn(ctx)
		if err != nil {
			t.Fatal(err)
		}
		var seg string
		err = conn.QueryRow(ctx, "SELECT pg_walfile_name(pg_switch_wal())").Scan(&seg)
		_ = conn.Close(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if i == 0 {
			g.first = seg
		}
		g.last = seg
	}
	testenv.Eventually(t, 30*time.Second, 200*time.Millisecond, func() error {
		f, err := p.QueryInt(ctx, "SELECT failed_count FROM pg_stat_archiver")
		g.failed = f - before
		if err != nil || g.failed == 0 {
			return fmt.Errorf("archiving not failing yet (%d, %w)", g.failed, err)
		}
		return nil
	})
	want, _ := p.QueryInt(ctx, "SELECT (pg_current_wal_lsn() - '0/0')::bigint")
	for _, n := range c.Nodes {
		if n == p || !n.Running() {
			continue
		}
		testenv.Eventually(t, 30*time.Second, 100*time.Millisecond, func() error {
			got, err := n.QueryInt(ctx, "SELECT (pg_last_wal_receive_lsn() - '0/0')::bigint")
			if err != nil || got < want {
				return fmt.Errorf("%s received %d of %d (%w)", n.Name, got, want, err)
			}
			return nil
		})
	}
	if archived(t, repo)[g.first] {
		t.Fatalf("segment %s archived although archiving was broken", g.first)
	}
	return g
}

// segments are the segments of the gap, in order.
func (g *gap) segments() []string {
	var segs []string
	for s := g.first; ; s = nextSegment(s) {
		segs = append(segs, s)
		if s == g.last || len(segs) > 64 {
			return segs
		}
	}
}

// waitArchived waits until every segment of the gap and the history file of timeline tl are
// in the archive.
func (g *gap) waitArchived(t *testing.T, repo string, tl int) {
	t.Helper()
	want := append(g.segments(), fmt.Sprintf("%08X.history", tl))
	testenv.Eventually(t, 90*time.Second, 500*time.Millisecond, func() error {
		have := archived(t, repo)
		var missing []string
		for _, s := range want {
			if !have[s] {
				missing = append(missing, s)
			}
		}
		if len(missing) > 0 {
			return fmt.Errorf("missing from the archive: %v", missing)
		}
		return nil
	})
}

// mustAccepted posts to path and returns the job id of its 202 answer.
func mustAccepted(t *testing.T, n *harness.Node, path string) string {
	t.Helper()
	code, body := post(t, n.APIURL()+path, "")
	var a client.JobAccepted
	if code != http.StatusAccepted || json.Unmarshal([]byte(body), &a) != nil {
		t.Fatalf("POST %s: %d %s", path, code, body)
	}
	return a.JobID
}

// TestBackupPointInTimeRestore: a new cluster bootstrapped from another cluster's pgBackRest
// backup to a time target holds exactly the rows committed before it, and archives into a
// stanza of its own, never its source's.
func TestBackupPointInTimeRestore(t *testing.T) {
	t.Parallel()
	addr := needReal(t)
	needTool(t, "pgbackrest")
	repo := ownedDir(t, "repo")
	src := harness.New(t, ramdBin, addr, 1, harness.Options{})
	src.StartAll()
	p := src.WaitPrimary(120 * time.Second)
	ctx := context.Background()
	cfg := fmt.Sprintf(`{"backup":{"tool":"pgbackrest","archive_timeout":"5s","pgbackrest":{"repo_path":%q}}}`, repo)
	if code, body := patch(t, p.APIURL()+"/config", cfg, ""); code != http.StatusOK {
		t.Fatalf("PATCH backup: %d %s", code, body)
	}
	testenv.Eventually(t, 90*time.Second, 500*time.Millisecond, func() error {
		if code, body := getURL(p.APIURL() + "/api/v1/backups"); code != http.StatusOK {
			return fmt.Errorf("GET /api/v1/backups: %d %s", code, body)
		}
		return nil
	})
	if j := waitJob(t, p, startBackup(t, p, "full"), 3*time.Minute); j.State != client.JobSucceeded {
		t.Fatalf("full backup: %s %s", j.State, j.Error)
	}
	pitrTable(t, p)
	target := pitrTarget(t, p, archiverPast(t, p))

	boot := filepath.Join(ownedDir(t, "boot"), "bootstrap.json")
	doc := fmt.Sprintf(`{"bootstrap":{"method":"backup","from":{"tool":"pgbackrest","pgbackrest":{"repo_path":%q,"stanza":%q}},
		"target":{"type":"time","value":%q}},"backup":{"tool":"pgbackrest","archive_timeout":"5s","pgbackrest":{"repo_path":%q}}}`, repo, src.Scope, target, repo)
	if err := os.WriteFile(boot, []byte(doc), 0o644); err != nil {
		t.Fatal(err)
	}
	dst := harness.New(t, ramdBin, addr, 1, harness.Options{Env: map[string]string{"RAMD_BOOTSTRAP_CONFIG": boot}})
	start := time.Now()
	dst.StartAll()
	q := dst.WaitPrimary(4 * time.Minute)
	t.Logf("restored to %s into a new cluster in %s", target, time.Since(start).Round(time.Millisecond))
	if n, err := q.QueryInt(ctx, "SELECT count(*) FROM pitr"); err != nil || n != 1000 {
		t.Fatalf("restored rows: %d (%v), want the 1000 committed before the target", n, err)
	}
	var js []client.Job
	code, body := getURL(q.APIURL() + "/api/v1/backup/jobs")
	if code != http.StatusOK || json.Unmarshal([]byte(body), &js) != nil || len(js) != 1 || js[0].Kind != "restore" || js[0].State != client.JobSucceeded {
		t.Errorf("the restore as a job of the new cluster: %d %s", code, body)
	}
	if v, _ := showOn(t, q, "restore_command"); strings.Contains(v, src.Scope) {
		t.Errorf("the restored cluster still restores from its source's stanza: %s", v)
	}
	// The restored cluster archives into its own stanza; the source's gets nothing of it.
	testenv.Eventually(t, 90*time.Second, 500*time.Millisecond, func() error {
		if err := q.Exec(ctx, "SELECT pg_switch_wal()"); err != nil {
			return err
		}
		own := 0
		_ = filepath.WalkDir(filepath.Join(repo, "archive", dst.Scope), func(_ string, d fs.DirEntry, err error) error {
			if err == nil && !d.IsDir() && strings.HasPrefix(d.Name(), "00000002") {
				own++
			}
			return nil
		})
		if own == 0 {
			return fmt.Errorf("no WAL of timeline 2 in the stanza %s yet", dst.Scope)
		}
		return nil
	})
	_ = filepath.WalkDir(filepath.Join(repo, "archive", src.Scope), func(path string, d fs.DirEntry, err error) error {
		if err == nil && !d.IsDir() && strings.HasPrefix(d.Name(), "00000002") {
			t.Errorf("the restored cluster archived into its source's stanza: %s", path)
		}
		return nil
	})
}

// TestBackupBarman: Barman without SSH through ramd: a backup job, then a failover after
// which the streaming archiver's slot exists on the new primary and Barman's check passes
// with no manual reset; then a point-in-time restore of the cluster into a new one.
func TestBackupBarman(t *testing.T) {
	t.Parallel()
	addr := needReal(t)
	needTool(t, "barman")
	home := ownedDir(t, "barman")
	c := harness.New(t, ramdBin, addr, 2, harness.Options{})
	c.StartAll()
	p := c.WaitPrimary(120 * time.Second)
	c.WaitReplicas(120 * time.Second)
	ctx := context.Background()
	cfg := fmt.Sprintf(`{"backup":{"tool":"barman","barman":{"home":%q}}}`, home)
	if code, body := patch(t, p.APIURL()+"/config", cfg, ""); code != http.StatusOK {
		t.Fatalf("PATCH backup: %d %s", code, body)
	}
	checkOK := func(n *harness.Node, within time.Duration) time.Duration {
		t.Helper()
		start := time.Now()
		testenv.Eventually(t, within, time.Second, func() error {
			code, body := post(t, n.APIURL()+"/api/v1/backups/check", "")
			var a client.JobAccepted
			if code != http.StatusAccepted || json.Unmarshal([]byte(body), &a) != nil {
				return fmt.Errorf("POST /api/v1/backups/check: %d %s", code, body)
			}
			j := waitJob(t, n, a.JobID, 2*time.Minute)
			if j.State != client.JobSucceeded {
				return fmt.Errorf("barman check: %s", j.Error)
			}
			return nil
		})
		return time.Since(start)
	}
	t.Logf("barman check OK %s after the configuration", checkOK(p, 2*time.Minute).Round(time.Millisecond))
	if err := p.Exec(ctx, "CREATE TABLE bar (v int); INSERT INTO bar SELECT generate_series(1, 1000)"); err != nil {
		t.Fatal(err)
	}
	j := waitJob(t, p, startBackup(t, p, "full"), 3*time.Minute)
	if j.State != client.JobSucceeded || j.Backup == nil || j.Backup.Label == "" || j.Backup.StopLSN == "" {
		t.Fatalf("barman backup job: %s %s %+v", j.State, j.Error, j.Backup)
	}
	if code, body := post(t, p.APIURL()+"/api/v1/backups", `{"type":"incr"}`); code != http.StatusBadRequest || !strings.Contains(body, `"field":"type"`) {
		t.Errorf("an incremental Barman backup: %d %s, want 400 naming type", code, body)
	}

	p.Kill()
	next := c.WaitPrimary(60 * time.Second)
	testenv.Eventually(t, 60*time.Second, 500*time.Millisecond, func() error {
		n, err := next.QueryInt(ctx, "SELECT count(*) FROM pg_replication_slots WHERE slot_name = 'barman'")
		if err != nil || n != 1 {
			return fmt.Errorf("no barman slot on the new primary %s (%d, %w)", next.Name, n, err)
		}
		return nil
	})
	took := checkOK(next, 3*time.Minute)
	t.Logf("after the failover to %s: the barman slot exists and barman check passed %s later, without receive-wal --reset", next.Name, took.Round(time.Millisecond))
	if ev := c.LogEvents("--reset"); len(ev) > 0 {
		t.Errorf("a receive-wal reset was used: %v", ev)
	}

	// Point in time into a new cluster: the rows committed before the target, no more.
	if err := next.Exec(ctx, "INSERT INTO bar SELECT generate_series(1001, 1200)"); err != nil {
		t.Fatal(err)
	}
	time.Sleep(1100 * time.Millisecond)
	target, err := next.QueryString(ctx, `SELECT to_char(now() AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"')`)
	if err != nil {
		t.Fatal(err)
	}
	time.Sleep(1100 * time.Millisecond)
	if err := next.Exec(ctx, "INSERT INTO bar SELECT generate_series(1201, 1500)"); err != nil {
		t.Fatal(err)
	}
	seg, err := next.QueryString(ctx, "SELECT pg_walfile_name(pg_switch_wal())")
	if err != nil {
		t.Fatal(err)
	}
	testenv.Eventually(t, 3*time.Minute, 2*time.Second, func() error {
		var l client.BackupList
		code, body := getURL(next.APIURL() + "/api/v1/backups")
		if code != http.StatusOK || json.Unmarshal([]byte(body), &l) != nil || l.WALMax < seg {
			return fmt.Errorf("Barman's archive ends at %q, waiting for %s (%d)", l.WALMax, seg, code)
		}
		return nil
	})
	boot := filepath.Join(ownedDir(t, "boot"), "bootstrap.json")
	doc := fmt.Sprintf(`{"bootstrap":{"method":"backup","from":{"tool":"barman","barman":{"home":%q,"server":%q}},
		"target":{"type":"time","value":%q}},"backup":{"tool":"barman","barman":{"home":%q}}}`, home, c.Scope, target, home)
	if err := os.WriteFile(boot, []byte(doc), 0o644); err != nil {
		t.Fatal(err)
	}
	dst := harness.New(t, ramdBin, addr, 1, harness.Options{Env: map[string]string{"RAMD_BOOTSTRAP_CONFIG": boot}})
	start := time.Now()
	dst.StartAll()
	q := dst.WaitPrimary(4 * time.Minute)
	t.Logf("restored with Barman to %s into a new cluster in %s", target, time.Since(start).Round(time.Millisecond))
	if n, err := q.QueryInt(ctx, "SELECT count(*) FROM bar"); err != nil || n != 1200 {
		t.Fatalf("restored rows: %d (%v), want the 1200 committed before the target", n, err)
	}
	if v, _ := showOn(t, q, "archive_command"); v == "false" {
		t.Errorf("the restored cluster kept Barman's archive_command = false")
	}
}

// TestBackupCustomSchedules: the shipped example script as a custom tool, driven by a
// schedule every 10 seconds: each tick runs exactly one backup across a leader change (the
// leader killed) and a ramd restart; a suspended schedule fires no more; "run now" runs at
// once; the backups are listed through the API.
func TestBackupCustomSchedules(t *testing.T) {
	t.Parallel()
	addr := needReal(t)
	dir := ownedDir(t, "custom")
	script := filepath.Join(dir, "ramd-backup-example.sh")
	src, err := os.ReadFile(filepath.Join("..", "..", "deploy", "backup", "ramd-backup-example.sh"))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(script, src, 0o755); err != nil {
		t.Fatal(err)
	}
	repo := filepath.Join(dir, "repo")
	c := harness.New(t, ramdBin, addr, 2, harness.Options{})
	c.StartAll()
	p := c.WaitPrimary(120 * time.Second)
	c.WaitReplicas(120 * time.Second)
	cmd := script + " " + repo
	cfg := map[string]any{"backup": map[string]any{"tool": "custom", "schedules": map[string]any{"full": "*/10 * * * * *"},
		"custom": map[string]any{"backup": cmd, "list": cmd, "restore": cmd, "expire": cmd, "timeout": "2m",
			"archive_command": cmd + ` archive "%p" "%f"`, "restore_command": cmd + ` restore-wal "%f" "%p"`}}}
	body, _ := json.Marshal(cfg)
	if code, out := patch(t, p.APIURL()+"/config", string(body), ""); code != http.StatusOK {
		t.Fatalf("PATCH backup: %d %s", code, out)
	}
	// ticks returns the scheduled jobs per tick and how many there are.
	ticks := func(n *harness.Node) (map[string][]client.Job, int) {
		code, body := getURL(n.APIURL() + "/api/v1/backup/jobs")
		var js []client.Job
		if code != http.StatusOK || json.Unmarshal([]byte(body), &js) != nil {
			return nil, 0
		}
		out := map[string][]client.Job{}
		for _, j := range js {
			if j.Backup != nil && strings.HasPrefix(j.Backup.Schedule, "full @ ") {
				out[j.Backup.Schedule] = append(out[j.Backup.Schedule], j)
			}
		}
		return out, len(out)
	}
	waitTicks := func(n *harness.Node, atLeast int) {
		t.Helper()
		testenv.Eventually(t, 2*time.Minute, time.Second, func() error {
			if _, k := ticks(n); k < atLeast {
				return fmt.Errorf("%d scheduled ticks, waiting for %d", k, atLeast)
			}
			return nil
		})
	}
	waitTicks(p, 2)
	// A leader change: the leader dies, the other member fires the next ticks.
	p.Kill()
	next := c.WaitPrimary(60 * time.Second)
	_, before := ticks(next)
	waitTicks(next, before+2)
	// A restart of ramd on the leader (it hands over and comes back).
	if err := next.Stop(); err != nil {
		t.Fatal(err)
	}
	p.Start()
	next.Start()
	now := c.WaitPrimary(90 * time.Second)
	_, before = ticks(now)
	waitTicks(now, before+2)
	all, k := ticks(now)
	for tick, js := range all {
		if len(js) != 1 {
			t.Errorf("tick %s ran %d backups", tick, len(js))
		}
	}
	done := 0
	for tick, js := range all {
		switch js[0].State {
		case client.JobSucceeded:
			done++
		case client.JobFailed:
			t.Logf("tick %s: %s", tick, js[0].Error) // its node died or handed over mid-way
		}
	}
	t.Logf("%d ticks, one backup each, across a leader change and a ramd restart; %d succeeded", k, done)
	if done == 0 {
		t.Error("no scheduled backup succeeded")
	}

	// Suspend: no tick fires any more; run now still runs one.
	code, out := post(t, now.APIURL()+"/api/v1/backup/schedule", `{"type":"full","suspend":true}`)
	if code != http.StatusOK || !strings.Contains(out, `"suspended":true`) {
		t.Fatalf("suspend: %d %s", code, out)
	}
	time.Sleep(3 * time.Second) // every member takes the change at its next cycle
	_, suspendedAt := ticks(now)
	time.Sleep(21 * time.Second) // two ticks
	if _, k := ticks(now); k != suspendedAt {
		t.Errorf("a suspended schedule fired: %d ticks, %d when suspended", k, suspendedAt)
	}
	j := waitJob(t, now, mustAccepted(t, now, "/api/v1/backup-schedules/full/run"), 2*time.Minute)
	if j.State != client.JobSucceeded || j.Backup == nil || j.Backup.Label == "" {
		t.Errorf("run now: %s %s %+v", j.State, j.Error, j.Backup)
	}
	var l client.BackupList
	code, out = getURL(now.APIURL() + "/api/v1/backups")
	if code != http.StatusOK || json.Unmarshal([]byte(out), &l) != nil || len(l.Backups) == 0 || l.LastSuccess.IsZero() {
		t.Fatalf("GET /api/v1/backups: %d %s", code, out)
	}
	t.Logf("the custom tool lists %d backups (retention keeps the newest), last good one %s ago", len(l.Backups), time.Duration(l.AgeSeconds*float64(time.Second)).Round(time.Second))
}
