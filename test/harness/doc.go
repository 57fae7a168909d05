// Package harness runs real ramd clusters for integration tests: it builds the ramd binary,
// starts nodes as processes against a real Consul agent with real PostgreSQL, injects faults
// (SIGKILL, SIGSTOP, SIGTERM) and checks invariants throughout: at most one node accepts
// writes at any moment, and which acknowledged rows survived.
package harness
