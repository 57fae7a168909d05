package integration

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"net/http"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/ramd-project/ramd/test/harness"
	"github.com/ramd-project/ramd/test/testenv"
)

// syncRounds is how many failovers each synchronous mode goes through: def in the normal
// run (the chaos target runs 20), or RAMD_SYNC_ROUNDS.
func syncRounds(def int) int {
	if n, err := strconv.Atoi(os.Getenv("RAMD_SYNC_ROUNDS")); err == nil && n > 0 {
		return n
	}
	return def
}

type syncKey struct {
	Leader      string `json:"leader"`
	SyncStandby string `json:"sync_standby"`
	Quorum      int    `json:"quorum"`
}

// waitSync waits until the sync key names want standbys for the current primary and the
// primary enforces a setting of method.
func waitSync(t *testing.T, c *harness.Cluster, addr string, want int, method string) *harness.Node {
	t.Helper()
	var p *harness.Node
	testenv.Eventually(t, 90*time.Second, 200*time.Millisecond, func() error {
		var err error
		if p, err = c.Primary(); err != nil {
			return err
		}
		raw, ok := kv(t, addr, "service/"+c.Scope+"/")["sync"]
		if !ok {
			return fmt.Errorf("no sync key")
		}
		var k syncKey
		if err := json.Unmarshal([]byte(raw[0]), &k); err != nil {
			return err
		}
		names := strings.FieldsFunc(k.SyncStandby, func(r rune) bool { return r == ',' })
		if k.Leader != p.Name || len(names) != want {
			return fmt.Errorf("sync key %+v, want %d standbys for %s", k, want, p.Name)
		}
		conn, err := p.Conn(context.Background())
		if err != nil {
			return err
		}
		defer conn.Close(context.Background())
		var ssn string
		if err := conn.QueryRow(context.Background(), "SHOW synchronous_standby_names").Scan(&ssn); err != nil {
			return err
		}
		if !strings.HasPrefix(ssn, method) {
			return fmt.Errorf("synchronous_standby_names = %q, want %s", ssn, method)
		}
		return nil
	})
	return p
}

// syncFailovers kills the primary at random moments, rounds times, and checks after each
// failover that every acknowledged row is on the new primary.
func syncFailovers(t *testing.T, rounds, nodes int, mode string, count, want int, method string) {
	t.Helper()
	t.Parallel()
	addr := needReal(t)
	c := harness.New(t, ramdBin, addr, nodes, harness.Options{})
	c.StartAll()
	c.WaitPrimary(120 * time.Second)
	c.WaitReplicas(120 * time.Second)
	// Configured through the API of a replica: the request is validated and written by CAS.
	var replica *harness.Node
	for _, n := range c.Nodes {
		if p, _ := c.Primary(); n != p {
			replica = n
			break
		}
	}
	code, body := put(t, replica.APIURL()+"/api/v1/sync-standbys", fmt.Sprintf(`{"synchronous_mode": %q, "synchronous_node_count": %d}`, mode, count))
	if code != http.StatusOK {
		t.Fatalf("PUT /api/v1/sync-standbys: %d %s", code, body)
	}
	if code, body := put(t, replica.APIURL()+"/api/v1/sync-standbys", `{"synchronous_node_count": 0}`); code != http.StatusBadRequest || !strings.Contains(body, "synchronous_node_count") {
		t.Fatalf("a bad count was not refused: %d %s", code, body)
	}
	waitSync(t, c, addr, want, method)
	w := c.StartWriter(t)
	ctx := context.Background()
	for round := 1; round <= rounds; round++ {
		w.WaitAcked(t, 20, 60*time.Second)
		p := waitSync(t, c, addr, want, method)
		time.Sleep(time.Duration(rand.IntN(400)) * time.Millisecond) // a random moment
		killedAt := time.Now()
		p.Kill()
		next := c.WaitPrimary(90 * time.Second)
		if next == p {
			t.Fatalf("round %d: the killed node is primary", round)
		}
		w.WaitAcked(t, 5, 60*time.Second)
		missing, err := w.Missing(ctx, next)
		if err != nil {
			t.Fatalf("round %d: read back: %v", round, err)
		}
		if len(missing) > 0 {
			for _, id := range missing {
				a, _ := w.AckOf(id)
				t.Logf("missing id %d was acknowledged by %s at %s", id, a.Node, a.At.Format("15:04:05.000"))
			}
			t.Fatalf("round %d (%s): %d acknowledged rows missing on %s (killed %s at %s): %v", round, mode, len(missing), next.Name, p.Name, killedAt.Format("15:04:05.000"), missing)
		}
		t.Logf("round %d: %s -> %s, %d acknowledged rows all present", round, p.Name, next.Name, len(w.Acked()))
		p.Start()
		c.WaitReplicas(120 * time.Second)
	}
	w.Stop()
	if v := w.Violations(); len(v) > 0 {
		t.Errorf("split brain: %v", v)
	}
	p := c.WaitPrimary(60 * time.Second)
	missing, err := w.Missing(ctx, p)
	if err != nil {
		t.Fatal(err)
	}
	if len(missing) > 0 {
		t.Fatalf("%d acknowledged rows missing at the end: %v", len(missing), missing)
	}
	t.Logf("%s: %d failovers, %d acknowledged rows, 0 missing", mode, rounds, len(w.Acked()))
}

