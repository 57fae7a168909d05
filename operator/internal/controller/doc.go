// Package controller reconciles PostgreSQLCluster resources. It renders the objects a
// cluster needs (build.go: pure functions of the resource), writes them with owner
// references (reconciler.go), and reads ramd's REST API to fill the status and to label the
// pods by role, which the primary and replica Services select on (members.go).
//
// The operator deploys and observes; it never decides who is primary. ramd elects the leader
// through Consul as on hosts, and the operator follows what ramd reports.
package controller
