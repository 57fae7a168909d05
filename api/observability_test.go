package api

import (
	"bytes"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"

	"github.com/ramd-project/ramd/daemon"
	"github.com/ramd-project/ramd/observability"
)

// ramdGauges are the ramd_* gauges NewRouter registers, read from the status.
var ramdGauges = []string{
	"ramd_lock_held", "ramd_replication_lag_bytes", "ramd_replication_lag_seconds",
	"ramd_sync_standbys", "ramd_pending_restart",
}

// TestStatusGauges checks the ramd_* gauges per role through a real scrape of /metrics.
func TestStatusGauges(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		st   *daemon.Status
		want map[string]float64
	}{
		{"primary", primary(), map[string]float64{
			"ramd_lock_held": 1, "ramd_replication_lag_bytes": 0, "ramd_replication_lag_seconds": 0,
			"ramd_sync_standbys": 1, "ramd_pending_restart": 0}},
		{"replica caught up", replica(), map[string]float64{
			"ramd_lock_held": 0, "ramd_replication_lag_bytes": 0, "ramd_replication_lag_seconds": 0,
			"ramd_sync_standbys": 0, "ramd_pending_restart": 0}},
		// The last replayed transaction is 2 s before t0 (fullReplica: 1.876544 s), the
		// scrape is at t0 + 1 s.
		{"replica 2 MiB behind", replica(behind(2 << 20)), map[string]float64{
			"ramd_lock_held": 0, "ramd_replication_lag_bytes": 2 << 20, "ramd_replication_lag_seconds": 3,
			"ramd_sync_standbys": 0, "ramd_pending_restart": 0}},
		{"replica received but not replayed", fullReplica(), map[string]float64{
			"ramd_lock_held": 0, "ramd_replication_lag_bytes": 4096, "ramd_replication_lag_seconds": 2.876544,
			"ramd_sync_standbys": 0, "ramd_pending_restart": 1}},
		{"stopped replica", replica(behind(2<<20), stopped), map[string]float64{
			"ramd_lock_held": 0, "ramd_replication_lag_bytes": 0, "ramd_replication_lag_seconds": 0,
			"ramd_sync_standbys": 0, "ramd_pending_restart": 0}},
		{"demoted primary", primary(noLock, func(st *daemon.Status) {
			st.Role = daemon.RoleDemoted
			st.Replication = nil
		}), map[string]float64{
			"ramd_lock_held": 0, "ramd_replication_lag_bytes": 0, "ramd_replication_lag_seconds": 0,
			"ramd_sync_standbys": 0, "ramd_pending_restart": 0}},
		{"before the first cycle", nil, map[string]float64{
			"ramd_lock_held": 0, "ramd_replication_lag_bytes": 0, "ramd_replication_lag_seconds": 0,
			"ramd_sync_standbys": 0, "ramd_pending_restart": 0}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			h, reg := newTestRouter(t, tt.st)
			rec := serve(t, h, http.MethodGet, "/metrics")
			parser := expfmt.NewTextParser(model.UTF8Validation)
			families, err := parser.TextToMetricFamilies(rec.Body)
			if err != nil {
				t.Fatalf("parse /metrics: %v", err)
			}
			got := map[string]float64{}
			for _, name := range ramdGauges {
				f := families[name]
				if f == nil || len(f.GetMetric()) != 1 || len(f.GetMetric()[0].GetLabel()) != 0 {
					t.Fatalf("%s: want one series without labels, got %v", name, f)
				}
				got[name] = f.GetMetric()[0].GetGauge().GetValue()
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("gauges (-want +got):\n%s", diff)
			}
			problems, err := testutil.GatherAndLint(reg, ramdGauges...)
			if err != nil {
				t.Fatal(err)
			}
			for _, p := range problems {
				t.Errorf("lint %s: %s", p.Metric, p.Text)
			}
		})
	}
}

// TestMetricsFullRegistry lints and checks the names of everything /metrics serves in
// production: the Go and process collectors, the patroni_* series and every ramd_* metric.
func TestMetricsFullRegistry(t *testing.T) {
	t.Parallel()
	reg := observability.NewRegistry()
	if _, err := observability.NewMetrics(reg); err != nil {
		t.Fatal(err)
	}
	h := NewRouter(routesOf(newNode(primary())), reg, nil, func() time.Time { return now })
	rec := serve(t, h, http.MethodGet, "/metrics")
	parser := expfmt.NewTextParser(model.UTF8Validation)
	families, err := parser.TextToMetricFamilies(bytes.NewReader(rec.Body.Bytes()))
	if err != nil {
		t.Fatalf("parse /metrics: %v", err)
	}
	for _, name := range append([]string{"patroni_primary", "ramd_loop_duration_seconds",
		"ramd_loop_last_success_timestamp_seconds", "ramd_switchover_duration_seconds", "go_goroutines"}, ramdGauges...) {
		if _, ok := families[name]; !ok {
			t.Errorf("%s missing from /metrics", name)
		}
	}
	problems, err := testutil.GatherAndLint(reg)
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range problems {
		t.Errorf("lint %s: %s", p.Metric, p.Text)
	}
}

