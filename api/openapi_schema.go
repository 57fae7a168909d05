package api

import (
	"encoding/json"
	"net/http"
	"reflect"
	"strings"
	"time"

	"github.com/ramd-project/ramd/api/client"
)

// routeIO is what one route takes and answers on the wire: the Go types of its JSON request
// body and of its 2xx JSON answer (nil: none), or text for Patroni's plain-text answers.
// The OpenAPI document's schemas are made from these types, and TestOpenAPIBodiesMatch
// decodes the handlers' real answers into them, refusing unknown fields.
type routeIO struct {
	req, resp any
	text      bool
}

// freeForm is a JSON object of any shape (the dynamic configuration, this document).
type freeForm map[string]any

// textIO is a route that answers a line of text (Patroni's admin answers, status lines).
var textIO = routeIO{text: true}

// adminIO maps "METHOD path" of the routes of adminDocs, configDocs and the /api/v1 config
// routes to their bodies; the health and probe paths are filled in by ioOf.
var adminIO = map[string]routeIO{
	"GET /patroni": {resp: client.NodeStatus{}},
	"GET /cluster": {resp: client.Cluster{}},
	"GET /metrics": textIO,
	"POST /failsafe": {req: struct {
		Name string `json:"name"`
	}{}, text: true},
	"POST /switchover":                  {req: switchoverBody{}, text: true},
	"DELETE /switchover":                textIO,
	"POST /failover":                    {req: switchoverBody{}, text: true},
	"GET /api/v1/jobs/{id}":             {resp: client.Job{}},
	"GET /api/v1/jobs":                  {resp: []client.Job{}},
	"GET /api/v1/cluster":               {resp: client.ClusterStatus{}},
	"POST /api/v1/switchover":           {req: client.SwitchoverRequest{}, resp: client.JobAccepted{}},
	"DELETE /api/v1/switchover":         textIO,
	"POST /api/v1/failover":             {req: client.SwitchoverRequest{}, resp: client.JobAccepted{}},
	"POST /api/v1/pause":                {resp: client.Paused{}},
	"POST /api/v1/resume":               {resp: client.Paused{}},
	"POST /restart":                     {req: client.RestartRequest{}, text: true},
	"DELETE /restart":                   textIO,
	"POST /reload":                      textIO,
	"POST /reinitialize":                {req: client.ReinitializeRequest{}, text: true},
	"POST /api/v1/restart":              {req: client.RollingRestartRequest{}, resp: client.JobAccepted{}},
	"POST /api/v1/reinitialize":         {req: client.ReinitializeRequest{}, resp: client.JobAccepted{}},
	"GET /api/v1/sync-standbys":         {resp: client.SyncView{}},
	"PUT /api/v1/sync-standbys":         {req: client.SyncSettings{}, resp: client.SyncView{}},
	"GET /api/v1/parameters":            {resp: client.ParameterList{}},
	"GET /api/v1/parameter/list":        {resp: client.ParameterList{}},
	"GET /api/v1/parameters/{name}":     {resp: client.Parameter{}},
	"GET /api/v1/parameter/info/{name}": {resp: client.Parameter{}},
	"POST /api/v1/parameters/validate":  {req: client.ValidateParametersRequest{}, resp: client.ParameterReport{}},
	"POST /api/v1/parameter/validate":   {req: client.ValidateParametersRequest{}, resp: client.ParameterReport{}},
	"POST /api/v1/parameters/tune":      {req: client.TuneRequest{}, resp: client.TuneResult{}},
	"POST /api/v1/parameter/optimize":   {req: client.TuneRequest{}, resp: client.TuneResult{}},
	"GET /api/v1/openapi.json":          {resp: freeForm{}},
	"GET /api/v1/cluster/status":        {resp: client.ClusterStatus{}},
	"GET /api/v1/cluster/health":        {resp: client.ClusterHealth{}},
	"GET /api/v1/cluster/metrics":       {resp: client.ClusterMetrics{}},
	"POST /api/v1/cluster/switchover":   {req: client.SwitchoverRequest{}, resp: client.JobAccepted{}},
	"POST /api/v1/config":               {req: freeForm{}, resp: freeForm{}},
	"GET /api/v1/sync-standbys/status":  {resp: client.SyncView{}},
	"POST /api/v1/sync-standbys/add":    {req: client.SyncAddRemove{}, resp: client.SyncView{}},
	"POST /api/v1/sync-standbys/remove": {req: client.SyncAddRemove{}, resp: client.SyncView{}},
	"POST /api/v1/sync-standbys/any-n":  {req: client.SyncAnyN{}, resp: client.SyncView{}},
	"GET /config":                       {resp: freeForm{}},
	"PATCH /config":                     {req: freeForm{}, resp: freeForm{}},
	"PUT /config":                       {req: freeForm{}, resp: freeForm{}},
	"GET /history":                      {resp: []client.HistoryEntry{}},

	"POST /api/v1/backups":                     {req: client.BackupRequest{}, resp: client.JobAccepted{}},
	"POST /api/v1/backup/start":                {req: client.BackupRequest{}, resp: client.JobAccepted{}},
	"GET /api/v1/backups":                      {resp: client.BackupList{}},
	"GET /api/v1/backup/list":                  {resp: client.BackupList{}},
	"GET /api/v1/backups/{id}":                 {resp: client.BackupInfo{}},
	"POST /api/v1/backups/expire":              {resp: client.JobAccepted{}},
	"POST /api/v1/backups/check":               {resp: client.JobAccepted{}},
	"GET /api/v1/backup/jobs":                  {resp: []client.Job{}},
	"POST /api/v1/restore":                     {req: client.RestoreRequest{}, resp: client.JobAccepted{}},
	"POST /api/v1/backup/restore":              {req: client.RestoreRequest{}, resp: client.JobAccepted{}},
	"GET /api/v1/backup/status/{id}":           {resp: client.Job{}},
	"GET /api/v1/backup-schedules":             {resp: []client.BackupSchedule{}},
	"POST /api/v1/backup/schedule":             {req: client.ScheduleChange{}, resp: []client.BackupSchedule{}},
	"POST /api/v1/backup-schedules/{type}/run": {resp: client.JobAccepted{}},
}

