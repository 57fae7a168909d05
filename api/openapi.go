package api

import (
	"net/http"
	"sort"
	"strings"

	"github.com/gin-gonic/gin"
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
	{http.MethodGet, "/api/v1/jobs/{id}", "A switchover or failover job: phases with timestamps and the outcome."},
	{http.MethodGet, "/api/v1/sync-standbys", "Synchronous mode, count, commit level and the published synchronous standbys with positions."},
	{http.MethodPut, "/api/v1/sync-standbys", "Change synchronous settings {synchronous_mode, synchronous_node_count, synchronous_mode_strict, synchronous_commit}; 400 names the field, 409 on a concurrent change."},
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
	for _, base := range []string{"", "/api/v1"} {
		for _, d := range configDocs {
			out = append(out, routeDoc{d.Method, base + d.Path, d.Summary})
		}
	}
	return out
}

// openAPIDocument builds the OpenAPI 3 document.
func openAPIDocument() map[string]any {
	paths := map[string]any{}
	docs := allDocs()
	sort.SliceStable(docs, func(i, j int) bool { return docs[i].Path < docs[j].Path })
	for _, d := range docs {
		item, _ := paths[d.Path].(map[string]any)
		if item == nil {
			item = map[string]any{}
			paths[d.Path] = item
		}
		op := map[string]any{
			"summary":   d.Summary,
			"responses": map[string]any{"200": map[string]any{"description": "OK"}, "default": map[string]any{"description": "an error: JSON {error, detail, field} or plain text"}},
		}
		if strings.Contains(d.Path, "{id}") {
			op["parameters"] = []any{map[string]any{"name": "id", "in": "path", "required": true, "schema": map[string]any{"type": "string"}}}
		}
		item[strings.ToLower(d.Method)] = op
	}
	return map[string]any{
		"openapi": "3.0.3",
		"info":    map[string]any{"title": "ramd REST API", "version": "1"},
		"paths":   paths,
	}
}

func serveOpenAPI(r *gin.Engine) {
	doc := openAPIDocument()
	r.GET("/api/v1/openapi.json", func(c *gin.Context) { c.JSON(http.StatusOK, doc) })
}
