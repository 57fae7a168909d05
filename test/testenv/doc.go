// Package testenv starts real Consul agents and prepares real PostgreSQL servers for tests:
// free loopback ports, one key prefix per test, and cleanup of every process by pid. It imports
// no ramd package. When a binary is missing the test skips, unless RAMD_TEST_REQUIRE_REAL=1,
// when it fails instead.
package testenv
