// Package daemon is the node agent: the Node type owns the local PostgreSQL (through
// daemon/pg), runs the HA loop (observe, ha.Decide, act) in one goroutine, keeps the Consul
// session and publishes an immutable Status after every cycle. Other goroutines only wake the
// loop; they never change the node's role or touch the leader key.
package daemon
