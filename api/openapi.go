package api

import (
	"encoding/json"
	"net/http"
	"sort"
	"strings"
	"sync"

	"github.com/gin-gonic/gin"
	"github.com/ramd-project/ramd/api/client"
)

// routeDoc documents one route of the API. TestOpenAPIMatchesRoutes keeps this table equal to
// the routes Gin has registered, in both directions.
type routeDoc struct {
	Method, Path, Summary string
}

var adminDocs = []routeDoc{
	{http.MethodGet, "/patroni", "This node's status (Patroni's document plus a ramd object)."},
	{http.MethodGet, "/cluster", "The members as this node sees them (Patroni's shape)."},
	{http.MethodGet, "/metrics", "Prometheus metrics (patroni_* and ramd_*)."},
	{http.MethodPost, "/failsafe", "A leader confirms itself directly while Consul is away (between ramd nodes)."},
	{http.MethodPost, "/switchover", "Planned switchover {leader, candidate?, scheduled_at?}; 200 when done, 202 when scheduled, with the job id in X-Ramd-Job-Id."},
	{http.MethodDelete, "/switchover", "Cancel a pending switchover: 200, 404 when none, 409 on a concurrent change."},
	{http.MethodPost, "/failover", "Manual failover {candidate, allow_data_loss?}; a switchover when a leader lives."},
	{http.MethodGet, "/api/v1/jobs/{id}", "A job (switchover, failover, restart, reinitialize, rolling-restart): phases with timestamps and the outcome; ?wait=true&timeout=30s blocks until it ends."},
	{http.MethodGet, "/api/v1/jobs", "The tracked jobs, newest first (finished ones are kept 7 days, at most 200)."},
	{http.MethodGet, "/api/v1/cluster", "Cluster status: leader, timeline, pause, synchronous standbys, members waiting for a restart, members with roles and lag."},
	{http.MethodPost, "/api/v1/switchover", "Switchover as a job {leader, candidate?, scheduled_at?}: 202 {job_id, job_url}; ?wait=true answers the finished job (200)."},
	{http.MethodDelete, "/api/v1/switchover", "Cancel a pending switchover: 200, 404 when none, 409 on a concurrent change."},
	{http.MethodPost, "/api/v1/failover", "Failover as a job {candidate, allow_data_loss?}: 202 {job_id, job_url}; ?wait=true as for switchover."},
	{http.MethodPost, "/api/v1/pause", "Pause automatic failover, fencing and restarts cluster-wide."},
	{http.MethodPost, "/api/v1/resume", "Resume automatic operation."},
	{http.MethodPost, "/restart", "Restart this node's PostgreSQL {schedule?, role?, postgres_version?, timeout?, restart_pending?}: 200 restarted, 202 scheduled, 503 conditions not met or failed, 409 already scheduled."},
	{http.MethodDelete, "/restart", "Delete the scheduled restart: 200, 404 when none."},
	{http.MethodPost, "/reload", "Reload this node's PostgreSQL configuration (SIGHUP): 202."},
	{http.MethodPost, "/reinitialize", "Wipe and clone this replica again {force?, from_leader?}: 200 started, 503 with the reason (never on the leader)."},
	{http.MethodPost, "/api/v1/restart", "Rolling restart of the cluster as a job {restart_pending?, in_place?}: replicas one by one, a switchover, then the old primary."},
	{http.MethodPost, "/api/v1/reinitialize", "Reinitialize this replica as a job {force?, from_leader?}: 202 {job_id, job_url}, 409 on the leader or when busy."},
	{http.MethodGet, "/api/v1/sync-standbys", "Synchronous mode, count, commit level and the published synchronous standbys with positions."},
	{http.MethodPut, "/api/v1/sync-standbys", "Change synchronous settings {synchronous_mode, synchronous_node_count, synchronous_mode_strict, synchronous_commit}; 400 names the field, 409 on a concurrent change."},
	{http.MethodGet, "/api/v1/parameters", "The PostgreSQL parameter catalog of this node's server version: name, context, type, unit, range, enum values, whether a change needs a restart."},
	{http.MethodGet, "/api/v1/parameter/list", "The parameter catalog (the same as /api/v1/parameters)."},
	{http.MethodGet, "/api/v1/parameters/{name}", "One parameter of the catalog; 404 with PostgreSQL's wording when the version has no such parameter."},
	{http.MethodGet, "/api/v1/parameter/info/{name}", "One parameter (the same as /api/v1/parameters/{name})."},
	{http.MethodPost, "/api/v1/parameters/validate", "Judge {parameters: {name: value}} without storing it: each value as the installed server would (its own message), and ramd's rules across parameters and the node's memory; 200 with warnings, 422 with the refusals."},
	{http.MethodPost, "/api/v1/parameter/validate", "The same as /api/v1/parameters/validate."},
	{http.MethodPost, "/api/v1/parameters/tune", "Tuning advice {workload?, memory_bytes?, cpus?, storage?, max_connections?} (defaults from the node): each suggestion with the value in force and a reason, and the validator's verdict on the set."},
	{http.MethodPost, "/api/v1/parameter/optimize", "The same as /api/v1/parameters/tune."},
	{http.MethodGet, "/api/v1/cluster/status", "The same as /api/v1/cluster (the seed project's path)."},
	{http.MethodGet, "/api/v1/cluster/health", "One verdict over every member: healthy, degraded (200) or unhealthy (503), with the reasons per member (leader not running, replica stopped, not streaming or past maximum_lag_on_failover, maintenance mode, failsafe, synchronous replication degraded)."},
	{http.MethodGet, "/api/v1/cluster/metrics", "Cluster figures as JSON: each replica's lag in bytes and seconds, this node's connections and transaction rates (pg_stat_database), the leader's replication slots, the number of failovers and the last one."},
	{http.MethodPost, "/api/v1/cluster/switchover", "The same as POST /api/v1/switchover (the seed project's path)."},
	{http.MethodPost, "/api/v1/config", "The same as PATCH /api/v1/config: a JSON merge patch (the seed project's spelling)."},
	{http.MethodGet, "/api/v1/sync-standbys/status", "The same as GET /api/v1/sync-standbys (the seed project's path)."},
	{http.MethodPost, "/api/v1/sync-standbys/add", "Keep one more synchronous standby (synchronous_node_count + 1; turns synchronous_mode on with 1 when off); {} or no body. ramd picks which members (streaming, not tagged nosync)."},
	{http.MethodPost, "/api/v1/sync-standbys/remove", "Keep one fewer synchronous standby (synchronous_node_count - 1; turns synchronous_mode off after the last); 422 when it is already off."},
	{http.MethodPost, "/api/v1/sync-standbys/any-n", "Quorum commit on n standbys {n}: synchronous_mode quorum, synchronous_node_count n (ANY n)."},
	{http.MethodGet, "/api/v1/openapi.json", "This document."},
}

