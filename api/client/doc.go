// Package client is ramd's REST API contract as Go types and a typed client: the request and
// response documents of the routes ramctrl and other tools use (jobs, the cluster and member
// views, the sync view, the dynamic configuration, history, the operations and the error
// body), and a Client that sends them to a list of members.
//
// The server in package api marshals these same types, so what a client decodes is what the
// server wrote. The package imports the standard library only: a tool can use it without gin,
// Consul or the daemon.
package client
