package routing

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/hashicorp/consul/api"

	"github.com/ramd-project/ramd/consul"
)

const (
	// positionRefresh bounds how often the WAL position meta (lsn, lag_bytes) is refreshed
	// on its own: each refresh is a re-registration, which the agent syncs to the servers;
	// every 30 s keeps a busy cluster's meta useful for dashboards at two writes a minute.
	positionRefresh = 30 * time.Second
	// clusterResync is how often the leader re-reads the prepared queries and config entries
	// (reads that go to the Consul servers, unlike the local agent reads done every cycle).
	// A query or entry deleted or edited by hand is repaired within this long; a new leader
	// checks them at once.
	clusterResync = 10 * time.Second
	// clusterRetry is how soon a failed check of the cluster-wide objects is tried again:
	// soon enough that a new leader's queries exist within seconds after a hiccup, rare
	// enough that a refused write (a token without query:write) is not sent every cycle.
	clusterRetry = 2 * time.Second
	// localResync is how often the registration is read back from the local agent while
	// what ramd wants registered has not changed. A registration deleted by hand or lost with
	// an agent restart takes its check along, so the next check update (every ttl/2 at
	// most) reports it gone and it is registered again at once; one edited by hand is
	// repaired within this long.
	localResync = 10 * time.Second
)

// Registrar keeps one node's registration equal to what is wanted (anti-entropy), and, on
// the leader, the cluster-wide prepared queries and mesh config entries. Loop goroutine only.
type Registrar struct {
	cfg    Config
	client *consul.Client

	// Loop goroutine only.
	last         Registration // last registration applied, for MarkCritical
	registered   bool         // registered at least once by this process
	registeredAt time.Time
	fedStatus    string // status and output of the last check update
	fedOutput    string
	fedAt        time.Time
	calledAt     time.Time         // last Reconcile
	gap          time.Duration     // decaying maximum of the time between two Reconciles
	leading      bool              // the previous reconcile ran as leader
	clusterAt    time.Time         // last check of the cluster-wide objects
	failures     int               // consecutive failed reconciles
	seen         *api.AgentService // the registration as last read from the agent (nil: read next time)
	seenAt       time.Time
}

// NewRegistrar returns a registrar. The TTL of the role check comes with each Want
// (Want.CheckTTL): a node whose loop stops feeding it drops out of every DNS name within it.
func NewRegistrar(cfg Config, client *consul.Client) *Registrar {
	return &Registrar{cfg: cfg, client: client}
}

// Failures returns how many reconciles in a row have failed (0 after a success), so the
// caller can log when routing starts failing rather than every cycle.
func (r *Registrar) Failures() int { return r.failures }

// Reconcile makes Consul show want: it re-registers the service when the registration
// differs from want or is gone (deleted by hand, lost with an agent restart), then feeds
// the TTL check when its status changes and often enough that the next feed comes within
// half the TTL (the liveness signal: a node that stops calling this drops out of every name
// within ttl). On the leader it also keeps the prepared queries and, with the mesh on, the
// config entries current. Idempotent: when nothing changed it makes one local read every
// localResync and a check update about every ttl/2 or every cycle, whichever is rarer, and
// no catalog or KV write.
func (r *Registrar) Reconcile(ctx context.Context, want Want) error {
	r.observeGap(time.Now())
	want.WasLagging = r.registered && want.Role == RoleReplica && slices.Contains(r.last.Service.Tags, TagLagging)
	reg := Build(r.cfg, want)
	err := r.reconcileService(ctx, reg)
	if want.Leader {
		err = errors.Join(err, r.reconcileCluster(ctx, r.cfg.Service(want.Scope)))
	}
	r.leading = want.Leader
	if err != nil {
		r.failures++
		return err
	}
	r.failures = 0
	return nil
}

