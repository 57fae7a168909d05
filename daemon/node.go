package daemon

import (
	"context"
	"crypto/tls"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/ramd-project/ramd/consul"
	"github.com/ramd-project/ramd/daemon/fence"
	"github.com/ramd-project/ramd/daemon/ha"
	"github.com/ramd-project/ramd/daemon/pg"
	"github.com/ramd-project/ramd/routing"
)

// Version is ramd's version, published in member records, /patroni (Patroni's version field
// and the ramd object) and metrics. Builds stamp it with -ldflags "-X
// github.com/ramd-project/ramd/daemon.Version=..." from scripts/version.sh (make build, the
// image); an unstamped build says it is a development build of the base version.
var Version = "0.1.0-dev"

// Node is the node agent. Run owns all state below "loop goroutine only".
type Node struct {
	cfg      Config
	pg       *pg.Instance
	consul   *consul.Client
	store    *consul.Store
	guard    *fence.Guard
	registry *routing.Registrar
	logger   *slog.Logger
	connURL  string
	// peers are the client and credentials of calls to other members' APIs (peers.go).
	peers peers
	// tel receives spans and metrics (telemetry.go).
	tel *telemetry
	// jobs records the cluster's jobs (jobs.go).
	jobs *jobBook
	// tasks owns the goroutines that outlive a request or a cycle (tasks.go).
	tasks *tasks

	status atomic.Pointer[Status]
	wake   chan struct{}
	// tim holds the HA timings in force (the cluster's configuration, see dynconfig.go);
	// written by the loop, read anywhere through timings().
	tim atomic.Pointer[ha.Timings]
	// leading is true while this node holds the lock; the status watcher reads it so the
	// leader is not woken by its own heartbeats.
	leading atomic.Bool

	// confirm is the last direct confirmation from a leader (failsafe), written by the API.
	confirm confirmation

	// ops is the local operations' state, with its own lock (localop.go).
	ops     localOps
	rolling atomic.Bool // this node coordinates a rolling restart

	// rotation holds the passwords an operator asked to rotate to, until the loop applied
	// them (passwords.go).
	rotation atomic.Pointer[pg.Passwords]

	// Loop goroutine only.
	session string
	// sessionRenewed is when the session was last created or renewed (fence clock), 0 to
	// renew at the next cycle (observe.go).
	sessionRenewed atomic.Int64
	// lead is the memory of the leader between cycles, lock this node's own lock (ha).
	lead           ha.Leadership
	lock           ha.Lock
	initializeMine bool
	members        map[string]consul.Member
	badRecords     map[string]uint64 // undecodable records reported, by key: their index (records.go)
	knownSystemID  uint64            // the cluster's system identifier last read from initialize
	// fenceAt is the fencing deadline of the lock's last confirmation on the fence clock,
	// set by confirmed (the loop) and read by Status (the API): the moment the guard fires.
	fenceAt atomic.Int64
	// historyPending is this leader's promotion entry that the history key does not hold yet
	// (its write failed); retried every cycle while the lock is held (lead.go).
	historyPending *consul.HistoryEntry
	// tlSwitch is the last line of this primary's timeline history file, read once per
	// timeline when the history key lacked its entry (recordTimeline, lead.go).
	tlSwitch struct {
		timeline int
		pg.TimelineSwitch
	}
	slotsGoneSince map[string]time.Time
	lastPlan       string
	lastRole       Role
	dcsLastSeen    time.Time
	heartbeats     uint64
	failsafeActive bool
	// failsafeFailed: the last failsafe round failed and no confirmation came since.
	failsafeFailed bool
	state          string
	memberWritten  memberWrite
	conf           configState
	syncMem        syncMemory
	pgMem          pgMemory
	// paramsApplied is the parameter set last written and reloaded, paramErrors what the
	// server skipped then (parameters.go).
	paramsApplied string
	paramErrors   []string

	// xactSeen is the last reading of the transaction counters, for the rates in Status;
	// slots the leader's replication slots as maintainSlots last read them.
	xactSeen xactReading
	slots    []Slot

	// paramCat is the local server's parameter catalog, loaded once (parameters.go).
	paramCat paramCatalog
	// bk is the backup tool, its jobs and schedules, and the archive facts for failovers.
	bk backups
}

