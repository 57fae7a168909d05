package integration

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ramd-project/ramd/test/harness"
	"github.com/ramd-project/ramd/test/testenv"
)

// nodeView is the part of GET /api/v1/cluster that tells a member's timings and configuration.
type nodeView struct {
	Node struct {
		Name    string `json:"name"`
		Timings struct {
			TTL          float64 `json:"ttl"`
			LoopWait     float64 `json:"loop_wait"`
			RetryTimeout float64 `json:"retry_timeout"`
			FenceMargin  float64 `json:"fence_margin"`
		} `json:"timings"`
		Config struct {
			Index              uint64 `json:"index"`
			Source             string `json:"source"`
			Refusal            string `json:"refusal"`
			EnvironmentDiffers bool   `json:"environment_differs"`
		} `json:"config"`
		SyncDegraded string `json:"sync_degraded"`
	} `json:"node"`
}

func clusterView(n *harness.Node) (nodeView, error) {
	var v nodeView
	code, body := getURL(n.APIURL() + "/api/v1/cluster")
	if code != http.StatusOK {
		return v, fmt.Errorf("%s: GET /api/v1/cluster: %d %s", n.Name, code, body)
	}
	return v, json.Unmarshal([]byte(body), &v)
}

// kvValue reads one key (the second result is false when it does not exist).
func kvValue(t *testing.T, addr, key string) (string, bool) {
	t.Helper()
	v, ok := kv(t, addr, key)[""]
	return v[0], ok
}

// getURL is a GET that reports a failed connection as code 0 instead of failing the test (the
// callers poll).
func getURL(url string) (int, string) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, err.Error()
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// waitTimings waits until every running node runs with ttl and loopWait (seconds) from the
// cluster's configuration.
func waitTimings(t *testing.T, c *harness.Cluster, ttl, loopWait float64) {
	t.Helper()
	testenv.Eventually(t, 30*time.Second, 100*time.Millisecond, func() error {
		for _, n := range c.Nodes {
			v, err := clusterView(n)
			if err != nil {
				return err
			}
			if v.Node.Timings.TTL != ttl || v.Node.Timings.LoopWait != loopWait || v.Node.Config.Source != "cluster" {
				return fmt.Errorf("%s runs %+v from %q, want ttl %g loop_wait %g from the cluster", n.Name, v.Node.Timings, v.Node.Config.Source, ttl, loopWait)
			}
		}
		return nil
	})
}

