package integration

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/ramd-project/ramd/consul"
	"github.com/ramd-project/ramd/daemon/fence"
	"github.com/ramd-project/ramd/test/harness"
	"github.com/ramd-project/ramd/test/testenv"
)

// report checks the invariants after a fault: no two nodes accepted writes together, and
// says how many acknowledged rows are missing on the current primary (asynchronous mode
// may lose the last ones; the count is reported, not hidden).
func report(t *testing.T, c *harness.Cluster, w *harness.Writer) {
	t.Helper()
	w.Stop()
	if v := w.Violations(); len(v) > 0 {
		t.Errorf("split brain: %d ticks with two writable nodes: %v", len(v), v)
	}
	p := c.WaitPrimary(60 * time.Second)
	missing, err := w.Missing(context.Background(), p)
	if err != nil {
		t.Fatalf("read back: %v", err)
	}
	t.Logf("acknowledged %d rows, %d missing on %s (async mode), longest write gap %s",
		len(w.Acked()), len(missing), p.Name, w.LongestGap().Round(time.Millisecond))
	if testing.Verbose() {
		for _, e := range c.LogEvents(os.Getenv("RAMD_TEST_LOG_GREP"), "fenc", "failsafe", "promoted", "restarted", "lock acquired", "released", "level=ERROR", "level=WARN") {
			t.Log(e)
		}
	}
}

// writing starts a three-node cluster on agent addr, waits for a primary and streaming
// replicas, and starts the writer.
func writing(t *testing.T, addr string, opts harness.Options) (*harness.Cluster, *harness.Node, *harness.Writer) {
	t.Helper()
	c := harness.New(t, ramdBin, addr, 3, opts)
	c.StartAll()
	p := c.WaitPrimary(120 * time.Second)
	c.WaitReplicas(120 * time.Second)
	w := c.StartWriter(t)
	w.WaitAcked(t, 10, 30*time.Second)
	return c, p, w
}

func timeline(t *testing.T, n *harness.Node) int {
	t.Helper()
	d, err := n.Patroni()
	if err != nil {
		t.Fatalf("%s: %v", n.Name, err)
	}
	return d.Timeline
}

func putKV(t *testing.T, addr, key, value string) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodPut, "http://"+addr+"/v1/kv/"+key, strings.NewReader(value))
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
}

