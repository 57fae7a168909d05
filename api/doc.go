// Package api is ramd's REST API on port 8008: Patroni's health contract answered from the
// HA loop's cached status, and the admin endpoints. Handlers never drive PostgreSQL.
package api
