// Package dynconf owns the schema of the cluster's dynamic configuration (the config key in
// Consul): every key ramd reads, its type, default, range and who applies it, and the one
// validator that every entry point uses (PATCH and PUT /config, /api/v1/config, the sync
// endpoints, ramctrl, the bootstrap defaults, and the loop when it reads the key).
//
// Invariants:
//   - A key is either in the schema, refused as a Patroni key ramd does not implement (with
//     a hint), or refused as unknown. Nothing is stored and then ignored.
//   - Validation collects every refusal (sorted by field), so a user sees all of them at once.
//   - The timings (ttl, loop_wait, retry_timeout, fence_margin) are checked together with
//     the fencing inequality of daemon/ha; a key left out takes the built-in default, the
//     same on every member, never a member's own environment.
//
// The package is pure: no I/O, no clock.
package dynconf
