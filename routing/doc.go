// Package routing decides what clients see in Consul: the service definition of a node's
// PostgreSQL endpoint, its tags and meta per role, its health check, the prepared queries
// and the service-mesh config entries. Computing what is wanted is pure (Build, Tags,
// BuildQueries, BuildConfigEntries, the Same*/Merge* comparisons); applying it is an
// idempotent reconcile through package consul (Registrar). docs/ROUTING.md explains the
// names and why they are built this way.
//
// Invariants:
//   - a node carries the primary tag with a passing check only while it holds the leader
//     lock and accepts writes; the check is fed by the HA loop every cycle, so a dead or
//     frozen node drops out of every name within the check's TTL;
//   - the read pool (tag replica) excludes replicas over the lag limit and noloadbalance
//     ones by tag, not by check, so they keep their sync-state names;
//   - a reconcile that finds Consul as wanted writes nothing but the TTL check update;
//   - cluster-wide objects (prepared queries, config entries) are written by the leader
//     only, after a read and a comparison.
package routing