// request sends one request with a JSON body (none when empty) and header pairs (name,
// value; an empty value is left out) and returns the status code and the body.
func request(t *testing.T, method, url, body string, header ...string) (int, string) {
	t.Helper()
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req, err := http.NewRequest(method, url, rd)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	for i := 0; i+1 < len(header); i += 2 {
		if header[i+1] != "" {
			req.Header.Set(header[i], header[i+1])
		}
	}
	resp, err := (&http.Client{Timeout: 60 * time.Second}).Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, url, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

func post(t *testing.T, url, body string) (int, string) {
	t.Helper()
	return request(t, http.MethodPost, url, body)
}

// TestNodeLossFailoverAndRejoin: three nodes bootstrap and replicate; SIGKILL of the primary's
// ramd and postmaster elects a new primary; the old node restarted rejoins through pg_rewind
// on the new timeline.
func TestNodeLossFailoverAndRejoin(t *testing.T) {
	t.Parallel()
	addr := needReal(t)
	c := harness.New(t, ramdBin, addr, 3, harness.Options{})
	c.StartAll()
	old := c.WaitPrimary(120 * time.Second)
	c.WaitReplicas(120 * time.Second)
	ctx := context.Background()
	if err := old.Exec(ctx, "CREATE TABLE seen (v int); INSERT INTO seen VALUES (42)"); err != nil {
		t.Fatal(err)
	}
	for _, n := range c.Nodes {
		testenv.Eventually(t, 30*time.Second, 100*time.Millisecond, func() error {
			v, err := n.QueryInt(ctx, "SELECT count(*) FROM seen WHERE v = 42")
			if err != nil || v != 1 {
				return fmt.Errorf("%s: row not replicated (%d, %w)", n.Name, v, err)
			}
			return nil
		})
	}
	tl := timeline(t, old)
	w := c.StartWriter(t)
	w.WaitAcked(t, 20, 30*time.Second)

	old.Kill()
	var next *harness.Node
	testenv.Eventually(t, 60*time.Second, 50*time.Millisecond, func() error {
		p, err := c.Primary()
		if err != nil {
			return err
		}
		next = p
		return nil
	})
	if next == old {
		t.Fatal("the killed node is still primary")
	}
	w.WaitAcked(t, 20, 60*time.Second)
	if got := timeline(t, next); got != tl+1 {
		t.Errorf("new primary on timeline %d, want %d", got, tl+1)
	}

	old.Start()
	testenv.Eventually(t, 120*time.Second, 200*time.Millisecond, func() error {
		if code := old.Health("/replica"); code != http.StatusOK {
			return fmt.Errorf("old primary /replica = %d", code)
		}
		if got := timeline(t, old); got != tl+1 {
			return fmt.Errorf("old primary on timeline %d", got)
		}
		return nil
	})
	b, _ := os.ReadFile(old.LogPath)
	if !strings.Contains(string(b), "pg_rewind done") {
		t.Error("old primary rejoined without pg_rewind")
	}
	report(t, c, w)
	// The rejoined node has every row the new primary has.
	p := c.WaitPrimary(30 * time.Second)
	want, _ := p.QueryInt(ctx, "SELECT count(*) FROM ramd_writes")
	testenv.Eventually(t, 30*time.Second, 100*time.Millisecond, func() error {
		got, err := old.QueryInt(ctx, "SELECT count(*) FROM ramd_writes")
		if err != nil || got < want {
			return fmt.Errorf("rejoined node has %d rows of %d (%w)", got, want, err)
		}
		return nil
	})
}

// TestPostgresCrashOnPrimary: the primary's postmaster dies under a live ramd: it is
// restarted in place, no failover, same timeline.
func TestPostgresCrashOnPrimary(t *testing.T) {
	t.Parallel()
	addr := needReal(t)
	c, p, w := writing(t, addr, harness.Options{})
	tl := timeline(t, p)
	pm := p.PostmasterPID()
	if pm == 0 {
		t.Fatal("no postmaster")
	}
	fence.KillPostmaster(pm) // PostgreSQL dies whole: postmaster and every backend
	w.WaitAcked(t, 20, 60*time.Second)
	if now := c.WaitPrimary(30 * time.Second); now != p {
		t.Errorf("primary moved from %s to %s after a postmaster crash", p.Name, now.Name)
	}
	if got := timeline(t, p); got != tl {
		t.Errorf("timeline %d after restart in place, want %d", got, tl)
	}
	report(t, c, w)
}

// TestFencingSIGSTOP: a frozen primary ramd loses the lock to a replica; its postmaster is
// killed by the fence guard before the replica is promoted, and after SIGCONT the old node
// rejoins as a replica. At no moment do two nodes accept writes.
func TestFencingSIGSTOP(t *testing.T) {
	t.Parallel()
	addr := needReal(t)
	c, old, w := writing(t, addr, harness.Options{})

	old.Signal(syscall.SIGSTOP)
	var next *harness.Node
	testenv.Eventually(t, 60*time.Second, 50*time.Millisecond, func() error {
		for _, n := range c.Nodes {
			if n != old && n.Health("/primary") == http.StatusOK {
				next = n
				return nil
			}
		}
		return fmt.Errorf("no replica took over")
	})
	w.WaitAcked(t, 20, 60*time.Second)
	if old.PostmasterPID() != 0 {
		t.Error("the frozen primary's postmaster still runs after a replica took over")
	}
	old.Signal(syscall.SIGCONT)
	testenv.Eventually(t, 120*time.Second, 200*time.Millisecond, func() error {
		if code := old.Health("/replica"); code != http.StatusOK {
			return fmt.Errorf("old primary /replica = %d", code)
		}
		return nil
	})
	if p, err := c.Primary(); err != nil || p != next {
		t.Errorf("primary after SIGCONT: %v, %v; want %s", p, err, next.Name)
	}
	report(t, c, w)
}

// TestConsulRestartNoFailover: the Consul agent (a server with persistent data) stops for a
// few seconds and comes back: no failover, no timeline change.
func TestConsulRestartNoFailover(t *testing.T) {
	t.Parallel()
	needReal(t)
	agent := testenv.StartConsul(t, testenv.ConsulOptions{Server: true})
	// With API credentials: the leader's failsafe confirmations must carry them, or the
	// members refuse and the fence fires (checked below).
	c, p, w := writing(t, agent.HTTPAddr, harness.Options{Env: map[string]string{
		"RAMD_LOG_LEVEL": os.Getenv("RAMD_TEST_LOG_LEVEL"), "RAMD_API_USERNAME": "admin", "RAMD_API_PASSWORD": "s3cret"}})
	if code, _ := post(t, p.APIURL()+"/switchover", fmt.Sprintf(`{"leader":%q}`, p.Name)); code != http.StatusUnauthorized {
		t.Fatalf("an unauthenticated switchover answered %d, want 401", code)
	}
	tl := timeline(t, p)

	agent.Stop(t)
	time.Sleep(3 * time.Second) // the outage itself, not a wait for state
	w.WaitAcked(t, 10, 30*time.Second)
	agent.Start(t)
	testenv.Eventually(t, 60*time.Second, 200*time.Millisecond, func() error {
		for _, n := range c.Nodes {
			if d, err := n.Patroni(); err != nil || !d.Ramd.DCSReachable {
				return fmt.Errorf("%s does not reach Consul yet (%w)", n.Name, err)
			}
		}
		return nil
	})
	w.WaitAcked(t, 10, 30*time.Second)

	if now := c.WaitPrimary(60 * time.Second); now != p {
		t.Errorf("primary moved from %s to %s across a Consul restart", p.Name, now.Name)
	}
	if got := timeline(t, p); got != tl {
		t.Errorf("timeline changed from %d to %d across a Consul restart", tl, got)
	}
	// The leader lived on member confirmations: its fence guard never had to fire.
	if ev := c.LogEvents("fencing deadline passed", "fencing: stopping postgres"); len(ev) > 0 {
		t.Errorf("the primary was fenced during the Consul restart: %v", ev)
	}
	report(t, c, w)
}

// TestLeaderSessionLossReacquires: the leader's session is destroyed out of band (as a
// restart of its local Consul agent does): the live primary re-acquires the lock and no
// replica races it.
func TestLeaderSessionLossReacquires(t *testing.T) {
	t.Parallel()
	addr := needReal(t)
	c, p, w := writing(t, addr, harness.Options{})
	tl := timeline(t, p)
	keys := kv(t, addr, "service/"+c.Scope+"/")
	sid := keys["leader"][1]
	if sid == "" {
		t.Fatal("leader key has no session")
	}
	req, _ := http.NewRequest(http.MethodPut, "http://"+addr+"/v1/session/destroy/"+sid, nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	testenv.Eventually(t, 30*time.Second, 100*time.Millisecond, func() error {
		k := kv(t, addr, "service/"+c.Scope+"/")
		if k["leader"][0] != p.Name || k["leader"][1] == "" || k["leader"][1] == sid {
			return fmt.Errorf("leader key %v", k["leader"])
		}
		return nil
	})
	w.WaitAcked(t, 20, 30*time.Second)
	if now := c.WaitPrimary(30 * time.Second); now != p {
		t.Errorf("primary moved from %s to %s after a session loss", p.Name, now.Name)
	}
	if got := timeline(t, p); got != tl {
		t.Errorf("timeline changed from %d to %d", tl, got)
	}
	if ev := c.LogEvents("msg=promoted"); len(ev) > 0 {
		t.Errorf("a replica was promoted: %v", ev)
	}
	report(t, c, w)
}

// TestSwitchover: to a named replica, to the best replica, and scheduled.
func TestSwitchover(t *testing.T) {
	t.Parallel()
	addr := needReal(t)
	c, p, w := writing(t, addr, harness.Options{})

	var target *harness.Node
	for _, n := range c.Nodes {
		if n != p {
			target = n
			break
		}
	}
	code, body := post(t, p.APIURL()+"/switchover", fmt.Sprintf(`{"leader":%q,"candidate":%q}`, p.Name, target.Name))
	if code != http.StatusOK {
		t.Fatalf("named switchover: %d %s", code, body)
	}
	if now := c.WaitPrimary(30 * time.Second); now != target {
		t.Fatalf("primary is %s after a switchover to %s", now.Name, target.Name)
	}
	c.WaitReplicas(120 * time.Second)
	w.WaitAcked(t, 10, 30*time.Second)

	// The history key names the switchover. With its entries gone, the new primary records
	// its timeline's switch again, read from its timeline history file.
	histKey := "service/" + c.Scope + "/history"
	tl := timeline(t, target)
	waitHistory(t, addr, histKey, tl-1, target.Name, "switchover")
	putKV(t, addr, histKey, "[]")
	waitHistory(t, addr, histKey, tl-1, target.Name, "promoted")

	// To the best replica (no candidate named).
	code, body = post(t, target.APIURL()+"/switchover", fmt.Sprintf(`{"leader":%q}`, target.Name))
	if code != http.StatusOK {
		t.Fatalf("switchover to the best replica: %d %s", code, body)
	}
	second := c.WaitPrimary(30 * time.Second)
	if second == target {
		t.Fatal("primary did not move")
	}
	c.WaitReplicas(120 * time.Second)

	// Scheduled two seconds ahead: nothing moves before, the switchover happens after.
	var third *harness.Node
	for _, n := range c.Nodes {
		if n != second {
			third = n
			break
		}
	}
	// A switchover scheduled far ahead can be cancelled; a second cancel finds none.
	later := time.Now().Add(time.Hour).UTC().Format(time.RFC3339)
	if code, body := post(t, second.APIURL()+"/switchover", fmt.Sprintf(`{"leader":%q,"scheduled_at":%q}`, second.Name, later)); code != http.StatusAccepted {
		t.Fatalf("schedule: %d %s", code, body)
	}
	for _, want := range []int{http.StatusOK, http.StatusNotFound} {
		if code, _ := request(t, http.MethodDelete, second.APIURL()+"/switchover", ""); code != want {
			t.Fatalf("DELETE /switchover: %d, want %d", code, want)
		}
	}
	at := time.Now().Add(3 * time.Second).UTC().Format(time.RFC3339)
	code, body = post(t, second.APIURL()+"/switchover", fmt.Sprintf(`{"leader":%q,"candidate":%q,"scheduled_at":%q}`, second.Name, third.Name, at))
	if code != http.StatusAccepted {
		t.Fatalf("scheduled switchover: %d %s", code, body)
	}
	if now, _ := c.Primary(); now != second {
		t.Fatal("scheduled switchover happened early")
	}
	testenv.Eventually(t, 60*time.Second, 100*time.Millisecond, func() error {
		now, err := c.Primary()
		if err != nil {
			return err
		}
		if now != third {
			return fmt.Errorf("primary is %s", now.Name)
		}
		return nil
	})
	c.WaitReplicas(120 * time.Second)
	w.WaitAcked(t, 10, 30*time.Second)
	report(t, c, w)
}

// waitHistory waits until the history key holds the switch from timeline parent to leader,
// for reason.
func waitHistory(t *testing.T, addr, key string, parent int, leader, reason string) {
	t.Helper()
	testenv.Eventually(t, 30*time.Second, 100*time.Millisecond, func() error {
		v, ok := kvValue(t, addr, key)
		if !ok {
			return errors.New("no history key")
		}
		var h []consul.HistoryEntry
		if err := json.Unmarshal([]byte(v), &h); err != nil {
			return fmt.Errorf("history key %q: %w", v, err)
		}
		for _, e := range h {
			if e.Timeline == parent && e.Reason == reason && e.NewLeader == leader {
				return nil
			}
		}
		return fmt.Errorf("history key %s has no switch from timeline %d to %s for %q", v, parent, leader, reason)
	})
}

// TestPauseNoFailover: in pause a node loss causes no failover; after resume it does.
func TestPauseNoFailover(t *testing.T) {
	t.Parallel()
	addr := needReal(t)
	c := harness.New(t, ramdBin, addr, 3, harness.Options{})
	c.StartAll()
	p := c.WaitPrimary(120 * time.Second)
	c.WaitReplicas(120 * time.Second)
	// Through the API: a bad value and a stale version are refused, then pause is set.
	if code, body := patch(t, p.APIURL()+"/config", `{"pause": "yes"}`, ""); code != http.StatusBadRequest || !strings.Contains(body, `"field":"pause"`) {
		t.Fatalf("a bad pause value was not refused: %d %s", code, body)
	}
	if code, body := patch(t, p.APIURL()+"/config", `{"pause": true}`, `"999999999"`); code != http.StatusConflict {
		t.Fatalf("a stale If-Match was not refused: %d %s", code, body)
	}
	if code, body := patch(t, p.APIURL()+"/config", `{"pause": true}`, ""); code != http.StatusOK {
		t.Fatalf("PATCH /config: %d %s", code, body)
	}
	testenv.Eventually(t, 10*time.Second, 100*time.Millisecond, func() error {
		for _, n := range c.Nodes {
			b, _ := http.Get(n.APIURL() + "/patroni")
			if b == nil {
				return fmt.Errorf("%s unreachable", n.Name)
			}
			body, _ := io.ReadAll(b.Body)
			b.Body.Close()
			if !strings.Contains(string(body), `"pause":true`) {
				return fmt.Errorf("%s not paused yet", n.Name)
			}
		}
		return nil
	})
	p.Kill()
	// Several TTLs pass without anyone taking over.
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		if n, err := c.Primary(); err == nil && n != p {
			t.Fatalf("%s took over while paused", n.Name)
		}
		time.Sleep(200 * time.Millisecond)
	}
	var survivor *harness.Node
	for _, n := range c.Nodes {
		if n != p {
			survivor = n
			break
		}
	}
	if code, body := patch(t, survivor.APIURL()+"/config", `{"pause": null}`, ""); code != http.StatusOK {
		t.Fatalf("resume: %d %s", code, body)
	}
	next := c.WaitPrimary(60 * time.Second)
	if next == p {
		t.Fatal("killed node is primary")
	}
}

// TestGracefulStopHandover: SIGTERM of the primary hands the lock over at once.
func TestGracefulStopHandover(t *testing.T) {
	t.Parallel()
	addr := needReal(t)
	c, p, w := writing(t, addr, harness.Options{})
	if err := p.Stop(); err != nil {
		t.Fatal(err)
	}
	next := c.WaitPrimary(30 * time.Second)
	if next == p {
		t.Fatal("stopped node is primary")
	}
	w.WaitAcked(t, 20, 30*time.Second)
	report(t, c, w)
	b, _ := os.ReadFile(p.LogPath)
	if !strings.Contains(string(b), "handed over") {
		t.Error("the stopping primary did not see its successor take the lock")
	}
}

func patch(t *testing.T, url, body, ifMatch string) (int, string) {
	t.Helper()
	return request(t, http.MethodPatch, url, body, "If-Match", ifMatch)
}
