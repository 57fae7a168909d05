package daemon

// This file: a new cluster (bootstrap, initialize) and new members (clone).

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"time"

	"github.com/ramd-project/ramd/consul"
	"github.com/ramd-project/ramd/daemon/backup"
	"github.com/ramd-project/ramd/daemon/dynconf"
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
	doc, seed, err := n.cfg.BootstrapDocument()
	if err != nil {
		return err
	}
	bctx, cancel := context.WithTimeout(ctx, startTimeout)
	defer cancel()
	if seed.Bootstrap != nil && seed.Bootstrap.Method == dynconf.BootstrapBackup {
		if err := n.restoreCluster(ctx, seed); err != nil {
			return err
		}
	} else {
		if err := n.pg.Initdb(bctx); err != nil {
			return fmt.Errorf("initdb: %w", err)
		}
		if _, err := n.pg.WriteConfig(n.primarySettings()); err != nil {
			return fmt.Errorf("write config: %w", err)
		}
		if err := n.startPG(bctx, nil); err != nil {
			return err
		}
	}
	if err := n.pg.EnsureRoles(bctx); err != nil {
		return fmt.Errorf("create roles: %w", err)
	}
	st, err := n.pg.Status(bctx)
	if err != nil {
		return fmt.Errorf("status after initdb: %w", err)
	}
	if err := n.takeLock(ctx, "", takeoverBasis{}); err != nil {
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
	if err := n.store.CAS(cctx, consul.KeyConfig, seedDocument(n.cfg, doc), 0); err != nil && !errors.Is(err, consul.ErrConflict) {
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
	base = n.pg.ForMember(base)
	return base, nil
}

// clone creates this replica's data directory with the configured replica creation
// methods in order (pg_basebackup from the leader unless the backup configuration says
// otherwise); a reinitialize from the leader always uses pg_basebackup.
func (n *Node) clone(ctx context.Context, leader string) error {
	methods := []string{dynconf.ReplicaBasebackup}
	if _, _, cfg, err := n.currentTool(); err == nil && !n.pgMem.cloneFromLeader {
		methods = cfg.ReplicaMethodsValue()
	}
	var errs []error
	for _, m := range methods {
		var err error
		if m == dynconf.ReplicaBackup {
			err = n.cloneFromBackup(ctx)
		} else {
			err = n.cloneBasebackup(ctx, leader)
		}
		if err == nil {
			// A clone the in-place restore asked for from the leader is done; later clones
			// follow the configured methods again (a reinitialize resets it when it ends).
			n.ops.mu.Lock()
			n.pgMem.cloneFromLeader = n.pgMem.cloneFromLeader && n.ops.op != nil
			n.ops.mu.Unlock()
			return nil
		}
		errs = append(errs, err)
		if ctx.Err() != nil {
			break
		}
		n.logger.Warn("replica creation method failed", "method", m, "err", err)
	}
	return errors.Join(errs...)
}

// cloneFromBackup restores the latest backup as a standby (the archive brings it close to
// the leader, then it streams). The copy archives with this node's own command.
func (n *Node) cloneFromBackup(ctx context.Context) error {
	tool, m, _, err := n.currentTool()
	if err != nil {
		return err
	}
	n.setState("creating replica from backup")
	n.logger.Info("creating the replica from the latest backup", "tool", tool.Name())
	cctx, cancel := context.WithTimeout(ctx, cloneTimeout)
	defer cancel()
	created, err := n.pg.PrepareRestore()
	if err != nil {
		return err
	}
	start := time.Now()
	if err := tool.Restore(cctx, backup.RestoreRequest{Member: m, Standby: true}, nil); err != nil {
		if aerr := n.pg.AbortRestore(created); aerr != nil {
			n.logger.Warn("remove a failed restore", "err", aerr)
		}
		return fmt.Errorf("restore the latest %s backup: %w", tool.Name(), err)
	}
	removed, err := n.pg.FinishRestore(false)
	if err != nil {
		return err
	}
	n.logger.Info("replica created from backup", "tool", tool.Name(), "took", time.Since(start).Round(time.Millisecond), "reset", removed)
	return nil
}

func (n *Node) cloneBasebackup(ctx context.Context, leader string) error {
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

// seedDocument is the configuration a new cluster starts with: the defaults of
// bootstrapDocument (with the environment's timings and synchronous settings) overridden by
// RAMD_BOOTSTRAP_CONFIG's document (doc may be nil).
func seedDocument(c Config, doc map[string]any) []byte {
	if doc == nil {
		return bootstrapDocument(c)
	}
	var base map[string]any
	_ = json.Unmarshal(bootstrapDocument(c), &base)
	maps.Copy(base, doc)
	b, _ := json.Marshal(base)
	return b
}

// promoteWait is how often a restored server is asked whether its recovery ended.
const promoteWait = time.Second

// restoreCluster creates the data directory from another cluster's backup (to the end of
// its archive or to the recovery target), starts it and waits until its recovery ended and
// it promoted itself. The tool's recovery settings are taken out afterwards, and the copy
// archives with the new cluster's own tool (its own stanza or server).
// The restore is recorded as a job (kind restore) with its phases, to follow from any member.
func (n *Node) restoreCluster(ctx context.Context, seed dynconf.Config) (err error) {
	b := seed.Bootstrap
	src, err := backup.New(*b.From, n.pg)
	if err != nil {
		return err
	}
	target := b.Target.Type
	if b.Target.Value != "" {
		target += " " + b.Target.Value
	}
	id := n.jobs.recordJob(ctx, consul.Job{Kind: consul.JobRestoreKind, From: n.cfg.Name,
		Backup: &consul.JobBackup{Tool: src.Name(), Label: b.BackupID, Type: "restore to " + cmp.Or(target, "end")}})
	phase := func(p string) { n.jobs.phase(ctx, id, p, "", "") }
	defer func() {
		if err != nil {
			n.jobs.phase(context.WithoutCancel(ctx), id, "failed", consul.JobFailed, err.Error())
		} else {
			n.jobs.phase(context.WithoutCancel(ctx), id, "succeeded", consul.JobSucceeded, "")
		}
	}()
	m := n.backupMember()
	m.StateDir = filepath.Join(m.StateDir, "source")
	rctx, cancel := context.WithTimeout(ctx, cloneTimeout)
	defer cancel()
	if err := src.Configure(rctx, m); err != nil {
		return fmt.Errorf("configure the source repository: %w", err)
	}
	created, err := n.pg.PrepareRestore()
	if err != nil {
		return err
	}
	n.setState("restoring a backup")
	phase("restoring on " + n.cfg.Name)
	n.logger.Info("bootstrapping from a backup", "tool", src.Name(), "backup", b.BackupID, "target", b.Target.Type, "value", b.Target.Value)
	start := time.Now()
	req := backup.RestoreRequest{Member: m, BackupID: b.BackupID,
		Target: backup.Target{Type: b.Target.Type, Value: b.Target.Value, Exclusive: b.Target.Exclusive}}
	if err := src.Restore(rctx, req, nil); err != nil {
		if aerr := n.pg.AbortRestore(created); aerr != nil {
			n.logger.Warn("remove a failed restore", "err", aerr)
		}
		return fmt.Errorf("restore from %s: %w", src.Name(), err)
	}
	if _, err := n.pg.FinishRestore(true); err != nil {
		return err
	}
	if seed.Backup != nil {
		n.configureBackups(rctx, seed.Backup, backupSignature(seed.Backup))
	}
	if _, err := n.pg.WriteConfig(n.primarySettings()); err != nil {
		return fmt.Errorf("write config: %w", err)
	}
	if err := n.startPG(rctx, nil); err != nil {
		return err
	}
	n.setState("recovering to the target")
	phase("recovering to the target")
	for {
		st, err := n.pg.Status(rctx)
		if err == nil && st.Running && !st.InRecovery {
			break
		}
		if !n.pg.Running() {
			return errors.Join(errors.New("the restored server stopped during its recovery (target not reached?); see the PostgreSQL log"), err)
		}
		select {
		case <-rctx.Done():
			return fmt.Errorf("wait for the end of recovery: %w", rctx.Err())
		case <-time.After(promoteWait):
		}
	}
	removed, err := n.pg.ClearRecoverySettings()
	if err != nil {
		return err
	}
	if err := n.pg.Reload(rctx); err != nil {
		return fmt.Errorf("reload after the recovery: %w", err)
	}
	n.logger.Info("bootstrapped from a backup", "tool", src.Name(), "took", time.Since(start).Round(time.Millisecond), "reset", removed)
	return nil
}
