// Package fence stops a primary's PostgreSQL at its fencing deadline even when ramd itself is
// frozen (SIGSTOP, a long GC pause, a hung call) or dead.
//
// ramd runs a guard process (cmd/ramd-fence next to the ramd binary, else the same binary as
// "ramd fence-guard") in its own process group
// and tells it, after every successful leader heartbeat, the absolute CLOCK_MONOTONIC
// deadline S + TTL - FenceMargin. If the deadline passes without a new one, the guard kills
// the postmaster and each of its children with SIGKILL (PostgreSQL's children are not in the
// postmaster's process group): no backend can acknowledge another commit.
// CLOCK_MONOTONIC is shared by every process of a host, so the deadline means the same
// instant to both. The guard outlives ramd: if ramd dies while armed, the guard still fires
// at the deadline, then exits.
package fence