// ioOf is the body description of route d: the health checks answer the node's status
// document to GET and a bare status line to HEAD and OPTIONS, the probes a status line.
func ioOf(d routeDoc) (routeIO, bool) {
	if io, ok := adminIO[d.Method+" "+strings.TrimPrefix(d.Path, "/api/v1")]; ok && strings.HasPrefix(d.Path, "/api/v1/") && isConfigDoc(d) {
		return io, true
	}
	if io, ok := adminIO[d.Method+" "+d.Path]; ok {
		return io, true
	}
	for _, p := range probePaths {
		if d.Path == p {
			return textIO, true
		}
	}
	for _, p := range healthPaths {
		if d.Path == p {
			if d.Method == http.MethodGet {
				return routeIO{resp: client.NodeStatus{}}, true
			}
			return textIO, true
		}
	}
	return routeIO{}, false
}

// isConfigDoc reports whether d is one of configDocs served under /api/v1 too.
func isConfigDoc(d routeDoc) bool {
	for _, c := range configDocs {
		if c.Method == d.Method && "/api/v1"+c.Path == d.Path {
			return true
		}
	}
	return false
}

// schemas builds OpenAPI 3.0 schemas from Go types: named structs become components,
// referenced with $ref; json tags name the properties, and fields without omitempty or
// omitzero that are not pointers are required.
type schemas struct{ components map[string]any }

var (
	timeType     = reflect.TypeOf(time.Time{})
	durationType = reflect.TypeOf(time.Duration(0))
	lagType      = reflect.TypeOf(client.Lag{})
	historyType  = reflect.TypeOf(client.HistoryEntry{})
	numberType   = reflect.TypeOf(json.Number(""))
	freeFormType = reflect.TypeOf(freeForm{})
)

