package main

import (
	"github.com/ramd-project/ramd/api"
	"github.com/ramd-project/ramd/daemon"
)

// The node agent serves every route group of the API: a method whose signature drifts from
// the interface the API declares fails the build here instead of dropping its routes.
var (
	_ api.Node        = (*daemon.Node)(nil)
	_ api.Admin       = (*daemon.Node)(nil)
	_ api.JobLister   = (*daemon.Node)(nil)
	_ api.SyncAdmin   = (*daemon.Node)(nil)
	_ api.ConfigAdmin = (*daemon.Node)(nil)
	_ api.OpsAdmin    = (*daemon.Node)(nil)
	_ api.ParamAdmin  = (*daemon.Node)(nil)
	_ api.BackupAdmin = (*daemon.Node)(nil)
)

// routes wires every route group of the API to the node agent.
func routes(n *daemon.Node) api.Routes {
	return api.Routes{Node: n, Admin: n, Jobs: n, Sync: n, Config: n, Ops: n, Params: n, Backups: n}
}
