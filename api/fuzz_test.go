package api

import (
	"bytes"
	"context"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/gin-gonic/gin"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/ramd-project/ramd/consul"
	"github.com/ramd-project/ramd/daemon"
	"github.com/ramd-project/ramd/daemon/backup"
	"github.com/ramd-project/ramd/daemon/params"
)

// errFuzzRefused is what every method of fuzzNode answers: the fuzz targets exercise the
// API's own parsing, and a request that reaches the node has been accepted by it.
var errFuzzRefused = errors.New("fuzz: refused by the node")

// fuzzNode implements every route group; each call is counted and refused.
type fuzzNode struct {
	staticNode
	calls atomic.Int64
}

func (n *fuzzNode) refuse() error { n.calls.Add(1); return errFuzzRefused }

func (n *fuzzNode) ConfirmLeader(string) bool { n.calls.Add(1); return false }
func (n *fuzzNode) RequestSwitchover(context.Context, daemon.SwitchoverRequest) (string, error) {
	return "", n.refuse()
}
func (n *fuzzNode) Job(context.Context, string) (consul.Job, error) { return consul.Job{}, n.refuse() }
func (n *fuzzNode) CancelSwitchover(context.Context) error          { return n.refuse() }
func (n *fuzzNode) Jobs(context.Context) ([]consul.Job, error)      { return nil, n.refuse() }
func (n *fuzzNode) SyncStandbys(context.Context) (daemon.SyncView, error) {
	return daemon.SyncView{}, n.refuse()
}
func (n *fuzzNode) SetSync(context.Context, daemon.SyncSettings) (daemon.SyncView, error) {
	return daemon.SyncView{}, n.refuse()
}
func (n *fuzzNode) DynamicConfig(context.Context) (map[string]any, uint64, error) {
	return nil, 0, n.refuse()
}
func (n *fuzzNode) PatchConfig(context.Context, map[string]any, *uint64) (map[string]any, error) {
	return nil, n.refuse()
}
func (n *fuzzNode) ReplaceConfig(context.Context, map[string]any, *uint64) (map[string]any, error) {
	return nil, n.refuse()
}
func (n *fuzzNode) History(context.Context) ([]consul.HistoryEntry, error) { return nil, n.refuse() }
func (n *fuzzNode) Restart(context.Context, daemon.RestartRequest) (string, error) {
	return "", n.refuse()
}
func (n *fuzzNode) ScheduleRestart(context.Context, daemon.RestartRequest) (string, error) {
	return "", n.refuse()
}
func (n *fuzzNode) CancelScheduledRestart(context.Context) error { return n.refuse() }
func (n *fuzzNode) Reinitialize(context.Context, bool, bool) (string, error) {
	return "", n.refuse()
}
func (n *fuzzNode) Reload() { n.calls.Add(1) }
func (n *fuzzNode) RollingRestart(context.Context, daemon.RollingRestartRequest) (string, error) {
	return "", n.refuse()
}
func (n *fuzzNode) Catalog(context.Context) (*params.Catalog, error) { return nil, n.refuse() }
func (n *fuzzNode) ReviewParameters(context.Context, map[string]string) (params.Report, error) {
	return params.Report{}, n.refuse()
}
func (n *fuzzNode) TuneParameters(context.Context, daemon.TuneRequest) (daemon.Tuning, error) {
	return daemon.Tuning{}, n.refuse()
}
func (n *fuzzNode) StartBackup(context.Context, daemon.BackupRequest) (string, error) {
	return "", n.refuse()
}
func (n *fuzzNode) StartBackupExpire(context.Context) (string, error) { return "", n.refuse() }
func (n *fuzzNode) StartBackupCheck(context.Context) (string, error)  { return "", n.refuse() }
func (n *fuzzNode) StartRestore(context.Context, daemon.RestoreRequest) (string, error) {
	return "", n.refuse()
}
func (n *fuzzNode) BackupCatalog(context.Context) (backup.Catalog, string, error) {
	return backup.Catalog{}, "", n.refuse()
}
func (n *fuzzNode) BackupSchedules(context.Context) ([]daemon.ScheduleView, error) {
	return nil, n.refuse()
}
func (n *fuzzNode) ChangeSchedule(context.Context, daemon.ScheduleChange) ([]daemon.ScheduleView, error) {
	return nil, n.refuse()
}
func (n *fuzzNode) RunScheduleNow(context.Context, string) (string, error) { return "", n.refuse() }

// panicLog records the recovery middleware's "api handler panicked" lines.
type panicLog struct {
	mu     sync.Mutex // guards panics
	panics []string
}

func (p *panicLog) Enabled(context.Context, slog.Level) bool { return true }
func (p *panicLog) Handle(_ context.Context, r slog.Record) error {
	if r.Message == "api handler panicked" {
		var b strings.Builder
		r.Attrs(func(a slog.Attr) bool { b.WriteString(a.String() + " "); return true })
		p.mu.Lock()
		p.panics = append(p.panics, b.String())
		p.mu.Unlock()
	}
	return nil
}
func (p *panicLog) WithAttrs([]slog.Attr) slog.Handler { return p }
func (p *panicLog) WithGroup(string) slog.Handler      { return p }

// bodyRoute is a route that reads a request body.
type bodyRoute struct{ method, path string }

