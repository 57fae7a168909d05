// Package routing decides what clients see in Consul: the service definition of a node's
// PostgreSQL endpoint, its tags and meta per role, and its health check. Computing the wanted
// registration is pure; applying it is an idempotent reconcile through package consul.
package routing
