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
	var j client.Job
	testenv.Eventually(t, timeout, 500*time.Millisecond, func() error {
		code, body := getURL(n.APIURL() + "/api/v1/jobs/" + id)
		if code != http.StatusOK && code != http.StatusAccepted {
			return fmt.Errorf("job %s: %d %s", id, code, body)
		}
		if err := json.Unmarshal([]byte(body), &j); err != nil {
			return err
		}
		if !j.Ended() {
			return fmt.Errorf("job %s still %s (%v)", id, j.State, j.Phases)
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
				return fmt.Errorf("%s: archive_command %q (%v)", n.Name, v, err)
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

	// Break archiving on the primary: the repository's archive is not writable.
	archiveDir := filepath.Join(repo, "archive")
	chmodDirs := func(mode fs.FileMode) {
		_ = filepath.WalkDir(archiveDir, func(p string, d fs.DirEntry, err error) error {
			if err == nil && d.IsDir() {
				err = os.Chmod(p, mode)
			}
			return err
		})
	}
	chmodDirs(0o500)
	restored := false
	restore := func() {
		if !restored {
			restored = true
			chmodDirs(0o750)
		}
	}
	defer restore()
	var first, last string
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
			first = seg
		}
		last = seg
	}
	var failed int64
	testenv.Eventually(t, 30*time.Second, 200*time.Millisecond, func() error {
		var err error
		failed, err = p.QueryInt(ctx, "SELECT failed_count FROM pg_stat_archiver")
		if err != nil || failed == 0 {
			return fmt.Errorf("archiving not failing yet (%d, %v)", failed, err)
		}
		return nil
	})
	// Every replica has the switched segments before the primary dies.
	want, _ := p.QueryInt(ctx, "SELECT (pg_current_wal_lsn() - '0/0')::bigint")
	c.WaitReplicas(60 * time.Second)
	for _, n := range c.Nodes {
		if n == p {
			continue
		}
		testenv.Eventually(t, 30*time.Second, 100*time.Millisecond, func() error {
			got, err := n.QueryInt(ctx, "SELECT (pg_last_wal_receive_lsn() - '0/0')::bigint")
			if err != nil || got < want {
				return fmt.Errorf("%s received %d of %d (%v)", n.Name, got, want, err)
			}
			return nil
		})
	}
	have := archived(t, repo)
	if have[first] {
		t.Fatalf("segment %s archived although archiving was broken", first)
	}
	p.Kill()
	restore()
	next := c.WaitPrimary(60 * time.Second)
	if next == p {
		t.Fatal("the killed node is still primary")
	}
	var segs []string
	for s := first; ; s = nextSegment(s) {
		segs = append(segs, s)
		if s == last || len(segs) > 64 {
			break
		}
	}
	history := fmt.Sprintf("%08X.history", timeline(t, next))
	testenv.Eventually(t, 90*time.Second, 500*time.Millisecond, func() error {
		have := archived(t, repo)
		var missing []string
		for _, s := range append(segs, history) {
			if !have[s] {
				missing = append(missing, s)
			}
		}
		if len(missing) > 0 {
			return fmt.Errorf("missing from the archive: %v", missing)
		}
		return nil
	})
	t.Logf("archive continuity: %d segments of the old timeline (%s..%s, %d archive failures on the old primary) and %s archived after the failover to %s",
		len(segs), first, last, failed, history, next.Name)
	check := waitJob(t, next, mustAccepted(t, next, "/api/v1/backups/check"), 3*time.Minute)
	if check.State != client.JobSucceeded {
		t.Errorf("pgbackrest check on the new primary: %s %s %+v", check.State, check.Error, check.Backup)
	}
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
