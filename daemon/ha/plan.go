package ha

import "strings"

// Kind is the kind of an action. The strings read well in logs and metrics labels.
type Kind string

// Action kinds, in the order they typically appear in a plan.
const (
	// ActBootstrap races for the initialize key (CAS from 0), runs initdb, starts PostgreSQL
	// as primary, takes the leader lock and records the system identifier.
	ActBootstrap Kind = "bootstrap"
	// ActClaimInitialize writes the initialize key from an existing data directory (Consul was
	// wiped or the cluster predates ramd).
	ActClaimInitialize Kind = "claim_initialize"
	// ActClone copies the data directory from Target with pg_basebackup.
	ActClone Kind = "clone"
	// ActReclone removes the data directory and clones it again from Target.
	ActReclone Kind = "reclone"
	// ActRewind runs pg_rewind against Target.
	ActRewind Kind = "rewind"
	// ActStartReplica starts PostgreSQL as a standby of Target.
	ActStartReplica Kind = "start_replica"
	// ActFollow points a running standby at Target (primary_conninfo + reload).
	ActFollow Kind = "follow"
	// ActHeartbeat renews the session, re-acquires the leader key and publishes the optime;
	// success moves the fencing deadline.
	ActHeartbeat Kind = "heartbeat"
	// ActFailsafe asks every member to confirm this leader directly while Consul is away.
	ActFailsafe Kind = "failsafe"
	// ActStartPrimary restarts the leader's PostgreSQL in place after a crash.
	ActStartPrimary Kind = "start_primary"
	// ActAcquire takes the leader key, first destroying Session (a dead leader's) when set.
	ActAcquire Kind = "acquire"
	// ActPromote replays what was received, promotes and records history.
	ActPromote Kind = "promote"
	// ActSwitchover hands the lock to Target: checkpoint, stop cleanly, wait until Target
	// received everything, release.
	ActSwitchover Kind = "switchover"
	// ActRejectSwitchover drops a switchover request that cannot be carried out.
	ActRejectSwitchover Kind = "reject_switchover"
	// ActFence stops PostgreSQL now: this node may no longer take writes.
	ActFence Kind = "fence"
	// ActRelease stops PostgreSQL if needed and releases the leader key.
	ActRelease Kind = "release"
	// ActFenceUnresponsive kills a leader's PostgreSQL that stopped answering (postmaster
	// and every child, SIGKILL, which also reaches a stopped process), waits until they are
	// gone, and only then releases the leader key.
	ActFenceUnresponsive Kind = "fence_unresponsive"
	// ActSyncStandbys takes one step toward the wanted synchronous standbys (sync key and
	// synchronous_standby_names, in the order that keeps the guarantee).
	ActSyncStandbys Kind = "sync_standbys"
)

// Action is one step of a plan.
type Action struct {
	Kind Kind
	// Target is the member the action is about (clone source, leader to follow, switchover
	// candidate).
	Target string
	// Session is the session to destroy before acquiring (a dead leader's).
	Session string
}

// Plan is what a node must do this cycle, in order. The act step stops at the first failure.
type Plan struct {
	Actions []Action
	// Reason says in plain words why, for logs, spans and the API.
	Reason string
}

// Has reports whether the plan contains an action of kind k.
func (p Plan) Has(k Kind) bool {
	for _, a := range p.Actions {
		if a.Kind == k {
			return true
		}
	}
	return false
}

// String renders the plan compactly for logs: "acquire,promote: leader n1 is gone".
func (p Plan) String() string {
	kinds := make([]string, 0, len(p.Actions))
	for _, a := range p.Actions {
		s := string(a.Kind)
		if a.Target != "" {
			s += "(" + a.Target + ")"
		}
		kinds = append(kinds, s)
	}
	if len(kinds) == 0 {
		return "idle: " + p.Reason
	}
	return strings.Join(kinds, ",") + ": " + p.Reason
}

func plan(reason string, actions ...Action) Plan { return Plan{Actions: actions, Reason: reason} }

func act(k Kind) Action                  { return Action{Kind: k} }
func actOn(k Kind, target string) Action { return Action{Kind: k, Target: target} }
