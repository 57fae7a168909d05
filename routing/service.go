package routing

import (
	"maps"
	"slices"
	"strconv"
	"time"

	"github.com/hashicorp/consul/api"
)

// Role is the node's role as routing sees it.
type Role string

// Roles that change what clients see.
const (
	RolePrimary Role = "primary"
	RoleReplica Role = "replica"
	// RoleStandbyLeader is reserved for the leader of a standby cluster (none exist yet).
	RoleStandbyLeader Role = "standby-leader"
	// RoleNone is a node that serves nothing: stopped, fencing, demoted, bootstrapping. It
	// keeps its registration (no role tag) with a critical check.
	RoleNone Role = "none"
)

// SyncState is a replica's replication mode as published in the sync key.
type SyncState string

// Sync states. A primary and a node without a role have SyncNone.
const (
	SyncNone   SyncState = ""
	SyncSync   SyncState = "sync"   // named in the sync key, synchronous_standby_names FIRST n
	SyncQuorum SyncState = "quorum" // named in the sync key with quorum > 0 (ANY n)
	SyncAsync  SyncState = "async"  // streaming, not synchronous
)

// Tags ramd sets from the node's state. Users cannot set them (Config.Validate).
const (
	TagPrimary = "primary"
	// TagMaster is TagPrimary under the name old clients and Patroni-era templates use.
	TagMaster        = "master"
	TagReplica       = "replica"
	TagStandbyLeader = "standby-leader"
	TagSync          = "sync"
	TagQuorum        = "quorum"
	TagAsync         = "async"
	// TagLagging marks a replica whose replay lag is over ReplicaMaxLag: it is not in the
	// read pool (no TagReplica) but keeps its sync state tag.
	TagLagging = "lagging"
	// TagNoLoadBalance marks a node with Patroni's noloadbalance tag: never in the read pool.
	TagNoLoadBalance = "noloadbalance"
)

// Meta keys of a registration. Consul's filter expressions (resolver subsets, the health
// API's ?filter=) select on them as Service.Meta.<key>.
const (
	MetaNode      = "node"
	MetaRole      = "role"
	MetaTimeline  = "timeline"
	MetaLSN       = "lsn"
	MetaLagBytes  = "lag_bytes"
	MetaSyncState = "sync_state"
	// MetaAPIURL is the member's REST API: health checkers built from the catalog (e.g.
	// consul-template writing an HAProxy configuration) and ramctrl find it there.
	MetaAPIURL = "api_url"
	// MetaTLS is "required" when the member's PostgreSQL accepts TCP connections over TLS
	// only (hostssl lines); absent otherwise.
	MetaTLS = "tls"
)

// TLSRequired is the value of MetaTLS on members that accept TLS connections only.
const TLSRequired = "required"

// positionMeta are the meta keys that move with every write on the primary. They are
// refreshed with any other change, and on their own at most every positionRefresh, so a
// busy cluster does not re-register every cycle.
var positionMeta = []string{MetaLSN, MetaLagBytes}

// Want is the wanted publication of one node, derived from the loop's status.
type Want struct {
	Scope   string
	Node    string
	Address string // "" lets Consul use the agent's node address
	Port    int
	Role    Role
	// Healthy is true when the role is really true right now: a primary holds the lock and
	// accepts writes; a replica runs and streams.
	Healthy bool
	// Leader is true on the node holding the leader lock: it keeps the cluster-wide objects
	// (prepared queries, mesh config entries) current.
	Leader bool
	// SyncState is the replica's replication mode (SyncNone on a primary).
	SyncState SyncState
	// NoLoadBalance is Patroni's noloadbalance member tag: never in the read pool.
	NoLoadBalance bool
	Timeline      int
	// LSN is the node's WAL position: written on a primary, received or replayed on a
	// replica.
	LSN uint64
	// LagBytes is a replica's replay lag behind the leader's last published position: what
	// a read on it misses.
	LagBytes uint64
	// Output is the check's text, saying why it passes or fails.
	Output string
	// APIURL is the member's REST API, published in the service meta.
	APIURL string
	// TLS is true when the member's PostgreSQL accepts TCP connections over TLS only.
	TLS bool
	// WasLagging is true when the replica was last registered as lagging: it returns to the
	// read pool only once its lag is back under half the limit, so a replica hovering at the
	// limit does not flap in and out of DNS (the registrar sets it).
	WasLagging bool
	// CheckTTL is the TTL of the check (DefaultCheckTTL when 0). The loop sets it to the
	// fencing window of the timings in force (TTL - fence margin after its last heartbeat): a dead
	// primary's check then expires no later than it would have fenced itself, before any
	// replica may race; and the fencing inequality already makes every healthy loop cycle
	// within it.
	CheckTTL time.Duration
}

// Registration is what a node registers in Consul and the state of its TTL check.
type Registration struct {
	Service     *api.AgentServiceRegistration
	CheckID     string
	CheckStatus string
	CheckOutput string
	// CheckTTL is the TTL of the check: the node must feed it at least this often.
	CheckTTL time.Duration
	// SidecarID is the ID of the Connect sidecar the agent creates with the service ("" when
	// the mesh is off).
	SidecarID string
}

// ServiceID is the node's service instance id.
func ServiceID(service, node string) string { return service + "-" + node }

// SidecarID is the ID Consul gives the sidecar registered with service instance id.
func SidecarID(id string) string { return id + "-sidecar-proxy" }

// CheckID is the ID of the TTL check of service instance id.
func CheckID(id string) string { return "service:" + id }