// TestConfigTimingsCluster: the timings live in the dynamic configuration. A member started
// with another RAMD_TTL follows the cluster's and says so; changing ttl, loop_wait,
// retry_timeout and fence_margin under writes reaches every member without a restart, with no
// failover and never two writable nodes; a configuration written straight into Consul with a
// value ramd refuses (as patronictl edit-config does) is never acted on and the leader writes
// the last valid one back.
func TestConfigTimingsCluster(t *testing.T) {
	t.Parallel()
	addr := needReal(t)
	c := harness.New(t, ramdBin, addr, 3, harness.Options{NodeEnv: map[string]map[string]string{
		"n3": {"RAMD_TTL": "6s", "RAMD_LOOP_WAIT": "2s"},
	}})
	c.Node("n1").Start() // n1 bootstraps, so the cluster's timings are n1's (the defaults)
	p := c.WaitPrimary(120 * time.Second)
	c.Node("n2").Start()
	c.Node("n3").Start()
	c.WaitReplicas(120 * time.Second)
	waitTimings(t, c, 3, 1)
	v, err := clusterView(c.Node("n3"))
	if err != nil {
		t.Fatal(err)
	}
	if !v.Node.Config.EnvironmentDiffers {
		t.Errorf("n3 (RAMD_TTL=6s) does not report that its environment differs: %+v", v.Node.Config)
	}
	if ev := c.LogEvents("differ from the cluster's configuration"); len(ev) == 0 || !strings.Contains(strings.Join(ev, "\n"), "n3") {
		t.Errorf("n3 did not say it follows the cluster's timings: %v", ev)
	}
	tl := timeline(t, p)
	w := c.StartWriter(t)
	w.WaitAcked(t, 10, 30*time.Second)

	replica := c.Node("n2")
	steps := []struct {
		patch         string
		ttl, loopWait float64
	}{
		{`{"ttl":6,"loop_wait":2,"retry_timeout":2,"fence_margin":1}`, 6, 2},
		{`{"ttl":2,"loop_wait":0.5,"retry_timeout":0.5,"fence_margin":0.5}`, 2, 0.5},
		{`{"ttl":3,"loop_wait":1,"retry_timeout":1,"fence_margin":1}`, 3, 1},
	}
	for _, s := range steps {
		changed := time.Now()
		if code, body := patch(t, replica.APIURL()+"/config", s.patch, ""); code != http.StatusOK {
			t.Fatalf("PATCH %s: %d %s", s.patch, code, body)
		}
		waitTimings(t, c, s.ttl, s.loopWait)
		t.Logf("ttl %gs loop_wait %gs in force on every member %s after the PATCH", s.ttl, s.loopWait, time.Since(changed).Round(time.Millisecond))
		// The leader announces the TTL it fences by in its heartbeat.
		testenv.Eventually(t, 10*time.Second, 100*time.Millisecond, func() error {
			raw, _ := kvValue(t, addr, "service/"+c.Scope+"/status")
			var st struct {
				TTLms float64 `json:"ttl_ms"`
			}
			if err := json.Unmarshal([]byte(raw), &st); err != nil {
				return err
			}
			if st.TTLms != s.ttl*1000 {
				return fmt.Errorf("status announces ttl_ms %g, want %g", st.TTLms, s.ttl*1000)
			}
			return nil
		})
		w.WaitAcked(t, 10, 30*time.Second)
	}

	// A refused value written straight into Consul (patronictl writes there) is not acted on,
	// and the leader writes back the last valid configuration.
	key := "service/" + c.Scope + "/config"
	valid, _ := kvValue(t, addr, key)
	putKV(t, addr, key, `{"ttl":"banana","loop_wait":0}`)
	testenv.Eventually(t, 20*time.Second, 100*time.Millisecond, func() error {
		if got, _ := kvValue(t, addr, key); got != valid {
			return fmt.Errorf("config key is %s, want the last valid %s written back", got, valid)
		}
		return nil
	})
	waitTimings(t, c, 3, 1)
	if ev := c.LogEvents("refusing the configuration in Consul"); len(ev) == 0 {
		t.Error("no member logged the refusal of the configuration written into Consul")
	}

	if now := c.WaitPrimary(30 * time.Second); now != p {
		t.Errorf("primary moved from %s to %s while the timings changed", p.Name, now.Name)
	}
	if got := timeline(t, p); got != tl {
		t.Errorf("timeline changed from %d to %d while the timings changed", tl, got)
	}
	if ev := c.LogEvents("fencing deadline passed", "fencing: stopping postgres", "promoted"); len(ev) > 0 {
		t.Errorf("fencing or promotion while the timings changed: %v", ev)
	}
	report(t, c, w)
	if missing, _ := w.Missing(context.Background(), p); len(missing) > 0 {
		t.Errorf("%d acknowledged rows missing without any failover", len(missing))
	}
}