// confirmation is the last direct confirmation a leader sent this node while Consul was away
// (failsafe): it counts as a heartbeat seen at that moment (ha.Leadership.ConfirmedBy).
type confirmation struct {
	mu   sync.Mutex // guards from, at and takeover
	from string
	at   time.Duration
	// takeover is the session of the leader this node is taking over from ("" when none):
	// set by the loop before its claim (claimTakeover); no leader is confirmed meanwhile.
	takeover string
}

// Deps are what a Node works with, given once to New.
type Deps struct {
	PG     *pg.Instance
	Consul *consul.Client
	// Guard is the fence guard (nil: none, in tests that never lead).
	Guard *fence.Guard
	// Registrar publishes the node's service in Consul (nil: no registration).
	Registrar *routing.Registrar
	Logger    *slog.Logger
	// Telemetry receives spans and metrics (nil: nothing is recorded).
	Telemetry *Telemetry
	// PeerAuth are the credentials the node's mutating calls to other members' APIs
	// (failsafe confirmations) carry; every member shares them.
	PeerAuth PeerAuth
	// PeerTLS is used for calls to other members' APIs: the CAs trusted and the client
	// certificate presented (nil: plain HTTP or the system pool).
	PeerTLS *tls.Config
}

// PeerAuth are API credentials: a bearer token, or a user and password.
type PeerAuth struct {
	User, Password, Token string
}

// New wires a node. Nothing is started until Run.
func New(cfg Config, d Deps) *Node {
	logger := d.Logger
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	pc := d.PG.Config()
	host := pc.ConnectAddr
	if host == "" {
		host = pc.ListenAddr
	}
	n := &Node{
		cfg:            cfg,
		pg:             d.PG,
		consul:         d.Consul,
		store:          d.Consul.Store(cfg.Namespace, cfg.Scope),
		guard:          d.Guard,
		registry:       d.Registrar,
		logger:         logger.With("node", cfg.Name, "cluster", cfg.Scope),
		connURL:        connURL(host, pc.Port, pc.TLSEnabled()),
		wake:           make(chan struct{}, 1),
		members:        map[string]consul.Member{},
		slotsGoneSince: map[string]time.Time{},
		tasks:          newTasks(),
	}
	n.peers.cur.Store(newPeerClient(d.PeerAuth, d.PeerTLS))
	n.setTelemetry(d.Telemetry)
	n.jobs = &jobBook{store: n.store, node: cfg.Name, logger: n.logger, timeout: func() time.Duration { return n.timings().RetryTimeout },
		onPhase: n.tracePhase}
	return n
}

// maxProbeTimeout bounds every request to another member's API whatever the timings.
const maxProbeTimeout = 5 * time.Second

// probeTimeout bounds a direct request to another member's API: a frozen member must not
// stall a cycle for long.
func probeTimeout(t ha.Timings) time.Duration { return min(t.LoopWait/2, 500*time.Millisecond) }

// Status returns the last published snapshot (nil before the first cycle).
//
// The snapshot is read as of now: a leader's snapshot past its fencing deadline (the loop
// blocked in a Consul call while the fence guard stopped PostgreSQL) no longer holds the
// lock, so health checks stop sending writes to this node at the deadline rather than at
// the loop's next publish, seconds later.
//
// So is its PostgreSQL: a postmaster gone since the snapshot (killed by the fence guard, or
// crashed) is reported stopped at once, not at the next publish. A leader behind a slow
// link whose guard fenced it and whose next heartbeat then got through kept answering role
// primary with no server behind it.
func (n *Node) Status() *Status {
	alive := n.pg == nil || n.pg.PID() != 0
	return statusAsOf(n.status.Load(), fence.Now(), time.Duration(n.fenceAt.Load()), alive)
}