// InReadPool reports whether want belongs in the read pool (replica.<svc>): a replica that
// is not tagged noloadbalance and is not lagging. Health is the check's business, not this.
func InReadPool(want Want, maxLag uint64) bool {
	return want.Role == RoleReplica && !want.NoLoadBalance && !Lagging(want, maxLag)
}

// Lagging reports whether a replica's replay lag keeps it out of the read pool: over maxLag
// (0: no limit), or, when it was lagging already, over half of maxLag (hysteresis).
func Lagging(want Want, maxLag uint64) bool {
	if maxLag == 0 {
		return false
	}
	if want.WasLagging {
		return want.LagBytes > maxLag/2
	}
	return want.LagBytes > maxLag
}

// Tags returns the sorted tags of want: the user's extra tags, then the role's.
//
//	primary         primary, master
//	standby-leader  standby-leader
//	replica         its sync state (sync, quorum or async), plus replica when in the read
//	                pool, lagging when over the lag limit, noloadbalance when tagged so
//	none            nothing but the user's tags
func Tags(cfg Config, want Want) []string {
	tags := slices.Clone(cfg.ServiceTags)
	switch want.Role {
	case RolePrimary:
		tags = append(tags, TagPrimary, TagMaster)
	case RoleStandbyLeader:
		tags = append(tags, TagStandbyLeader)
	case RoleReplica:
		if want.SyncState != SyncNone {
			tags = append(tags, string(want.SyncState))
		}
		if InReadPool(want, cfg.ReplicaMaxLag) {
			tags = append(tags, TagReplica)
		}
		if Lagging(want, cfg.ReplicaMaxLag) {
			tags = append(tags, TagLagging)
		}
	}
	if want.NoLoadBalance && want.Role != RoleNone {
		tags = append(tags, TagNoLoadBalance)
	}
	slices.Sort(tags)
	return slices.Compact(tags)
}

// DefaultCheckTTL is the check's TTL when Want.CheckTTL is 0: the fencing window of the
// default timings (ttl 3s - fence margin 1s) would be 2s; 3s is the default ttl, so a caller
// that sets nothing is never stricter than the loop.
const DefaultCheckTTL = 3 * time.Second

// Build computes the registration for want. Pure.
func Build(cfg Config, want Want) Registration {
	ttl := want.CheckTTL
	if ttl <= 0 {
		ttl = DefaultCheckTTL
	}
	name := cfg.Service(want.Scope)
	id := ServiceID(name, want.Node)
	status := api.HealthCritical
	if want.Healthy && want.Role != RoleNone {
		status = api.HealthPassing
	}
	meta := map[string]string{
		MetaNode:     want.Node,
		MetaRole:     string(want.Role),
		MetaTimeline: strconv.Itoa(want.Timeline),
		MetaLSN:      strconv.FormatUint(want.LSN, 10),
		MetaLagBytes: strconv.FormatUint(want.LagBytes, 10),
	}
	if want.SyncState != SyncNone {
		meta[MetaSyncState] = string(want.SyncState)
	}
	if want.APIURL != "" {
		meta[MetaAPIURL] = want.APIURL
	}
	if want.TLS {
		meta[MetaTLS] = TLSRequired
	}
	reg := Registration{
		Service: &api.AgentServiceRegistration{
			ID:      id,
			Name:    name,
			Address: want.Address,
			Port:    want.Port,
			Tags:    Tags(cfg, want),
			Meta:    meta,
			Check: &api.AgentServiceCheck{
				CheckID:                        CheckID(id),
				Name:                           "ramd: PostgreSQL " + string(want.Role),
				TTL:                            ttl.String(),
				Status:                         status,
				DeregisterCriticalServiceAfter: cfg.DeregisterAfter.String(),
			},
		},
		CheckID:     CheckID(id),
		CheckStatus: status,
		CheckOutput: want.Output,
		CheckTTL:    ttl,
	}
	if cfg.Mesh {
		// The agent derives the sidecar (ID, port, tags and meta) from the parent; the
		// resolver subsets filter the sidecars on the inherited meta and tags.
		reg.Service.Connect = &api.AgentServiceConnect{SidecarService: &api.AgentServiceRegistration{}}
		reg.SidecarID = SidecarID(id)
	}
	return reg
}

// SameService reports whether the registered service already matches the wanted one
// (name, address, port, tags, and meta other than the WAL positions), so the reconcile
// re-registers only on a difference.
func SameService(have *api.AgentService, want *api.AgentServiceRegistration) bool {
	if have == nil || want == nil {
		return false
	}
	if have.ID != want.ID || have.Service != want.Name || have.Address != want.Address || have.Port != want.Port {
		return false
	}
	ht := slices.Clone(have.Tags)
	slices.Sort(ht)
	if !slices.Equal(ht, want.Tags) {
		return false
	}
	return maps.Equal(withoutPositions(have.Meta), withoutPositions(want.Meta))
}

// SamePositions reports whether the registered WAL position meta equals the wanted.
func SamePositions(have *api.AgentService, want *api.AgentServiceRegistration) bool {
	if have == nil || want == nil {
		return false
	}
	for _, k := range positionMeta {
		if have.Meta[k] != want.Meta[k] {
			return false
		}
	}
	return true
}

func withoutPositions(m map[string]string) map[string]string {
	out := make(map[string]string, len(m))
	for k, v := range m {
		if !slices.Contains(positionMeta, k) {
			out[k] = v
		}
	}
	return out
}