// TestConfigSurvivesConsulDataLoss: with synchronous mode on, the Consul agent is replaced by
// an empty one (the data directories of PostgreSQL kept). The leader writes the configuration
// back from its copy, synchronous_standby_names never goes empty on the primary, and no
// acknowledged write is lost.
func TestConfigSurvivesConsulDataLoss(t *testing.T) {
	t.Parallel()
	needReal(t)
	agent := testenv.StartConsul(t, testenv.ConsulOptions{}) // -dev: a restart starts empty
	c, p, w := writing(t, agent.HTTPAddr, harness.Options{})
	if code, body := put(t, p.APIURL()+"/api/v1/sync-standbys", `{"synchronous_mode":"on","synchronous_node_count":1}`); code != http.StatusOK {
		t.Fatalf("PUT /api/v1/sync-standbys: %d %s", code, body)
	}
	waitSync(t, c, agent.HTTPAddr, 1, "FIRST 1")
	w.WaitAcked(t, 10, 30*time.Second)
	key := "service/" + c.Scope + "/config"
	before, _ := kvValue(t, agent.HTTPAddr, key)

	// Watch the primary's synchronous_standby_names every 50 ms through the whole event.
	ctx, cancel := context.WithCancel(context.Background())
	var mu sync.Mutex
	var emptyFor time.Duration
	var polls int
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		var emptySince time.Time
		for i := 0; i < 20*60*5 && ctx.Err() == nil; i++ { // bounded: at most 5 minutes
			if q, err := c.Primary(); err == nil {
				qctx, qcancel := context.WithTimeout(ctx, time.Second)
				var ssn string
				if conn, err := q.Conn(qctx); err == nil {
					if conn.QueryRow(qctx, "SHOW synchronous_standby_names").Scan(&ssn) == nil {
						mu.Lock()
						polls++
						switch {
						case ssn == "" && emptySince.IsZero():
							emptySince = time.Now()
						case ssn != "" && !emptySince.IsZero():
							emptyFor += time.Since(emptySince)
							emptySince = time.Time{}
						}
						mu.Unlock()
					}
					_ = conn.Close(context.Background())
				}
				qcancel()
			}
			select {
			case <-ctx.Done():
			case <-time.After(50 * time.Millisecond):
			}
		}
	}()

	agent.Stop(t)
	agent.Start(t) // a new, empty agent on the same address
	lost := time.Now()
	testenv.Eventually(t, 60*time.Second, 200*time.Millisecond, func() error {
		got, ok := kvValue(t, agent.HTTPAddr, key)
		if !ok {
			return fmt.Errorf("no config key yet")
		}
		if got != before {
			return fmt.Errorf("config key %s, want %s back", got, before)
		}
		return nil
	})
	t.Logf("configuration back in Consul %s after the data loss", time.Since(lost).Round(time.Millisecond))
	p = waitSync(t, c, agent.HTTPAddr, 1, "FIRST 1")
	w.WaitAcked(t, 20, 60*time.Second)
	cancel()
	wg.Wait()
	mu.Lock()
	t.Logf("synchronous_standby_names empty on the primary for %s over %d polls", emptyFor, polls)
	if emptyFor > 0 {
		t.Errorf("synchronous replication was absent for %s after Consul lost its data", emptyFor)
	}
	mu.Unlock()
	if v, err := clusterView(p); err != nil || v.Node.SyncDegraded != "" || v.Node.Config.Source != "cluster" {
		t.Errorf("after recovery the leader reports %+v (%v), want the cluster's configuration and no degradation", v.Node, err)
	}
	report(t, c, w)
	missing, err := w.Missing(context.Background(), c.WaitPrimary(30*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	if len(missing) > 0 {
		t.Fatalf("%d acknowledged rows missing after Consul lost its data in synchronous mode: %v", len(missing), missing)
	}
}

// showOn reads a setting on a member.
func showOn(t *testing.T, n *harness.Node, name string) (string, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	conn, err := n.Conn(ctx)
	if err != nil {
		return "", err
	}
	defer conn.Close(context.Background())
	var v string
	err = conn.QueryRow(ctx, "SELECT current_setting($1)", name).Scan(&v)
	return v, err
}

// TestParametersApplied: postgresql.parameters are judged against the installed server
// (refusals with PostgreSQL's own words, nothing stored), applied on every member by a
// reload, and a restart-only change shows as pending restart on every member.
func TestParametersApplied(t *testing.T) {
	t.Parallel()
	addr := needReal(t)
	c := harness.New(t, ramdBin, addr, 3, harness.Options{})
	c.StartAll()
	p := c.WaitPrimary(120 * time.Second)
	c.WaitReplicas(120 * time.Second)
	key := "service/" + c.Scope + "/config"
	before, _ := kvValue(t, addr, key)
	// Each member builds its server's parameter catalog once at start (cached per host).
	loading := time.Now()
	testenv.Eventually(t, 3*time.Minute, time.Second, func() error {
		for _, n := range c.Nodes {
			if code, body := getURL(n.APIURL() + "/api/v1/parameters/work_mem"); code != http.StatusOK {
				return fmt.Errorf("%s: catalog not ready: %d %s", n.Name, code, body)
			}
		}
		return nil
	})
	t.Logf("parameter catalogs ready on every member %s after the cluster", time.Since(loading).Round(time.Millisecond))

	refused := []struct{ body, field, says string }{
		{`{"postgresql":{"parameters":{"work_mem":"-5"}}}`, "postgresql.parameters.work_mem", "outside the valid range"},
		{`{"postgresql":{"parameters":{"no_such_param":"1"}}}`, "postgresql.parameters.no_such_param", "unrecognized configuration parameter"},
		{`{"postgresql":{"parameters":{"shared_buffers":"1TB"}}}`, "postgresql.parameters.shared_buffers", "memory"},
		{`{"postgresql":{"parameters":{"wal_level":"minimal"}}}`, "postgresql.parameters.wal_level", "replica"},
	}
	for _, r := range refused {
		code, body := patch(t, p.APIURL()+"/config", r.body, "")
		if code != http.StatusUnprocessableEntity || !strings.Contains(body, r.field) || !strings.Contains(body, r.says) {
			t.Errorf("PATCH %s: %d %s, want 422 naming %s and saying %q", r.body, code, body, r.field, r.says)
		}
		if now, _ := kvValue(t, addr, key); now != before {
			t.Fatalf("a refused PATCH changed the configuration: %s -> %s", before, now)
		}
	}
	// Legal but risky: accepted, with a warning.
	resp := func(body string) (int, http.Header) {
		req, _ := http.NewRequest(http.MethodPatch, p.APIURL()+"/config", strings.NewReader(body))
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer res.Body.Close()
		_, _ = io.Copy(io.Discard, res.Body)
		return res.StatusCode, res.Header
	}
	code, h := resp(`{"postgresql":{"parameters":{"work_mem":"8MB","max_connections":"5","superuser_reserved_connections":"3"}}}`)
	if code != http.StatusOK || len(h.Values("Warning")) == 0 || !strings.Contains(strings.Join(h.Values("Warning"), " "), "max_connections") {
		t.Fatalf("max_connections 5: %d, warnings %q; want 200 with a warning", code, h.Values("Warning"))
	}
	code, _ = resp(`{"postgresql":{"parameters":{"max_connections":null,"superuser_reserved_connections":null,"shared_buffers":"256MB"}}}`)
	if code != http.StatusOK {
		t.Fatalf("shared_buffers 256MB: %d", code)
	}
	// work_mem reaches every member by a reload; shared_buffers waits for a restart there.
	testenv.Eventually(t, 30*time.Second, 200*time.Millisecond, func() error {
		for _, n := range c.Nodes {
			if v, err := showOn(t, n, "work_mem"); err != nil || v != "8MB" {
				return fmt.Errorf("%s: work_mem %q (%w)", n.Name, v, err)
			}
			d, err := n.Patroni()
			if err != nil {
				return err
			}
			if !d.PendingRestart {
				return fmt.Errorf("%s: no pending restart for shared_buffers", n.Name)
			}
		}
		return nil
	})
	if v, _ := showOn(t, p, "shared_buffers"); v == "256MB" {
		t.Errorf("shared_buffers changed without a restart")
	}
	t.Logf("work_mem 8MB on every member; shared_buffers 256MB pending a restart on every member")

	// Restarts in the right order: lowering a hot-standby parameter restarts the primary
	// first, raising it the replicas first; no replica stops replaying either way.
	rolling := func(patchBody, wantPhase, setting, want string) {
		t.Helper()
		if patchBody != "" {
			if code, body := patch(t, p.APIURL()+"/config", patchBody, ""); code != http.StatusOK {
				t.Fatalf("PATCH %s: %d %s", patchBody, code, body)
			}
		}
		// Every member shows the change as pending, with its old and new value.
		testenv.Eventually(t, 30*time.Second, 200*time.Millisecond, func() error {
			for _, n := range c.Nodes {
				code, body := getURL(n.APIURL() + "/patroni")
				var d struct {
					Reasons map[string]struct {
						Old string `json:"old_value"`
						New string `json:"new_value"`
					} `json:"pending_restart_reason"`
				}
				if code != http.StatusOK || json.Unmarshal([]byte(body), &d) != nil {
					return fmt.Errorf("%s: /patroni %d", n.Name, code)
				}
				if r, ok := d.Reasons[setting]; !ok || r.New != want {
					return fmt.Errorf("%s: %s not pending as %s yet: %+v", n.Name, setting, want, d.Reasons)
				}
			}
			return nil
		})
		leader := c.WaitPrimary(30 * time.Second)
		code, body := post(t, leader.APIURL()+"/api/v1/restart", `{"restart_pending": true}`)
		if code != http.StatusAccepted {
			t.Fatalf("rolling restart: %d %s", code, body)
		}
		state, job := jobState(t, leader, jobID(t, body), 5*time.Minute)
		if state != "succeeded" || !strings.Contains(job, wantPhase) {
			t.Fatalf("rolling restart for %s=%s: %s, want it to succeed with %q: %s", setting, want, state, wantPhase, job)
		}
		t.Logf("rolling restart for %s=%s: %s", setting, want, job)
		c.WaitReplicas(120 * time.Second)
		testenv.Eventually(t, 30*time.Second, 200*time.Millisecond, func() error {
			for _, n := range c.Nodes {
				if v, err := showOn(t, n, setting); err != nil || v != want {
					return fmt.Errorf("%s: %s %q (%w)", n.Name, setting, v, err)
				}
			}
			return nil
		})
		t.Logf("%s=%s: every member runs it, replicas streaming", setting, want)
	}
	rolling("", "restarting replicas", "shared_buffers", "256MB")
	rolling(`{"postgresql":{"parameters":{"max_connections":"90"}}}`, "restarting the primary first: max_connections lowered from 100 to 90", "max_connections", "90")
	rolling(`{"postgresql":{"parameters":{"max_connections":"120"}}}`, "restarting replicas", "max_connections", "120")
}

// headETag is the status and the unquoted ETag of a GET.
func headETag(t *testing.T, url string) (int, string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, err.Error()
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, resp.Body)
	return resp.StatusCode, strings.Trim(resp.Header.Get("ETag"), `"`)
}
