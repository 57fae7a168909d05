// Package faults runs ramd the way production runs it and breaks the network under it:
// three hosts in network namespaces, each with a Consul client agent, a ramd and its
// PostgreSQL; three Consul servers in namespaces of their own; the test process as the
// client on the same bridge, running a writer that records every attempt and a prober
// that samples every node. Faults are caused (a host cut off, a Consul server leader
// killed, latency on a link), and each scenario ends with test/history's checker.
//
// The tests need root and network namespaces; elsewhere they skip (and fail under
// RAMD_TEST_REQUIRE_REAL=1). `make test` runs each scenario once; `make chaos` repeats
// them RAMD_CHAOS_RUNS times (default 20) and prints a table.
package faults
