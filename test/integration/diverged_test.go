package integration

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/ramd-project/ramd/test/harness"
	"github.com/ramd-project/ramd/test/testenv"
)

// TestReplicaPastForkIsRewound: an asynchronous replica that received WAL the new primary
// never had (it was ahead of the promoted replica when the primary died) cannot stream from
// the new timeline: PostgreSQL refuses to switch timelines behind its recovery point and
// retries for ever. ramd sees that its position lies past the fork point in the new
// primary's timeline history, rewinds it, and it streams again with the new primary's data.
//
// n1 leads; n3 is tagged nofailover so that n2, held behind, is the one promoted. n2's
// walreceiver is stopped (SIGSTOP) and its walsender on n1 ended while n1 takes writes that
// reach n3 only; then n1 dies.
func TestReplicaPastForkIsRewound(t *testing.T) {
	t.Parallel()
	addr := needReal(t)
	c := harness.New(t, ramdBin, addr, 3, harness.Options{
		NodeEnv: map[string]map[string]string{"n3": {"RAMD_TAGS": "nofailover:true"}},
	})
	n1, n2, n3 := c.Node("n1"), c.Node("n2"), c.Node("n3")
	n1.Start()
	if p := c.WaitPrimary(120 * time.Second); p != n1 {
		t.Fatalf("primary %s, want n1 (started alone)", p.Name)
	}
	n2.Start()
	n3.Start()
	c.WaitReplicas(120 * time.Second)
	ctx := context.Background()
	if err := n1.Exec(ctx, "CREATE TABLE fork (v int)"); err != nil {
		t.Fatal(err)
	}
	testenv.Eventually(t, 30*time.Second, 100*time.Millisecond, func() error {
		_, err := n2.QueryInt(ctx, "SELECT count(*) FROM fork")
		return err
	})

	// Hold n2 behind: its walreceiver stops taking WAL; n3 keeps streaming.
	wr, err := n2.QueryInt(ctx, "SELECT pid FROM pg_stat_wal_receiver")
	if err != nil || wr <= 0 {
		t.Fatalf("n2 walreceiver pid: %d, %v", wr, err)
	}
	if err := syscall.Kill(int(wr), syscall.SIGSTOP); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = syscall.Kill(int(wr), syscall.SIGCONT) })
	// Its walsender on n1 ends, so nothing written from now on is sent to n2 (a stopped
	// walreceiver cannot reconnect).
	testenv.Eventually(t, 30*time.Second, 100*time.Millisecond, func() error {
		if err := n1.Exec(ctx, "SELECT pg_terminate_backend(pid) FROM pg_stat_replication WHERE application_name = 'n2'"); err != nil {
			return err
		}
		v, err := n1.QueryInt(ctx, "SELECT count(*) FROM pg_stat_replication WHERE application_name = 'n2'")
		if err != nil || v != 0 {
			return fmt.Errorf("n2's walsender still there (%d, %w)", v, err)
		}
		return nil
	})
	if err := n1.Exec(ctx, "INSERT INTO fork SELECT generate_series(1, 100)"); err != nil {
		t.Fatal(err)
	}
	testenv.Eventually(t, 30*time.Second, 100*time.Millisecond, func() error {
		v, err := n3.QueryInt(ctx, "SELECT count(*) FROM fork")
		if err != nil || v != 100 {
			return fmt.Errorf("n3 has %d of 100 rows (%w)", v, err)
		}
		return nil
	})
	n1.Kill()
	if err := syscall.Kill(int(wr), syscall.SIGCONT); err != nil {
		t.Fatal(err)
	}
	killed := time.Now()

	testenv.Eventually(t, 60*time.Second, 100*time.Millisecond, func() error {
		if code := n2.Health("/primary"); code != http.StatusOK {
			return fmt.Errorf("n2 /primary = %d", code)
		}
		return nil
	})
	t.Logf("n2 promoted %s after n1 was killed", time.Since(killed).Round(time.Millisecond))
	if v, err := n2.QueryInt(ctx, "SELECT count(*) FROM fork"); err != nil || v != 0 {
		t.Fatalf("n2 has %d rows of the fork table, want 0 (it was held behind): %v", v, err)
	}
	// n3 holds the 100 rows n2 never received. It must be rewound and then replay n2's
	// timeline: those rows gone, n2's new one there. (n2's pg_stat_replication is no test:
	// a standby that cannot follow still streams its old timeline up to the fork, again and
	// again, and shows as streaming meanwhile.)
	if err := n2.Exec(ctx, "INSERT INTO fork VALUES (-1)"); err != nil {
		t.Fatal(err)
	}
	testenv.Eventually(t, 120*time.Second, 200*time.Millisecond, func() error {
		v, err := n3.QueryInt(ctx, "SELECT count(*) FROM fork")
		if err != nil {
			return fmt.Errorf("read n3: %w", err)
		}
		if v != 1 {
			return fmt.Errorf("n3 has %d rows, want the new primary's 1", v)
		}
		if tl := timeline(t, n3); tl != 2 {
			return fmt.Errorf("n3 on timeline %d, want 2", tl)
		}
		return nil
	})
	t.Logf("n3 replays n2's timeline %s after n1 was killed", time.Since(killed).Round(time.Millisecond))
	b, _ := os.ReadFile(n3.LogPath)
	if !strings.Contains(string(b), "pg_rewind done") {
		t.Error("n3 follows n2 without pg_rewind")
	}
	for _, e := range c.LogEvents("cannot follow", "rewind", "promoted") {
		t.Log(e)
	}
	c.WaitReplicas(60 * time.Second)
}
