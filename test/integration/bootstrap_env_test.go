package integration

import (
	"context"
	"fmt"
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
