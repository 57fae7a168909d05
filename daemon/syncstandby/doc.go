// Package syncstandby decides the synchronous standbys of a primary: what PostgreSQL must
// enforce (synchronous_standby_names, FIRST k or ANY k) and what the sync key publishes (the
// members that may be promoted without losing an acknowledged commit, and how many of them a
// candidate must compare with). It is pure: no I/O, no clock.
//
// The invariant every step keeps: for every set of standbys that can have acknowledged a
// commit under what PostgreSQL enforces (now or since the last change whose WAL has not
// reached the new standbys), every set a candidate may compare with contains one of them.
// Publish only what PostgreSQL already enforces: narrow the sync key before PostgreSQL,
// widen PostgreSQL before the sync key, and publish an added standby only after it flushed
// past the primary's position at the change.
package syncstandby
