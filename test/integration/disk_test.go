package integration

import (
	"context"
	"errors"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ramd-project/ramd/test/harness"
	"github.com/ramd-project/ramd/test/testenv"
)

// TestWALDiskFull fills the filesystem of the synchronous primary's data directory, so that
// its next WAL segment cannot be created (PostgreSQL PANICs and its crash recovery cannot
// complete either), under a writer. The cluster must take writes again within bounds, lose
// no acknowledged write (synchronous mode), never have two writable nodes, and be whole
// again once the space is freed.
func TestWALDiskFull(t *testing.T) {
	t.Parallel()
	addr := needReal(t)
	c := harness.New(t, ramdBin, addr, 3, harness.Options{})
	for _, n := range c.Nodes {
		testenv.SmallFS(t, filepath.Dir(n.DataDir), 256<<20)
	}
	t.Cleanup(func() { // PostgreSQL's logs live on the small filesystems, gone after the test
		if t.Failed() {
			for _, n := range c.Nodes {
				b, _ := os.ReadFile(n.DataDir + ".log")
				lines := strings.Split(strings.TrimSpace(string(b)), "\n")
				t.Logf("---- %s PostgreSQL log (tail) ----\n%s", n.Name, strings.Join(lines[max(0, len(lines)-25):], "\n"))
			}
		}
	})
	c.StartAll()
	c.WaitPrimary(120 * time.Second)
	c.WaitReplicas(120 * time.Second)
	p, _ := c.Primary()
	if p == nil {
		t.Fatal("no primary")
	}
	code, body := put(t, c.Other(p).APIURL()+"/api/v1/sync-standbys", `{"synchronous_mode": "on", "synchronous_node_count": 1}`)
	if code != http.StatusOK {
		t.Fatalf("PUT /api/v1/sync-standbys: %d %s", code, body)
	}
	p = waitSync(t, c, addr, 1, "FIRST 1")
	w := c.StartWriter(t)
	w.WaitAcked(t, 50, 60*time.Second)

	ctx := context.Background()
	filler := testenv.Fill(t, filepath.Dir(p.DataDir), 4<<20)
	fullAt := time.Now()
	// Each switch needs a new 16 MiB segment; the writer makes every switch count. Bounded:
	// the first failed statement ends it.
	var failed error
	for i := 0; i < 30 && failed == nil; i++ {
		sctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		failed = p.Exec(sctx, "SELECT pg_switch_wal()")
		cancel()
		time.Sleep(200 * time.Millisecond)
	}
	if failed == nil {
		t.Fatalf("%s's PostgreSQL still takes WAL on a full filesystem", p.Name)
	}
	t.Logf("%s: filesystem full at %s, first failure: %v", p.Name, fullAt.Format("15:04:05.000"), failed)

	// Writes resume: on a new primary, or on the old one if its PostgreSQL came back.
	var resumed harness.Ack
	testenv.Eventually(t, 120*time.Second, 100*time.Millisecond, func() error {
		a, ok := w.FirstAckAfter(fullAt.Add(time.Second), "")
		if !ok {
			return errors.New("no write acknowledged since the disk filled")
		}
		resumed = a
		return nil
	})
	last, _ := w.LastAckBefore(resumed.At)
	t.Logf("writes resumed on %s at +%s (last acknowledgement before: %s at +%s)", resumed.Node,
		resumed.At.Sub(fullAt).Round(time.Millisecond), last.Node, last.At.Sub(fullAt).Round(time.Millisecond))
	if resumed.Node == p.Name {
		t.Logf("%s kept the lock: its PostgreSQL restarted in place", p.Name)
	}

	// Space back: every member runs again and streams.
	if err := os.Remove(filler); err != nil {
		t.Fatal(err)
	}
	c.WaitReplicas(180 * time.Second)
	w.WaitAcked(t, 20, 60*time.Second)
	w.Stop()
	if v := w.Violations(); len(v) > 0 {
		t.Errorf("two writable nodes: %v", v)
	}
	final := c.WaitPrimary(60 * time.Second)
	missing, err := w.Missing(ctx, final)
	if err != nil {
		t.Fatal(err)
	}
	if len(missing) > 0 {
		t.Fatalf("%d acknowledged rows missing on %s: %v", len(missing), final.Name, missing)
	}
	t.Logf("%s -> %s, %d acknowledged rows all present, longest write gap %s",
		p.Name, final.Name, len(w.Acked()), w.LongestGap().Round(time.Millisecond))
	if b, err := os.ReadFile(p.DataDir + ".log"); err != nil || !strings.Contains(string(b), "No space left on device") {
		t.Errorf("%s's PostgreSQL log does not name the full disk (%v): the fault did not happen as intended", p.Name, err)
	}
	if ev := c.LogEvents("handing over"); len(ev) > 0 {
		t.Logf("ramd: %s", ev[0])
	}
}
