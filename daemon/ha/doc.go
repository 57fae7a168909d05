// Package ha is the HA decision: a pure function from what a node observed (Input) to what it
// must do (Plan). It imports only the standard library, never reads a clock or does I/O; the
// monotonic time arrives inside Input. The fencing and candidate arithmetic lives here.
package ha