// TestSyncFirst1of2: synchronous_mode on, one synchronous standby out of two replicas.
func TestSyncFirst1of2(t *testing.T) { syncFailovers(t, syncRounds(3), 3, "on", 1, 1, "FIRST 1") }

// TestSyncAny1of2: quorum mode, ANY 1 over two replicas.
func TestSyncAny1of2(t *testing.T) { syncFailovers(t, syncRounds(3), 3, "quorum", 1, 2, "ANY 1") }

// TestSyncAny2of3: quorum mode, ANY 2 over three replicas (four nodes).
func TestSyncAny2of3(t *testing.T) { syncFailovers(t, syncRounds(3), 4, "quorum", 2, 3, "ANY 2") }

func put(t *testing.T, url, body string) (int, string) {
	t.Helper()
	return request(t, http.MethodPut, url, body)
}

// TestSyncStandbyCleanStop: a synchronous standby stopped with SIGTERM first asks to be
// removed; the leader moves the synchronous role to the other replica and writes go on.
func TestSyncStandbyCleanStop(t *testing.T) {
	t.Parallel()
	addr := needReal(t)
	c := harness.New(t, ramdBin, addr, 3, harness.Options{})
	c.StartAll()
	c.WaitPrimary(120 * time.Second)
	c.WaitReplicas(120 * time.Second)
	putKV(t, addr, "service/"+c.Scope+"/config", `{"synchronous_mode": "on", "synchronous_node_count": 1}`)
	p := waitSync(t, c, addr, 1, "FIRST 1")
	w := c.StartWriter(t)
	w.WaitAcked(t, 10, 30*time.Second)
	var k syncKey
	testenv.Eventually(t, 30*time.Second, 100*time.Millisecond, func() error {
		_ = json.Unmarshal([]byte(kv(t, addr, "service/"+c.Scope+"/")["sync"][0]), &k)
		if k.SyncStandby == "" {
			return fmt.Errorf("no synchronous standby published")
		}
		return nil
	})
	sync := c.Node(k.SyncStandby)
	if err := sync.Stop(); err != nil {
		t.Fatal(err)
	}
	b, _ := os.ReadFile(sync.LogPath)
	if !strings.Contains(string(b), "removed from the synchronous standbys") {
		t.Error("the stopping synchronous standby was not removed before it stopped")
	}
	testenv.Eventually(t, 30*time.Second, 200*time.Millisecond, func() error {
		var now syncKey
		_ = json.Unmarshal([]byte(kv(t, addr, "service/"+c.Scope+"/")["sync"][0]), &now)
		if now.SyncStandby == "" || now.SyncStandby == sync.Name {
			return fmt.Errorf("sync key %+v", now)
		}
		return nil
	})
	w.WaitAcked(t, 20, 30*time.Second)
	t.Logf("longest write gap while the synchronous standby left: %s", w.LongestGap())

	// A restart through the API of the synchronous standby now in place leaves the same way
	// first, and the node takes part again once it runs.
	var now syncKey
	_ = json.Unmarshal([]byte(kv(t, addr, "service/"+c.Scope+"/")["sync"][0]), &now)
	second := c.Node(now.SyncStandby)
	if code, body := post(t, second.APIURL()+"/restart", `{}`); code != http.StatusOK {
		t.Fatalf("restart of the synchronous standby %s: %d %s", second.Name, code, body)
	}
	b, _ = os.ReadFile(second.LogPath)
	if !strings.Contains(string(b), "removed from the synchronous standbys") {
		t.Error("the restarted synchronous standby was not removed before it stopped")
	}
	sync.Start()
	c.WaitReplicas(120 * time.Second)
	w.WaitAcked(t, 20, 30*time.Second)
	w.Stop()
	missing, err := w.Missing(context.Background(), p)
	if err != nil || len(missing) > 0 {
		t.Fatalf("missing %v (%v)", missing, err)
	}
	t.Logf("longest write gap over both: %s", w.LongestGap())
	if testing.Verbose() {
		for _, e := range c.LogEvents("synchronous standbys step", "removed from", "asked the leader") {
			t.Log(e)
		}
	}
}

