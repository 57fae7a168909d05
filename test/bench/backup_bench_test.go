package bench

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"io/fs"
	"net/http"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/ramd-project/ramd/api/client"
	"github.com/ramd-project/ramd/test/harness"
	"github.com/ramd-project/ramd/test/testenv"
)

// archiveRounds is how many failovers BenchmarkArchiveFailover causes (at least 10).
var archiveRounds = max(envInt("RAMD_BENCH_ARCHIVE_ROUNDS", 10), 10)

// postgresCred is the PostgreSQL OS user's uid and gid (the tools run as it).
func postgresCred(b *testing.B) (int, int) {
	b.Helper()
	u, err := user.Lookup("postgres")
	if err != nil {
		testenv.Missing(b, "the postgres OS user: %v", err)
	}
	uid, _ := strconv.Atoi(u.Uid)
	gid, _ := strconv.Atoi(u.Gid)
	return uid, gid
}

// pgbackrestCluster starts n members with a pgBackRest repository, archive_timeout 2s, and
// waits until the leader prepared the stanza.
func pgbackrestCluster(b *testing.B, n int) (*harness.Cluster, string) {
	b.Helper()
	if _, err := exec.LookPath("pgbackrest"); err != nil {
		testenv.Missing(b, "pgbackrest is not installed (make deps installs it)")
	}
	c := testenv.SharedConsul(b, shared)
	testenv.PGBinDir(b)
	repo := testenv.DataDir(b, "repo")
	uid, gid := postgresCred(b)
	if err := os.Mkdir(repo, 0o750); err != nil {
		b.Fatal(err)
	}
	if err := os.Chown(repo, uid, gid); err != nil {
		b.Fatal(err)
	}
	cl := harness.New(b, ramdBin, c.HTTPAddr, n, harness.Options{})
	cl.StartAll()
	p := cl.WaitPrimary(120 * time.Second)
	if n > 1 {
		cl.WaitReplicas(120 * time.Second)
	}
	cfg := fmt.Sprintf(`{"backup":{"tool":"pgbackrest","archive_timeout":"2s","pgbackrest":{"repo_path":%q}}}`, repo)
	if code, body := httpDo(b, http.MethodPatch, p.APIURL()+"/config", cfg); code != http.StatusOK {
		b.Fatalf("PATCH backup: %d %s", code, body)
	}
	testenv.Eventually(b, 2*time.Minute, 500*time.Millisecond, func() error {
		if code, body := httpDo(b, http.MethodGet, p.APIURL()+"/api/v1/backups", ""); code != http.StatusOK {
			return fmt.Errorf("GET /api/v1/backups: %d %s", code, body)
		}
		return nil
	})
	return cl, repo
}

func httpDo(b *testing.B, method, url, body string) (int, string) {
	b.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, method, url, strings.NewReader(body))
	if err != nil {
		b.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, err.Error()
	}
	defer resp.Body.Close()
	out, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(out)
}

// archiveFiles lists the WAL segments (by timeline) and history files in a pgBackRest archive.
func archiveFiles(repo string) (map[string][]string, map[string]bool) {
	segs := map[string][]string{}
	hist := map[string]bool{}
	_ = filepath.WalkDir(filepath.Join(repo, "archive"), func(_ string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return nil
		}
		name := d.Name()
		switch {
		case len(name) > 24 && name[24] == '-':
			segs[name[:8]] = append(segs[name[:8]], name[:24])
		case strings.HasSuffix(name, ".history"):
			hist[strings.TrimSuffix(name, ".history")] = true
		}
		return nil
	})
	for tl := range segs {
		sort.Strings(segs[tl])
	}
	return segs, hist
}

// segNo is a segment's position (16 MiB segments) within its timeline.
func segNo(seg string) uint64 {
	log, _ := strconv.ParseUint(seg[8:16], 16, 32)
	num, _ := strconv.ParseUint(seg[16:24], 16, 32)
	return log*0x100 + num
}

// missingSegments counts the segments absent from the archive on every timeline that ended
// in a switch: from the timeline's first archived segment up to the one before the segment
// that holds the switch point (that one is archived as .partial, or continues on the next
// timeline).
func missingSegments(repo string, switches map[string]uint64) (int, []string) {
	segs, _ := archiveFiles(repo)
	missing := 0
	var names []string
	for tl, sw := range switches {
		have := map[uint64]bool{}
		first := uint64(1 << 62)
		for _, s := range segs[tl] {
			have[segNo(s)] = true
			first = min(first, segNo(s))
		}
		for n := first; n < sw; n++ {
			if !have[n] {
				missing++
				names = append(names, fmt.Sprintf("%s:%X", tl, n))
			}
		}
	}
	return missing, names
}

