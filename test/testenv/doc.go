// Package testenv starts real Consul agents and prepares real PostgreSQL servers for tests:
// free loopback ports, one key prefix per test, and cleanup of every process by pid. It imports
// no ramd package. When a binary is missing the test skips, unless RAMD_TEST_REQUIRE_REAL=1,
// when it fails instead.
//
// For fault tests it also builds networks of hosts in network namespaces (NewNet: a bridge in
// a namespace of its own, veth links, addresses in 10.213.0.0/16), runs a Consul datacenter
// of servers and client agents inside them (StartConsulNet), and cuts, shapes and heals their
// links (Cut, CutOneWay, Isolate, Loss, Delay, Netem, Heal). Delay adds latency without the
// kernel's netem, with a relay in the test process between a host's veth end and a TAP
// device that takes its place on the bridge. Everything it creates is removed in
// t.Cleanup, and what a crashed run left is removed by the next one.
package testenv