func (r *Registrar) reconcileService(ctx context.Context, reg Registration) error {
	id := reg.Service.ID
	// The agent is read back when what ramd wants differs from what it last saw there, and
	// every localResync otherwise: not every cycle.
	have, read := r.seen, false
	if !r.registered || have == nil || !SameService(have, reg.Service) || time.Since(r.seenAt) >= localResync {
		var err error
		have, err = r.client.LocalService(ctx, id)
		if err != nil && !errors.Is(err, consul.ErrNotFound) {
			r.seen = nil
			return fmt.Errorf("read registration %s: %w", id, err)
		}
		r.seen, r.seenAt, read = have, time.Now(), true
	}
	stale := !r.registered || !SameService(have, reg.Service) ||
		(!SamePositions(have, reg.Service) && time.Since(r.registeredAt) >= positionRefresh)
	if !stale && read && reg.SidecarID != "" {
		if _, err := r.client.LocalService(ctx, reg.SidecarID); errors.Is(err, consul.ErrNotFound) {
			stale = true
		}
	}
	if stale {
		if !r.registered && reg.SidecarID == "" {
			// The mesh may have been on in an earlier run: its sidecar would linger.
			if err := r.client.DeregisterService(ctx, SidecarID(id)); err != nil {
				return fmt.Errorf("remove sidecar of %s: %w", id, err)
			}
		}
		r.seen = nil // read what the agent made of it next time
		if err := r.client.RegisterService(ctx, reg.Service); err != nil {
			return fmt.Errorf("register %s: %w", id, err)
		}
		r.registered, r.registeredAt = true, time.Now()
	}
	r.last = reg
	// Feed the check when its status or text changes, and otherwise skip a cycle only when
	// the next one (judged by the longest recent gap between cycles) still comes within half
	// the TTL of the last feed: a replica is woken by every leader heartbeat and may cycle
	// twice a second, while the agent needs one feed per TTL. A loop that stops (frozen, dead)
	// stops feeding, so the check still goes critical within ttl of the last feed.
	if !stale && reg.CheckStatus == r.fedStatus && reg.CheckOutput == r.fedOutput && time.Since(r.fedAt)+r.gap < reg.CheckTTL/2 {
		return nil
	}
	if err := r.client.UpdateTTL(ctx, reg.CheckID, reg.CheckOutput, reg.CheckStatus); err != nil {
		if errors.Is(err, consul.ErrNotFound) {
			r.registered, r.seen = false, nil // the check is gone: register again next cycle
		}
		r.fedAt = time.Time{}
		return fmt.Errorf("update check %s: %w", reg.CheckID, err)
	}
	r.fedStatus, r.fedOutput, r.fedAt = reg.CheckStatus, reg.CheckOutput, time.Now()
	return nil
}

// observeGap tracks a decaying maximum of the time between two Reconciles: it jumps to a
// longer gap at once (a long action, a slow Consul) and forgets it slowly.
func (r *Registrar) observeGap(now time.Time) {
	if !r.calledAt.IsZero() {
		if g := now.Sub(r.calledAt); g > r.gap {
			r.gap = g
		} else {
			r.gap -= (r.gap - g) / 8
		}
	}
	r.calledAt = now
}

// reconcileCluster keeps the prepared queries and config entries of service equal to what
// BuildQueries and BuildConfigEntries say: read, compare, write only on a difference. It runs
// when this node has just become leader and then every clusterResync.
func (r *Registrar) reconcileCluster(ctx context.Context, service string) error {
	if r.leading && time.Since(r.clusterAt) < clusterResync {
		return nil
	}
	r.clusterAt = time.Now()
	var errs []error
	for _, want := range BuildQueries(r.cfg, service) {
		errs = append(errs, r.reconcileQuery(ctx, want))
	}
	if r.cfg.Mesh {
		for _, want := range BuildConfigEntries(service) {
			errs = append(errs, r.reconcileEntry(ctx, want))
		}
	}
	if err := errors.Join(errs...); err != nil {
		r.clusterAt = r.clusterAt.Add(clusterRetry - clusterResync)
		return err
	}
	return nil
}

func (r *Registrar) reconcileQuery(ctx context.Context, want *api.PreparedQueryDefinition) error {
	have, err := r.client.PreparedQuery(ctx, want.Name)
	switch {
	case errors.Is(err, consul.ErrNotFound):
	case err != nil:
		return err
	case SameQuery(have, want):
		return nil
	default:
		next := *want
		next.ID = have.ID
		want = &next
	}
	if _, err := r.client.PutPreparedQuery(ctx, want); err != nil {
		return err
	}
	return nil
}

func (r *Registrar) reconcileEntry(ctx context.Context, want api.ConfigEntry) error {
	have, err := r.client.ConfigEntry(ctx, want.GetKind(), want.GetName())
	var index uint64
	switch {
	case errors.Is(err, consul.ErrNotFound):
		have = nil
	case err != nil:
		return err
	default:
		index = have.GetModifyIndex()
	}
	next, changed := MergeConfigEntry(have, want)
	if !changed {
		return nil
	}
	return r.client.CASConfigEntry(ctx, next, index)
}

// MarkCritical fails the role check at once (before fencing or a switchover), so DNS stops
// naming this node before anyone else is announced.
func (r *Registrar) MarkCritical(ctx context.Context, why string) error {
	if r.last.CheckID == "" {
		return nil
	}
	r.fedAt = time.Time{} // whatever happens, the next reconcile feeds the check again
	if err := r.client.UpdateTTL(ctx, r.last.CheckID, why, api.HealthCritical); err != nil {
		return fmt.Errorf("fail check %s: %w", r.last.CheckID, err)
	}
	r.fedStatus, r.fedOutput = api.HealthCritical, why
	return nil
}

// Deregister removes the node's registration and its sidecar (clean shutdown). The
// prepared queries and config entries stay: they belong to the cluster, not the node.
func (r *Registrar) Deregister(ctx context.Context, scope, node string) error {
	id := ServiceID(r.cfg.Service(scope), node)
	if err := r.client.DeregisterService(ctx, id); err != nil {
		return fmt.Errorf("deregister: %w", err)
	}
	r.registered = false
	return nil
}
