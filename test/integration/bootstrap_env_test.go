package integration

import (
	"context"
	"fmt"
	"syscall"
	"testing"
	"time"

	"github.com/ramd-project/ramd/api/client"
	"github.com/ramd-project/ramd/test/harness"
	"github.com/ramd-project/ramd/test/testenv"
)

// TestBootstrapSyncFromEnvironment: RAMD_SYNCHRONOUS_MODE and RAMD_SYNCHRONOUS_NODE_COUNT of
// the bootstrapping member go into the configuration it writes, and the leader applies them:
// its replica becomes a synchronous standby without any API call.
func TestBootstrapSyncFromEnvironment(t *testing.T) {
	t.Parallel()
	addr := needReal(t)
	c := harness.New(t, ramdBin, addr, 2, harness.Options{Env: map[string]string{
		"RAMD_SYNCHRONOUS_MODE": "on", "RAMD_SYNCHRONOUS_NODE_COUNT": "1",
	}})
	c.StartAll()
	p := c.WaitPrimary(120 * time.Second)
	c.WaitReplicas(120 * time.Second)
	api := client.New([]string{p.APIURL()}, client.Options{})
	cfg, err := api.Config(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Doc["synchronous_mode"] != true || fmt.Sprint(cfg.Doc["synchronous_node_count"]) != "1" {
		t.Errorf("bootstrap configuration %v", cfg.Doc)
	}
	testenv.Eventually(t, 60*time.Second, 250*time.Millisecond, func() error {
		n, err := p.QueryInt(context.Background(), "SELECT count(*) FROM pg_stat_replication WHERE sync_state = 'sync'")
		if err != nil || n != 1 {
			return fmt.Errorf("%d synchronous standbys (%w)", n, err)
		}
		return nil
	})
}

// TestSyncWholeClusterRestart: a cluster in synchronous mode stopped as a whole and started
// again elects a leader (the one the sync key names, or one of its synchronous standbys) and
// keeps every row written before the stop.
func TestSyncWholeClusterRestart(t *testing.T) {
	t.Parallel()
	addr := needReal(t)
	c := harness.New(t, ramdBin, addr, 3, harness.Options{Env: map[string]string{
		"RAMD_SYNCHRONOUS_MODE": "on", "RAMD_SYNCHRONOUS_NODE_COUNT": "1",
	}})
	c.StartAll()
	p := c.WaitPrimary(120 * time.Second)
	c.WaitReplicas(120 * time.Second)
	ctx := context.Background()
	testenv.Eventually(t, 60*time.Second, 250*time.Millisecond, func() error {
		n, err := p.QueryInt(ctx, "SELECT count(*) FROM pg_stat_replication WHERE sync_state = 'sync'")
		if err != nil || n != 1 {
			return fmt.Errorf("%d synchronous standbys (%w)", n, err)
		}
		return nil
	})
	if err := p.Exec(ctx, "CREATE TABLE kept (v int); INSERT INTO kept SELECT generate_series(1, 100)"); err != nil {
		t.Fatal(err)
	}
	for _, n := range c.Nodes {
		n.Signal(syscall.SIGTERM)
	}
	for _, n := range c.Nodes {
		if err := n.Stop(); err != nil {
			t.Fatal(err)
		}
	}
	c.StartAll()
	q := c.WaitPrimary(90 * time.Second)
	if n, err := q.QueryInt(ctx, "SELECT count(*) FROM kept"); err != nil || n != 100 {
		t.Fatalf("rows after the restart on %s: %d (%v)", q.Name, n, err)
	}
	t.Logf("restarted in synchronous mode: %s leads (%s did before)", q.Name, p.Name)
}