// BenchmarkArchiveFailover causes failovers (SIGKILL of the primary's node) under writes
// with archiving on and reports the WAL segments missing from the archive afterwards (target
// 0) and, per failover, the time from the new primary answering /primary to its history file
// and to its first WAL segment in the archive.
func BenchmarkArchiveFailover(b *testing.B) {
	for range b.N {
		cl, repo := pgbackrestCluster(b, 3)
		w := cl.StartWriter(b)
		w.WaitAcked(b, 10, 30*time.Second)
		var history, firstSeg samples
		switches := map[string]uint64{}
		ctx := context.Background()
		for r := range archiveRounds {
			p := cl.WaitPrimary(60 * time.Second)
			cl.WaitReplicas(120 * time.Second)
			p.Kill()
			var q *harness.Node
			testenv.Eventually(b, 60*time.Second, 20*time.Millisecond, func() error {
				n, err := cl.Primary()
				if err != nil || n == p {
					return fmt.Errorf("no new primary yet (%w)", err)
				}
				q = n
				return nil
			})
			promoted := time.Now()
			tl, err := q.QueryString(ctx, "SELECT substr(pg_walfile_name(pg_current_wal_lsn()), 1, 8)")
			if err != nil {
				b.Fatal(err)
			}
			var histAt, segAt time.Time
			testenv.Eventually(b, 2*time.Minute, 20*time.Millisecond, func() error {
				segs, hist := archiveFiles(repo)
				if histAt.IsZero() && hist[tl] {
					histAt = time.Now()
				}
				if segAt.IsZero() && len(segs[tl]) > 0 {
					segAt = time.Now()
				}
				if histAt.IsZero() || segAt.IsZero() {
					return fmt.Errorf("round %d: timeline %s not archived yet (history %v, segment %v)", r, tl, !histAt.IsZero(), !segAt.IsZero())
				}
				return nil
			})
			history.add(histAt.Sub(promoted))
			firstSeg.add(segAt.Sub(promoted))
			// The switch point of the old timeline, from the new timeline's history file.
			hist, err := q.QueryString(ctx, fmt.Sprintf("SELECT pg_walfile_name(lsn) FROM (SELECT '%s'::pg_lsn AS lsn) x",
				switchLSN(b, repo, tl)))
			if err == nil {
				switches[hist[:8]] = segNo(hist)
			}
			p.Start()
		}
		cl.WaitReplicas(120 * time.Second)
		w.Stop()
		time.Sleep(5 * time.Second) // archive_timeout and the archiver's retries
		missing, names := missingSegments(repo, switches)
		history.report(b, "history_archived_after_promotion")
		firstSeg.report(b, "first_segment_archived_after_promotion")
		b.ReportMetric(float64(missing), "segments_missing")
		b.ReportMetric(float64(len(switches)), "timelines_checked")
		b.Logf("%d failovers under writes: %d segments missing from the archive on %d ended timelines %v; longest write gap %s",
			archiveRounds, missing, len(switches), names, w.LongestGap().Round(time.Millisecond))
	}
}

// switchLSN reads the switch point of the timeline before tl from tl's history file.
func switchLSN(b *testing.B, repo, tl string) string {
	b.Helper()
	var found string
	_ = filepath.WalkDir(filepath.Join(repo, "archive"), func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() || d.Name() != tl+".history" {
			return nil
		}
		raw, rerr := os.ReadFile(path)
		if rerr != nil {
			return nil
		}
		lines := strings.Split(strings.TrimSpace(string(raw)), "\n")
		if f := strings.Fields(lines[len(lines)-1]); len(f) >= 2 {
			found = f[1]
		}
		return nil
	})
	if found == "" {
		b.Fatalf("no switch point in %s.history", tl)
	}
	return found
}

// BenchmarkBackupJobOverhead compares a full pgBackRest backup taken as a ramd job (request,
// queue, run, record) with the same backup run by hand with the same configuration file.
func BenchmarkBackupJobOverhead(b *testing.B) {
	for range b.N {
		cl, _ := pgbackrestCluster(b, 1)
		p := cl.Nodes[0]
		ctx := context.Background()
		if err := p.Exec(ctx, "CREATE TABLE bulk (id int, v text)"); err != nil {
			b.Fatal(err)
		}
		for i := range 10 { // about 35 MB, in steps that each finish well within a query's bound
			if err := p.Exec(ctx, fmt.Sprintf("INSERT INTO bulk SELECT g, md5(g::text) FROM generate_series(%d, %d) g", i*50000+1, (i+1)*50000)); err != nil {
				b.Fatal(err)
			}
		}
		conf := filepath.Join(filepath.Dir(p.DataDir), filepath.Base(p.DataDir)+".backup", "pgbackrest", "pgbackrest.conf")
		uid, gid := postgresCred(b)
		var job, byHand samples
		for range 3 {
			start := time.Now()
			code, body := httpDo(b, http.MethodPost, p.APIURL()+"/api/v1/backups", `{"type":"full"}`)
			var a client.JobAccepted
			if code != http.StatusAccepted || json.Unmarshal([]byte(body), &a) != nil {
				b.Fatalf("POST /api/v1/backups: %d %s", code, body)
			}
			testenv.Eventually(b, 5*time.Minute, 50*time.Millisecond, func() error {
				code, body := httpDo(b, http.MethodGet, p.APIURL()+"/api/v1/jobs/"+a.JobID, "")
				var j client.Job
				if code != http.StatusOK || json.Unmarshal([]byte(body), &j) != nil {
					return fmt.Errorf("job: %d", code)
				}
				if j.State == client.JobFailed {
					b.Fatalf("backup job failed: %s", j.Error)
				}
				if j.State != client.JobSucceeded {
					return fmt.Errorf("job %s", j.State)
				}
				return nil
			})
			job.add(time.Since(start))

			cctx, cancel := context.WithTimeout(ctx, 5*time.Minute)
			cmd := exec.CommandContext(cctx, "pgbackrest", "--config="+conf, "--stanza="+cl.Scope, "--start-fast", "--type=full", "backup")
			cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid)}}
			cmd.Dir = "/"
			var out bytes.Buffer
			cmd.Stdout, cmd.Stderr = &out, &out
			start = time.Now()
			err := cmd.Run()
			byHand.add(time.Since(start))
			cancel()
			if err != nil {
				b.Fatalf("pgbackrest by hand: %v\n%s", err, out.String())
			}
		}
		job.report(b, "backup_job")
		byHand.report(b, "backup_by_hand")
		sort.Slice(job.d, func(i, j int) bool { return job.d[i] < job.d[j] })
		sort.Slice(byHand.d, func(i, j int) bool { return byHand.d[i] < byHand.d[j] })
		b.ReportMetric((job.d[1] - byHand.d[1]).Seconds(), "job_overhead_median_s")
	}
}
