// Package history checks what a fault scenario did against what ramd promises. It is pure:
// a scenario's writer records every write attempt as an Op (node, start, end, outcome, id),
// a prober records the timelines and primaries it saw, the test reads the rows present on
// the final primary and the history key, and Check proves or refutes:
//
//   - no acknowledged write is lost (every OK id is present on the final primary; in
//     asynchronous mode the loss is counted, not failed), and no write reported as failed
//     is present;
//   - at no instant were two nodes writable, judged from acknowledged writes alone (see
//     Overlaps for the exact rule);
//   - timelines only grow, per node and for the cluster's primary;
//   - the history key lists every change of primary that was observed.
//
// It does no I/O and reads no clock, so its table tests cover histories that must pass and
// histories that must fail.
package history