// TestSyncStrictNoStandby: with synchronous_mode_strict, a primary whose only synchronous
// standby died acknowledges no commit until a standby is back; without strict, writes go
// on once the leader dropped the dead standby from synchronous_standby_names.
func TestSyncStrictNoStandby(t *testing.T) {
	t.Parallel()
	addr := needReal(t)
	c := harness.New(t, ramdBin, addr, 2, harness.Options{})
	c.StartAll()
	c.WaitPrimary(120 * time.Second)
	c.WaitReplicas(120 * time.Second)
	p, _ := c.Primary()
	if code, body := put(t, p.APIURL()+"/api/v1/sync-standbys", `{"synchronous_mode": "on", "synchronous_node_count": 1, "synchronous_mode_strict": true}`); code != http.StatusOK {
		t.Fatalf("PUT /api/v1/sync-standbys: %d %s", code, body)
	}
	p = waitSync(t, c, addr, 1, "FIRST 1")
	var replica *harness.Node
	for _, n := range c.Nodes {
		if n != p {
			replica = n
		}
	}
	ctx := context.Background()
	if err := p.Exec(ctx, "CREATE TABLE strict_probe (id int)"); err != nil {
		t.Fatal(err)
	}
	replica.Kill()
	// Several leader cycles pass; every attempt must stay unacknowledged.
	for i := range 3 {
		wctx, cancel := context.WithTimeout(ctx, 3*time.Second)
		err := p.Exec(wctx, "INSERT INTO strict_probe VALUES ($1)", i)
		cancel()
		if err == nil {
			t.Fatalf("attempt %d: a commit was acknowledged in strict mode without any synchronous standby", i)
		}
		if !errors.Is(err, context.DeadlineExceeded) && !strings.Contains(err.Error(), "timeout") {
			t.Fatalf("attempt %d failed for another reason than waiting for a standby: %v", i, err)
		}
	}
	conn, err := p.Conn(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var ssn string
	err = conn.QueryRow(ctx, "SHOW synchronous_standby_names").Scan(&ssn)
	conn.Close(ctx)
	if err != nil || ssn == "" {
		t.Fatalf("strict mode emptied synchronous_standby_names (%q, %v)", ssn, err)
	}
	// The standby comes back: commits are acknowledged again.
	replica.Start()
	testenv.Eventually(t, 120*time.Second, 500*time.Millisecond, func() error {
		wctx, cancel := context.WithTimeout(ctx, 2*time.Second)
		defer cancel()
		return p.Exec(wctx, "INSERT INTO strict_probe VALUES (100)")
	})

	// Without strict, the leader drops the dead standby and writes go on.
	if code, body := put(t, p.APIURL()+"/api/v1/sync-standbys", `{"synchronous_mode_strict": false}`); code != http.StatusOK {
		t.Fatalf("PUT strict false: %d %s", code, body)
	}
	waitSync(t, c, addr, 1, "FIRST 1")
	replica.Kill()
	testenv.Eventually(t, 60*time.Second, 500*time.Millisecond, func() error {
		wctx, cancel := context.WithTimeout(ctx, 2*time.Second)
		defer cancel()
		return p.Exec(wctx, "INSERT INTO strict_probe VALUES (200)")
	})
	if now, _ := c.Primary(); now != p {
		t.Fatalf("primary changed during the test")
	}
}