// of is the schema of t.
func (s *schemas) of(t reflect.Type) map[string]any {
	switch t {
	case timeType:
		return map[string]any{"type": "string", "format": "date-time"}
	case durationType:
		return map[string]any{"type": "integer", "format": "int64", "description": "nanoseconds"}
	case lagType:
		return map[string]any{"description": "bytes behind the leader, or \"unknown\"",
			"oneOf": []any{map[string]any{"type": "integer", "format": "int64"}, map[string]any{"type": "string", "enum": []any{client.Unknown}}}}
	case historyType:
		return map[string]any{"type": "array", "minItems": 3, "maxItems": 5,
			"description": "[timeline, lsn, reason, timestamp, new_leader], as Patroni writes it", "items": map[string]any{}}
	case numberType:
		return map[string]any{"type": "number"}
	case freeFormType:
		return map[string]any{"type": "object", "additionalProperties": true}
	}
	switch t.Kind() {
	case reflect.Pointer:
		inner := s.of(t.Elem())
		if ref, ok := inner["$ref"]; ok {
			return map[string]any{"nullable": true, "allOf": []any{map[string]any{"$ref": ref}}}
		}
		out := map[string]any{"nullable": true}
		for k, v := range inner {
			out[k] = v
		}
		return out
	case reflect.Struct:
		return s.structRef(t)
	case reflect.Slice, reflect.Array:
		if t.Elem().Kind() == reflect.Uint8 {
			return map[string]any{"type": "string", "format": "byte"}
		}
		return map[string]any{"type": "array", "items": s.of(t.Elem())}
	case reflect.Map:
		return map[string]any{"type": "object", "additionalProperties": s.of(t.Elem())}
	case reflect.Interface:
		return map[string]any{}
	case reflect.Bool:
		return map[string]any{"type": "boolean"}
	case reflect.String:
		return map[string]any{"type": "string"}
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32:
		return map[string]any{"type": "integer"}
	case reflect.Int64, reflect.Uint64:
		return map[string]any{"type": "integer", "format": "int64"}
	case reflect.Float32, reflect.Float64:
		return map[string]any{"type": "number"}
	}
	return map[string]any{}
}

// structRef registers the component of a named struct and returns its $ref; an anonymous
// struct is inlined.
func (s *schemas) structRef(t reflect.Type) map[string]any {
	if t.Name() == "" {
		return s.object(t)
	}
	name := t.Name()
	if _, ok := s.components[name]; !ok {
		s.components[name] = map[string]any{} // a placeholder against recursion
		s.components[name] = s.object(t)
	}
	return map[string]any{"$ref": "#/components/schemas/" + name}
}

// object is the schema of struct t's JSON fields, embedded structs inlined.
func (s *schemas) object(t reflect.Type) map[string]any {
	props := map[string]any{}
	var required []any
	var walk func(t reflect.Type)
	walk = func(t reflect.Type) {
		for i := range t.NumField() {
			f := t.Field(i)
			tag := f.Tag.Get("json")
			if tag == "-" || !f.IsExported() {
				continue
			}
			name, opts, _ := strings.Cut(tag, ",")
			if f.Anonymous && name == "" && f.Type.Kind() == reflect.Struct {
				walk(f.Type)
				continue
			}
			if name == "" {
				name = f.Name
			}
			props[name] = s.of(f.Type)
			if !strings.Contains(opts, "omitempty") && !strings.Contains(opts, "omitzero") && f.Type.Kind() != reflect.Pointer {
				required = append(required, name)
			}
		}
	}
	walk(t)
	out := map[string]any{"type": "object", "properties": props}
	if len(required) > 0 {
		out["required"] = required
	}
	return out
}

// operation is the OpenAPI operation of d, with its request and response schemas.
func (s *schemas) operation(d routeDoc) map[string]any {
	errSchema := s.of(reflect.TypeOf(client.ErrorBody{}))
	op := map[string]any{
		"summary": d.Summary,
		"responses": map[string]any{
			"default": map[string]any{"description": "an error: JSON {error, detail, field} on ramd's routes, a line of text on Patroni's",
				"content": map[string]any{
					"application/json": map[string]any{"schema": errSchema},
					"text/plain":       map[string]any{"schema": map[string]any{"type": "string"}},
				}},
		},
	}
	io, _ := ioOf(d)
	ok := map[string]any{"description": "OK"}
	switch {
	case io.resp != nil:
		ok["content"] = map[string]any{"application/json": map[string]any{"schema": s.of(reflect.TypeOf(io.resp))}}
	case io.text && d.Method != http.MethodHead:
		ok["content"] = map[string]any{"text/plain": map[string]any{"schema": map[string]any{"type": "string"}}}
	}
	op["responses"].(map[string]any)["200"] = ok
	if io.req != nil {
		op["requestBody"] = map[string]any{"required": false, "content": map[string]any{
			"application/json": map[string]any{"schema": s.of(reflect.TypeOf(io.req))}}}
	}
	return op
}