// configDocs are served at / and under /api/v1.
var configDocs = []routeDoc{
	{http.MethodGet, "/config", "The dynamic configuration; the ETag is its Consul index."},
	{http.MethodPatch, "/config", "JSON merge patch (null deletes a key); If-Match makes it a compare-and-set (409)."},
	{http.MethodPut, "/config", "Replace the dynamic configuration; If-Match as for PATCH."},
	{http.MethodGet, "/history", "Failover history: [[timeline, lsn, reason, timestamp, new_leader], ...]."},
}

// allDocs lists every documented route.
func allDocs() []routeDoc {
	var out []routeDoc
	for _, p := range healthPaths {
		for _, m := range []string{http.MethodGet, http.MethodHead, http.MethodOptions} {
			out = append(out, routeDoc{m, p, "Patroni health check: 200 or 503 (HEAD and OPTIONS answer a bare status line)."})
		}
	}
	for _, p := range probePaths {
		for _, m := range []string{http.MethodGet, http.MethodHead, http.MethodOptions} {
			out = append(out, routeDoc{m, p, "Orchestrator probe: a bare status line, 200 or 503."})
		}
	}
	out = append(out, adminDocs...)
	out = append(out, backupDocs...)
	for _, base := range []string{"", "/api/v1"} {
		for _, d := range configDocs {
			out = append(out, routeDoc{d.Method, base + d.Path, d.Summary})
		}
	}
	return out
}

// openAPIDocument builds the OpenAPI 3 document: every route with its request and response
// schemas, made from the Go types the handlers read and write (routeIO).
func openAPIDocument() map[string]any {
	paths := map[string]any{}
	docs := allDocs()
	sort.SliceStable(docs, func(i, j int) bool { return docs[i].Path < docs[j].Path })
	s := &schemas{components: map[string]any{}}
	for _, d := range docs {
		item, _ := paths[d.Path].(map[string]any)
		if item == nil {
			item = map[string]any{}
			paths[d.Path] = item
		}
		op := s.operation(d)
		for _, name := range []string{"id", "name", "type"} {
			if strings.Contains(d.Path, "{"+name+"}") {
				op["parameters"] = []any{map[string]any{"name": name, "in": "path", "required": true, "schema": map[string]any{"type": "string"}}}
			}
		}
		item[strings.ToLower(d.Method)] = op
	}
	// The backup object of the dynamic configuration (PATCH /config {"backup": ...}).
	s.components["BackupConfig"] = backupConfigSchema()
	return map[string]any{
		"openapi":    "3.0.3",
		"info":       map[string]any{"title": "ramd REST API", "version": "1"},
		"paths":      paths,
		"components": map[string]any{"schemas": s.components},
	}
}

// serveOpenAPI serves the document, built and encoded on the first request and kept as bytes:
// the document's maps are over a megabyte of heap that an idle node has no use for.
func serveOpenAPI(r *gin.Engine) {
	encoded := sync.OnceValues(func() ([]byte, error) { return json.Marshal(openAPIDocument()) })
	r.GET("/api/v1/openapi.json", func(c *gin.Context) {
		b, err := encoded()
		if err != nil {
			c.JSON(http.StatusInternalServerError, client.ErrorBody{Error: "encode the OpenAPI document", Detail: err.Error()})
			return
		}
		c.Data(http.StatusOK, "application/json; charset=utf-8", b)
	})
}
