package daemon

// This file: a new cluster (bootstrap, initialize) and new members (clone).

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"os"
	"strconv"

	"github.com/ramd-project/ramd/consul"
	"github.com/ramd-project/ramd/daemon/pg"
)

// bootstrap races for the initialize key, then creates the cluster.
func (n *Node) bootstrap(ctx context.Context) error {
	cctx, cancel := context.WithTimeout(ctx, n.timings().RetryTimeout)
	err := n.store.CAS(cctx, consul.KeyInitialize, nil, 0)
	cancel()
	if errors.Is(err, consul.ErrConflict) {
		n.logger.Info("another node won the bootstrap race")
		return nil
	}
	if err != nil {
		return fmt.Errorf("race for initialize: %w", err)
	}
	n.initializeMine = true
	n.setState("initializing new cluster")
	if err := n.createCluster(ctx); err != nil {
		// Give the race back so another node (or a retry) can bootstrap.
		dctx, dcancel := context.WithTimeout(context.WithoutCancel(ctx), n.timings().RetryTimeout)
		defer dcancel()
		_ = n.store.Delete(dctx, consul.KeyInitialize)
		n.initializeMine = false
		return err
	}
	return nil
}

func (n *Node) createCluster(ctx context.Context) error {
	bctx, cancel := context.WithTimeout(ctx, startTimeout)
	defer cancel()
	if err := n.pg.Initdb(bctx); err != nil {
		return fmt.Errorf("initdb: %w", err)
	}
	if _, err := n.pg.WriteConfig(n.primarySettings()); err != nil {
		return fmt.Errorf("write config: %w", err)
	}
	if err := n.startPG(bctx); err != nil {
		return err
	}
	if err := n.pg.EnsureRoles(bctx); err != nil {
		return fmt.Errorf("create roles: %w", err)
	}
	st, err := n.pg.Status(bctx)
	if err != nil {
		return fmt.Errorf("status after initdb: %w", err)
	}
	if err := n.takeLock(ctx, ""); err != nil {
		return err
	}
	cctx, ccancel := context.WithTimeout(ctx, n.timings().RetryTimeout)
	defer ccancel()
	p, err := n.store.Get(cctx, consul.KeyInitialize, true)
	if err != nil {
		return fmt.Errorf("read initialize: %w", err)
	}
	if err := n.store.CAS(cctx, consul.KeyInitialize, []byte(strconv.FormatUint(st.SystemID, 10)), p.ModifyIndex); err != nil {
		return fmt.Errorf("record system identifier: %w", err)
	}
	n.initializeMine = false
	n.logger.Info("cluster bootstrapped", "system_id", st.SystemID)
	// Publish the defaults in force as the dynamic configuration, as Patroni does at
	// bootstrap (tools such as patronictl expect the key). Create-only: a configuration an
	// operator wrote beforehand wins.
	if err := n.store.CAS(cctx, consul.KeyConfig, bootstrapDocument(n.cfg), 0); err != nil && !errors.Is(err, consul.ErrConflict) {
		n.logger.Warn("write initial dynamic configuration", "err", err)
	}
	return nil
}

func (n *Node) claimInitialize(ctx context.Context, o *observation) error {
	if o.in.PG.SystemID == 0 {
		return errors.New("unknown local system identifier")
	}
	cctx, cancel := context.WithTimeout(ctx, n.timings().RetryTimeout)
	defer cancel()
	err := n.store.CAS(cctx, consul.KeyInitialize, []byte(strconv.FormatUint(o.in.PG.SystemID, 10)), 0)
	if errors.Is(err, consul.ErrConflict) {
		return nil
	}
	return err
}

// memberConn returns how to reach a member's PostgreSQL with this node's credentials.
func (n *Node) memberConn(name string, replication bool) (pg.ConnParams, error) {
	m, ok := n.members[name]
	if !ok || m.ConnURL == "" {
		return pg.ConnParams{}, fmt.Errorf("member %s has no conn_url: %w", name, errNotPublished)
	}
	u, err := url.Parse(m.ConnURL)
	if err != nil {
		return pg.ConnParams{}, fmt.Errorf("member %s conn_url: %w", name, err)
	}
	port, _ := strconv.Atoi(u.Port())
	base := n.pg.LocalConn()
	if replication {
		base = n.pg.ReplicationConn()
	}
	base.Host, base.Port = u.Hostname(), port
	return base, nil
}

func (n *Node) clone(ctx context.Context, leader string) error {
	src := leader
	if cf := n.cloneSource(); cf != "" && !n.pgMem.cloneFromLeader {
		src = cf
	}
	conn, err := n.memberConn(src, true)
	if err != nil {
		return err
	}
	n.setState("creating replica")
	n.logger.Info("cloning", "from", src)
	cctx, cancel := context.WithTimeout(ctx, cloneTimeout)
	defer cancel()
	if err := n.pg.Basebackup(cctx, conn, ""); err != nil {
		return fmt.Errorf("clone from %s: %w", src, err)
	}
	return nil
}

// cloneSource is a running replica tagged clonefrom, to spare the primary.
func (n *Node) cloneSource() string {
	for name, m := range n.members {
		if name == n.cfg.Name || m.Role != string(RoleReplica) || m.State != "running" {
			continue
		}
		if b, ok := m.Tags["clonefrom"].(bool); ok && b {
			return name
		}
	}
	return ""
}

func (n *Node) removeDataDir() error {
	dir := n.pg.Config().DataDir
	n.logger.Warn("removing the data directory to clone it again", "data_dir", dir)
	if err := os.RemoveAll(dir); err != nil {
		return fmt.Errorf("remove data dir: %w", err)
	}
	return nil
}
