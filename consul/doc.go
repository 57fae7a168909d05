// Package consul owns every network call ramd makes to Consul: sessions, the leader lock,
// the typed KV store in Patroni's key layout (<namespace>/<scope>/...), blocking-query
// watches and the agent's service calls.
//
// Invariants:
//   - sessions are created explicitly with Behavior=delete, no health checks and a tiny
//     lock delay; the session is a backstop, not the failure detector;
//   - every write that decides something is a CAS (or a session acquire);
//   - errors are translated at this edge: ErrConflict (CAS or acquire lost), ErrSessionLost,
//     ErrNotFound, ErrUnavailable; nothing outside this package inspects api errors.
package consul