// TestRouterTracing checks the otelgin spans: one server span per request named by method
// and route (never the raw path), the caller's traceparent continued, health checks traced
// only when the caller traces them, and log lines of a request carrying its span's ids.
func TestRouterTracing(t *testing.T) {
	t.Parallel()
	rec := tracetest.NewSpanRecorder()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(rec))
	var logs bytes.Buffer
	logger := observability.NewLogger(observability.Config{LogFormat: "text", LogLevel: "debug"}, &logs)
	h := NewRouter(routesOf(newNode(primary())), prometheus.NewRegistry(), logger, func() time.Time { return now }, WithTracerProvider(tp))
	_, caller := tp.Tracer("client").Start(t.Context(), "client")
	caller.End()
	traceparent := "00-" + caller.SpanContext().TraceID().String() + "-" + caller.SpanContext().SpanID().String() + "-01"

	requests := []struct {
		method, target string
		traced         bool // the caller sends its traceparent
	}{
		{http.MethodGet, "/cluster", false},
		{http.MethodGet, "/primary", false},
		{http.MethodHead, "/replica", false},
		{http.MethodOptions, "/", false},
		{http.MethodGet, "/liveness", false},
		{http.MethodGet, "/metrics", false},
		{http.MethodGet, "/some/random/path/42", false},
		{http.MethodGet, "/patroni", true},
		{http.MethodGet, "/replica?lag=1MB", true},
		{http.MethodGet, "/some/random/path/43", true},
	}
	for _, r := range requests {
		req := httptest.NewRequestWithContext(t.Context(), r.method, r.target, nil)
		if r.traced {
			req.Header.Set("traceparent", traceparent)
		}
		h.ServeHTTP(httptest.NewRecorder(), req)
	}

	var names []string
	var spans []sdktrace.ReadOnlySpan
	for _, s := range rec.Ended() {
		if s.Name() == "client" {
			continue
		}
		spans = append(spans, s)
		names = append(names, s.Name())
		if s.SpanKind() != trace.SpanKindServer {
			t.Errorf("%s: kind %v, want server", s.Name(), s.SpanKind())
		}
		if (s.Name() != "GET /cluster") != (s.Parent().SpanID() == caller.SpanContext().SpanID()) {
			t.Errorf("%s: parent %v; want the caller's span exactly when it sent a traceparent", s.Name(), s.Parent().SpanID())
		}
	}
	want := []string{"GET /cluster", "GET /patroni", "GET /replica", "GET"}
	if diff := cmp.Diff(want, names); diff != "" {
		t.Fatalf("span names (-want +got):\n%s", diff)
	}
	var replicaCode int64
	for _, kv := range spans[2].Attributes() {
		if kv.Key == "http.response.status_code" {
			replicaCode = kv.Value.AsInt64()
		}
	}
	if replicaCode != http.StatusServiceUnavailable {
		t.Errorf("GET /replica span status code = %d, want 503", replicaCode)
	}
	first := strings.SplitN(logs.String(), "\n", 2)[0]
	if !strings.Contains(first, "api request") || !strings.Contains(first, "trace_id="+spans[0].SpanContext().TraceID().String()) {
		t.Errorf("access log line without the request's trace id: %s", first)
	}
}

// TestRouterNoTracing checks that without WithTracerProvider the API makes no span even
// when a global provider would.
func TestRouterNoTracing(t *testing.T) {
	t.Parallel()
	var logs bytes.Buffer
	logger := observability.NewLogger(observability.Config{LogFormat: "text", LogLevel: "debug"}, &logs)
	h := NewRouter(routesOf(newNode(primary())), prometheus.NewRegistry(), logger, func() time.Time { return now })
	req := httptest.NewRequestWithContext(t.Context(), http.MethodGet, "/primary", nil)
	req.Header.Set("traceparent", "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01")
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	if rec.Code != http.StatusOK {
		t.Fatalf("GET /primary = %d", rec.Code)
	}
	if strings.Contains(logs.String(), "trace_id") {
		t.Errorf("a request was traced without a tracer provider: %s", logs.String())
	}
}