// statusAsOf returns st, or a copy without the lock when the fencing deadline of the last
// confirmation (fenceAt, on the fence clock; 0 when none) has passed at now: the moment the
// fence guard stops PostgreSQL. A primary's copy says demoted and stopped as well: its loop,
// blocked in a Consul call that hangs, may publish that only seconds later, and meanwhile
// /patroni answered role primary on the old timeline while a new primary served (found
// again by the isolate-primary fault scenario under load: the prober saw the two alternate).
//
// A snapshot saying PostgreSQL runs while its postmaster is gone (pgAlive false) says
// stopped, a primary's demoted.
func statusAsOf(st *Status, now, fenceAt time.Duration, pgAlive bool) *Status {
	if st == nil {
		return nil
	}
	fenced := st.HasLock && fenceAt != 0 && now >= fenceAt
	gone := st.PGRunning && !pgAlive
	if !fenced && !gone {
		return st
	}
	c := *st
	if fenced {
		c.HasLock, c.Leader = false, ""
	}
	if c.Role == RolePrimary {
		c.Role = RoleDemoted
	}
	if fenced && st.Role == RolePrimary || gone {
		c.State, c.PGRunning = "stopped", false
	}
	return &c
}

// Wake asks the loop to run a cycle now. Never blocks.
func (n *Node) Wake() {
	select {
	case n.wake <- struct{}{}:
	default:
	}
}

// ConfirmLeader records a direct confirmation from the leader (failsafe): it counts as a
// heartbeat seen now. It reports whether name is the leader this node knows; a node taking
// over from a leader confirms none.
func (n *Node) ConfirmLeader(name string) bool {
	n.confirm.mu.Lock()
	defer n.confirm.mu.Unlock()
	st := n.Status()
	if st == nil || (st.Leader != "" && st.Leader != name) || n.confirm.takeover != "" {
		return false
	}
	n.confirm.from, n.confirm.at = name, fence.Now()
	return true
}

// Run is the HA loop: one cycle every LoopWait or when woken, until ctx ends; then it stops
// cleanly (handing over the lock when primary) and returns.
func (n *Node) Run(ctx context.Context) error {
	n.startCatalog()
	t := n.timings()
	n.logger.Info("starting", "ttl", t.TTL, "loop_wait", t.LoopWait, "fence_after", t.FenceAfter())
	watchCtx, stopWatch := context.WithCancel(ctx)
	var wg sync.WaitGroup
	for _, key := range []string{consul.KeyLeader, consul.KeyStatus} {
		wg.Add(1)
		go func() { defer wg.Done(); n.watchKey(watchCtx, key) }()
	}
	defer func() { stopWatch(); wg.Wait() }()

	timer := time.NewTimer(0)
	defer timer.Stop()
	for {
		select {
		case <-ctx.Done():
			return n.shutdown(context.WithoutCancel(ctx))
		case <-timer.C:
		case <-n.wake:
		}
		next := n.cycle(ctx)
		if !timer.Stop() {
			select {
			case <-timer.C:
			default:
			}
		}
		timer.Reset(next)
	}
}

// watchKey wakes the loop whenever key changes: the leader key (a release, a new leader) or
// the status key (each leader heartbeat), so replicas see heartbeats as they happen and
// switchovers are picked up at once.
func (n *Node) watchKey(ctx context.Context, key string) {
	var index uint64
	for i := 0; ctx.Err() == nil; i++ {
		if key == consul.KeyStatus && n.leading.Load() {
			// The leader writes the status key itself every cycle: watching it would only
			// bring back its own heartbeat. Look again after a loop_wait.
			index = 0
			select {
			case <-ctx.Done():
				return
			case <-time.After(n.timings().LoopWait):
			}
			continue
		}
		_, _, last, err := n.store.Watch(ctx, key, index, 30*time.Second)
		if err != nil {
			index = 0
			select {
			case <-ctx.Done():
				return
			case <-time.After(n.timings().LoopWait):
			}
			continue
		}
		if last != index {
			index = last
			if key == consul.KeyStatus && n.leading.Load() {
				continue // our own heartbeat
			}
			n.Wake()
		}
	}
}
