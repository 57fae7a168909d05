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

// TestSeedRoutes drives the seed project's routes on a live two-node cluster: the status
// alias, the health verdict (healthy, then degraded when the replica stops), the metrics
// (connections, slots, the replica's lag as the leader measures it), the one-step sync
// changes as PostgreSQL and the sync key apply them, POST /api/v1/config, and a switchover
// through /api/v1/cluster/switchover.
func TestSeedRoutes(t *testing.T) {
	t.Parallel()
	addr := needReal(t)
	c := harness.New(t, ramdBin, addr, 2, harness.Options{})
	c.StartAll()
	p := c.WaitPrimary(120 * time.Second)
	c.WaitReplicas(120 * time.Second)
	var r *harness.Node
	for _, n := range c.Nodes {
		if n != p {
			r = n
		}
	}
	ctx := t.Context()
	api := client.New([]string{p.APIURL()}, client.Options{})

	t.Run("status and health", func(t *testing.T) {
		testenv.Eventually(t, 60*time.Second, 250*time.Millisecond, func() error {
			h, err := api.ClusterHealth(ctx)
			if err != nil {
				return err
			}
			if h.Status != client.HealthHealthy || h.Leader != p.Name || len(h.Members) != 2 {
				return fmt.Errorf("health %+v", h)
			}
			return nil
		})
		var st client.ClusterStatus
		readJSON(t, p.APIURL()+"/api/v1/cluster/status", http.StatusOK, &st)
		if st.Leader != p.Name || len(st.Members) != 2 {
			t.Errorf("/api/v1/cluster/status: %+v", st)
		}
		for _, m := range st.Members {
			if m.Name == r.Name && (m.State != "streaming" || m.ReplicationState != "streaming") {
				t.Errorf("replica in /api/v1/cluster/status: %+v, want streaming", m)
			}
		}
	})

	t.Run("metrics", func(t *testing.T) {
		if err := p.Exec(ctx, "CREATE TABLE IF NOT EXISTS seed_t (i int); INSERT INTO seed_t VALUES (1)"); err != nil {
			t.Fatal(err)
		}
		testenv.Eventually(t, 30*time.Second, 250*time.Millisecond, func() error {
			m, err := api.ClusterMetrics(ctx)
			if err != nil {
				return err
			}
			if m.Node.Connections < 1 || m.Node.XactCommit < 1 || !m.Node.PostgresRunning {
				return fmt.Errorf("node figures %+v", m.Node)
			}
			active := 0
			for _, s := range m.Slots {
				if s.Active {
					active++
				}
			}
			if active != 1 {
				return fmt.Errorf("slots %+v, want the replica's active", m.Slots)
			}
			for _, mm := range m.Members {
				if mm.Name == r.Name && (mm.LagBytes == nil || mm.LagSeconds == nil || mm.ReplicationState != "streaming") {
					return fmt.Errorf("replica %+v: no lag as the leader sees it", mm)
				}
			}
			return nil
		})
	})

	t.Run("sync steps", func(t *testing.T) {
		step := func(path string, body any) client.SyncView {
			t.Helper()
			resp, err := api.Do(ctx, http.MethodPost, path, body, nil)
			if err != nil || resp.Code != http.StatusOK {
				t.Fatalf("POST %s: %v %+v", path, err, resp)
			}
			var v client.SyncView
			if err := json.Unmarshal(resp.Body, &v); err != nil {
				t.Fatal(err)
			}
			return v
		}
		if v := step("/api/v1/sync-standbys/add", nil); v.Mode != "on" || v.Count != 1 {
			t.Fatalf("after add: %+v", v)
		}
		// The leader applies it: the replica becomes the synchronous standby in PostgreSQL
		// and in the sync key.
		waitSync := func(state string) {
			t.Helper()
			testenv.Eventually(t, 60*time.Second, 250*time.Millisecond, func() error {
				got, err := p.QueryInt(ctx, "SELECT count(*) FROM pg_stat_replication WHERE sync_state = $1", state)
				if err != nil || got != 1 {
					return fmt.Errorf("%d standbys %s (%w)", got, state, err)
				}
				var v client.SyncView
				readJSON(t, p.APIURL()+"/api/v1/sync-standbys/status", http.StatusOK, &v)
				if state != "async" && (len(v.Standbys) != 1 || v.Standbys[0].Name != r.Name) {
					return fmt.Errorf("sync view %+v", v)
				}
				return nil
			})
		}
		waitSync("sync")
		if v := step("/api/v1/sync-standbys/any-n", map[string]int{"n": 1}); v.Mode != "quorum" || v.Count != 1 {
			t.Fatalf("after any-n: %+v", v)
		}
		waitSync("quorum")
		if v := step("/api/v1/sync-standbys/remove", nil); v.Mode != "off" {
			t.Fatalf("after remove: %+v", v)
		}
		waitSync("async")
		resp, err := api.Do(ctx, http.MethodPost, "/api/v1/sync-standbys/remove", nil, nil)
		if err != nil || resp.Code != http.StatusUnprocessableEntity {
			t.Errorf("remove when off: %v %+v", err, resp)
		}
	})

	t.Run("config post", func(t *testing.T) {
		resp, err := api.Do(ctx, http.MethodPost, "/api/v1/config", map[string]any{"maximum_lag_on_failover": 2 << 20}, nil)
		if err != nil || resp.Code != http.StatusOK {
			t.Fatalf("POST /api/v1/config: %v %+v", err, resp)
		}
		cfg, err := api.Config(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if got, _ := cfg.Doc["maximum_lag_on_failover"].(json.Number); got.String() != "2097152" {
			t.Errorf("config after POST: %v", cfg.Doc)
		}
	})

	t.Run("switchover", func(t *testing.T) {
		resp, err := api.Do(ctx, http.MethodPost, "/api/v1/cluster/switchover?wait=true&timeout=50s",
			client.SwitchoverRequest{Leader: p.Name, Candidate: r.Name}, nil)
		if err != nil || resp.Code != http.StatusOK {
			t.Fatalf("switchover: %v %+v", err, resp)
		}
		var j client.Job
		if err := json.Unmarshal(resp.Body, &j); err != nil || j.State != client.JobSucceeded {
			t.Fatalf("job %+v (%v)", j, err)
		}
		if np := c.WaitPrimary(60 * time.Second); np != r {
			t.Fatalf("primary %s, want %s", np.Name, r.Name)
		}
	})

	t.Run("degraded when the replica stops", func(t *testing.T) {
		c.WaitReplicas(120 * time.Second)
		if err := p.Stop(); err != nil { // p is the replica now
			t.Fatal(err)
		}
		leader := client.New([]string{r.APIURL()}, client.Options{})
		testenv.Eventually(t, 60*time.Second, 250*time.Millisecond, func() error {
			h, err := leader.ClusterHealth(ctx)
			if err != nil {
				return err
			}
			// While it stops it is listed as such; once stopped its record is gone and the
			// leader has no replica left.
			for _, r := range h.Reasons {
				if h.Status == client.HealthDegraded && strings.HasPrefix(r.Reason, "no replica streams from the leader") {
					return nil
				}
			}
			return fmt.Errorf("health %+v", h)
		})
	})
}

// readJSON reads url and decodes its JSON answer, which must have the status code want.
func readJSON(t *testing.T, url string, want int, v any) {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != want {
		t.Fatalf("GET %s: %s, want %d", url, resp.Status, want)
	}
	if err := json.NewDecoder(resp.Body).Decode(v); err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
}