// fuzzRouter builds the whole API over a fuzzNode and lists the routes that take a body:
// every POST, PUT and PATCH the router serves, so a route added later is fuzzed too.
func fuzzRouter(t testing.TB) (*gin.Engine, *fuzzNode, *panicLog, []bodyRoute) {
	t.Helper()
	n := &fuzzNode{}
	n.st.Store(primary())
	logs := &panicLog{}
	r := NewRouter(routesOf(n), prometheus.NewRegistry(), slog.New(logs), nil)
	var routes []bodyRoute
	for _, ri := range r.Routes() {
		switch ri.Method {
		case http.MethodPost, http.MethodPut, http.MethodPatch:
			// Path parameters get a plausible value (a schedule type, a job id).
			p := ri.Path
			for _, seg := range strings.Split(p, "/") {
				if strings.HasPrefix(seg, ":") || strings.HasPrefix(seg, "*") {
					p = strings.Replace(p, seg, "full", 1)
				}
			}
			routes = append(routes, bodyRoute{ri.Method, p})
		}
	}
	slices.SortFunc(routes, func(a, b bodyRoute) int { return strings.Compare(a.method+a.path, b.method+b.path) })
	if len(routes) < 20 {
		t.Fatalf("only %d body routes found: %v", len(routes), routes)
	}
	return r, n, logs, routes
}

// FuzzRequestBodies sends arbitrary bodies to every route that parses one (switchover,
// failover, config patch and replace, sync standbys, restart, reinitialize, parameters
// validate and tune, backups and schedules, ...). No body may make a handler panic, and a
// 5xx answer is only allowed once the node itself was asked (the fuzz node refuses
// everything): a body the API cannot parse is a 4xx.
func FuzzRequestBodies(f *testing.F) {
	r, n, logs, routes := fuzzRouter(f)
	seeds := []string{
		``, `{}`, `null`, `[]`, `"x"`, `{"leader":"n1","candidate":"n2"}`,
		`{"leader":"n1","candidate":"n2","scheduled_at":"2030-01-01T00:00:00Z"}`,
		`{"candidate":"n2","allow_data_loss":true}`,
		`{"pause":true}`, `{"ttl":30,"loop_wait":10,"postgresql":{"parameters":{"work_mem":"8MB"}}}`,
		`{"synchronous_mode":"quorum","synchronous_node_count":2}`,
		`{"restart_pending":true,"role":"replica","postgres_version":"16.2","timeout":"30s","schedule":"2030-01-01T00:00:00Z"}`,
		`{"force":true,"from_leader":true}`, `{"parameters":{"shared_buffers":"1GB"}}`,
		`{"workload":"oltp","memory":"8GB","cpus":4}`, `{"type":"full"}`,
		`{"type":"incr","schedule":"0 3 * * *","suspend":false}`,
		`{"a":` + strings.Repeat("[", 1000), `{"leader":1e400}`, "\xff\xfe", `{"x":"\ud800"}`,
	}
	for i := range routes {
		for _, s := range seeds {
			f.Add(uint8(i), []byte(s))
		}
	}
	f.Fuzz(func(t *testing.T, route uint8, body []byte) {
		rt := routes[int(route)%len(routes)]
		before := n.calls.Load()
		req := httptest.NewRequest(rt.method, rt.path, bytes.NewReader(body))
		req.Header.Set("Content-Type", "application/json")
		w := httptest.NewRecorder()
		r.ServeHTTP(w, req)
		logs.mu.Lock()
		panics := slices.Clone(logs.panics)
		logs.mu.Unlock()
		if len(panics) > 0 {
			t.Fatalf("%s %s with %q panicked: %s", rt.method, rt.path, body, panics[0])
		}
		if w.Code >= 500 && n.calls.Load() == before {
			t.Fatalf("%s %s with %q: %d without asking the node: %s", rt.method, rt.path, body, w.Code, w.Body)
		}
	})
}

// endless is a request body that never ends: '[' forever.
type endless struct{ read atomic.Int64 }

func (e *endless) Read(p []byte) (int, error) {
	for i := range p {
		p[i] = '['
	}
	e.read.Add(int64(len(p)))
	return len(p), nil
}

// TestRequestBodiesBounded: no route reads more than maxBody bytes (plus the reader's
// buffer) of an endless body, so no request can make ramd hold more; routes that take no
// body ignore it.
func TestRequestBodiesBounded(t *testing.T) {
	t.Parallel()
	r, n, logs, routes := fuzzRouter(t)
	for _, rt := range routes {
		before := n.calls.Load()
		body := &endless{}
		req := httptest.NewRequest(rt.method, rt.path, io.NopCloser(body))
		req.Header.Set("Content-Type", "application/json")
		w := httptest.NewRecorder()
		r.ServeHTTP(w, req)
		if got := body.read.Load(); got > maxBody+64<<10 {
			t.Errorf("%s %s read %d bytes of an endless body (bound %d)", rt.method, rt.path, got, maxBody)
		}
		if w.Code >= 500 && n.calls.Load() == before {
			t.Errorf("%s %s answered %d to an endless body without asking the node", rt.method, rt.path, w.Code)
		}
	}
	if len(logs.panics) > 0 {
		t.Errorf("panics: %v", logs.panics)
	}
}
