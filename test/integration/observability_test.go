package integration

import (
	"bytes"
	"compress/gzip"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil/promlint"
	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
	coltracepb "go.opentelemetry.io/proto/otlp/collector/trace/v1"
	"google.golang.org/protobuf/proto"

	"github.com/ramd-project/ramd/test/harness"
	"github.com/ramd-project/ramd/test/testenv"
)

// receivedSpan is one span an OTLP receiver decoded.
type receivedSpan struct {
	Node     string // the resource's service.instance.id
	Name     string
	TraceID  string
	SpanID   string
	ParentID string
}

func (s receivedSpan) String() string {
	return fmt.Sprintf("%s@%s(%s<-%s)", s.Name, s.Node, s.SpanID, s.ParentID)
}

// otlpReceiver is a real OTLP/HTTP trace receiver: it decodes each protobuf
// ExportTraceServiceRequest posted to /v1/traces and keeps its spans.
type otlpReceiver struct {
	URL string

	mu    sync.Mutex
	spans []receivedSpan
	bad   []string
}

func newOTLPReceiver(t *testing.T) *otlpReceiver {
	t.Helper()
	r := &otlpReceiver{}
	srv := httptest.NewServer(http.HandlerFunc(r.serve)) // listens on 127.0.0.1
	t.Cleanup(srv.Close)
	r.URL = srv.URL
	return r
}

func (r *otlpReceiver) serve(w http.ResponseWriter, req *http.Request) {
	fail := func(code int, format string, args ...any) {
		r.mu.Lock()
		r.bad = append(r.bad, fmt.Sprintf(format, args...))
		r.mu.Unlock()
		http.Error(w, fmt.Sprintf(format, args...), code)
	}
	if req.Method != http.MethodPost || req.URL.Path != "/v1/traces" {
		fail(http.StatusNotFound, "%s %s", req.Method, req.URL.Path)
		return
	}
	if ct := req.Header.Get("Content-Type"); ct != "application/x-protobuf" {
		fail(http.StatusUnsupportedMediaType, "content type %q", ct)
		return
	}
	var body io.Reader = req.Body
	if req.Header.Get("Content-Encoding") == "gzip" {
		gz, err := gzip.NewReader(req.Body)
		if err != nil {
			fail(http.StatusBadRequest, "gzip: %v", err)
			return
		}
		body = gz
	}
	b, err := io.ReadAll(io.LimitReader(body, 64<<20))
	if err != nil {
		fail(http.StatusBadRequest, "read: %v", err)
		return
	}
	var msg coltracepb.ExportTraceServiceRequest
	if err := proto.Unmarshal(b, &msg); err != nil {
		fail(http.StatusBadRequest, "decode ExportTraceServiceRequest: %v", err)
		return
	}
	var got []receivedSpan
	for _, rs := range msg.GetResourceSpans() {
		node := ""
		for _, kv := range rs.GetResource().GetAttributes() {
			if kv.GetKey() == "service.instance.id" {
				node = kv.GetValue().GetStringValue()
			}
		}
		for _, ss := range rs.GetScopeSpans() {
			for _, s := range ss.GetSpans() {
				got = append(got, receivedSpan{
					Node: node, Name: s.GetName(),
					TraceID: hex.EncodeToString(s.GetTraceId()), SpanID: hex.EncodeToString(s.GetSpanId()),
					ParentID: hex.EncodeToString(s.GetParentSpanId()),
				})
			}
		}
	}
	r.mu.Lock()
	r.spans = append(r.spans, got...)
	r.mu.Unlock()
	out, _ := proto.Marshal(&coltracepb.ExportTraceServiceResponse{})
	w.Header().Set("Content-Type", "application/x-protobuf")
	_, _ = w.Write(out)
}

// Spans returns a copy of every span received so far, and the requests it refused.
func (r *otlpReceiver) Spans() ([]receivedSpan, []string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.spans), slices.Clone(r.bad)
}

// metrics scrapes a node's /metrics, parses it with the Prometheus text parser and lints it.
func metrics(t *testing.T, n *harness.Node) map[string]*dto.MetricFamily {
	t.Helper()
	resp, err := (&http.Client{Timeout: 5 * time.Second}).Get(n.APIURL() + "/metrics")
	if err != nil {
		t.Fatalf("scrape %s: %v", n.Name, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("scrape %s: %d %v", n.Name, resp.StatusCode, err)
	}
	parser := expfmt.NewTextParser(model.UTF8Validation)
	families, err := parser.TextToMetricFamilies(bytes.NewReader(b))
	if err != nil {
		t.Fatalf("parse %s /metrics: %v", n.Name, err)
	}
	list := make([]*dto.MetricFamily, 0, len(families))
	for _, f := range families {
		list = append(list, f)
	}
	problems, err := promlint.NewWithMetricFamilies(list).Lint()
	if err != nil {
		t.Fatalf("lint %s /metrics: %v", n.Name, err)
	}
	for _, p := range problems {
		t.Errorf("%s /metrics: lint %s: %s", n.Name, p.Metric, p.Text)
	}
	return families
}

// value is the value of a metric with one series: a gauge's or counter's value, a
// histogram's count. It fails the test when the metric is missing.
func value(t *testing.T, families map[string]*dto.MetricFamily, name string) float64 {
	t.Helper()
	f := families[name]
	if f == nil || len(f.GetMetric()) != 1 {
		t.Fatalf("%s: want one series, got %v", name, f)
	}
	m := f.GetMetric()[0]
	switch f.GetType() {
	case dto.MetricType_HISTOGRAM:
		return float64(m.GetHistogram().GetSampleCount())
	case dto.MetricType_COUNTER:
		return m.GetCounter().GetValue()
	default:
		return m.GetGauge().GetValue()
	}
}

// seriesValue is the value of the series of a labelled counter with the given labels, 0
// when it does not exist.
func seriesValue(families map[string]*dto.MetricFamily, name string, labels map[string]string) float64 {
next:
	for _, m := range families[name].GetMetric() {
		for _, l := range m.GetLabel() {
			if want, ok := labels[l.GetName()]; ok && want != l.GetValue() {
				continue next
			}
		}
		return m.GetCounter().GetValue()
	}
	return 0
}

// checkRoleMetrics compares a node's role-dependent series with what its role should give.
func checkRoleMetrics(t *testing.T, n *harness.Node, primary bool) error {
	t.Helper()
	f := metrics(t, n)
	want := map[string]float64{"patroni_primary": 0, "patroni_replica": 1, "ramd_lock_held": 0}
	if primary {
		want = map[string]float64{"patroni_primary": 1, "patroni_replica": 0, "ramd_lock_held": 1,
			"ramd_replication_lag_bytes": 0, "ramd_replication_lag_seconds": 0}
	}
	for name, v := range want {
		if got := value(t, f, name); got != v {
			return fmt.Errorf("%s: %s = %v, want %v", n.Name, name, got, v)
		}
	}
	if !primary && value(t, f, "ramd_replication_lag_bytes") < 0 {
		return fmt.Errorf("%s: negative lag", n.Name)
	}
	return nil
}

// waitCaughtUp waits until the primary's /cluster shows member n with no lag: right after
// the cluster starts, the primary may not yet have seen n publish a position close enough to
// its own, and would refuse a switchover to n.
func waitCaughtUp(t *testing.T, p, n *harness.Node) {
	t.Helper()
	testenv.Eventually(t, 60*time.Second, 200*time.Millisecond, func() error {
		resp, err := (&http.Client{Timeout: 2 * time.Second}).Get(p.APIURL() + "/cluster")
		if err != nil {
			return err
		}
		defer resp.Body.Close()
		var doc struct {
			Members []struct {
				Name string `json:"name"`
				Lag  any    `json:"lag"`
			} `json:"members"`
		}
		if err := json.NewDecoder(resp.Body).Decode(&doc); err != nil {
			return err
		}
		for _, m := range doc.Members {
			if m.Name == n.Name {
				if lag, ok := m.Lag.(float64); ok && lag == 0 {
					return nil
				}
				return fmt.Errorf("%s lag on %s: %v", n.Name, p.Name, m.Lag)
			}
		}
		return fmt.Errorf("%s not in %s's /cluster", n.Name, p.Name)
	})
}

// TestObservabilitySwitchoverTrace: three nodes export spans to a real OTLP/HTTP receiver;
// an API switchover makes ONE trace holding the API request, the old primary's switchover
// and stop, and the new primary's promotion; /metrics on live nodes parses, passes lint and
// follows the roles and the switchover count.
func TestObservabilitySwitchoverTrace(t *testing.T) {
	t.Parallel()
	addr := needReal(t)
	rcv := newOTLPReceiver(t)
	c := harness.New(t, ramdBin, addr, 3, harness.Options{Env: map[string]string{
		"OTEL_EXPORTER_OTLP_ENDPOINT": rcv.URL,
		"OTEL_EXPORTER_OTLP_PROTOCOL": "http/protobuf",
		"OTEL_BSP_SCHEDULE_DELAY":     "100", // milliseconds
	}})
	c.StartAll()
	p := c.WaitPrimary(120 * time.Second)
	c.WaitReplicas(120 * time.Second)
	var target *harness.Node
	for _, n := range c.Nodes {
		if n != p {
			target = n
			break
		}
	}

	// Before: roles as expected, no switchover recorded, the loop succeeds, Consul calls counted.
	for _, n := range c.Nodes {
		if err := checkRoleMetrics(t, n, n == p); err != nil {
			t.Fatal(err)
		}
	}
	before := metrics(t, target)
	if got := value(t, before, "ramd_switchover_duration_seconds"); got != 0 {
		t.Fatalf("%s: ramd_switchover_duration_seconds_count = %v before any switchover", target.Name, got)
	}
	if last := value(t, before, "ramd_loop_last_success_timestamp_seconds"); time.Since(time.Unix(int64(last), 0)) > time.Minute {
		t.Errorf("%s: last successful cycle at %v", target.Name, last)
	}
	if n := seriesValue(before, "ramd_consul_requests_total", map[string]string{"op": "kv.list", "result": "ok"}); n == 0 {
		t.Errorf("%s: no successful kv.list counted", target.Name)
	}
	if value(t, before, "ramd_loop_duration_seconds") == 0 {
		t.Errorf("%s: no loop duration observed", target.Name)
	}

	waitCaughtUp(t, p, target)
	code, body := post(t, p.APIURL()+"/switchover", fmt.Sprintf(`{"leader":%q,"candidate":%q}`, p.Name, target.Name))
	if code != http.StatusOK {
		t.Fatalf("switchover: %d %s", code, body)
	}

	// One trace: the request on the old primary, its switchover and stop, the candidate's
	// promotion.
	var trace []receivedSpan
	testenv.Eventually(t, 60*time.Second, 200*time.Millisecond, func() error {
		spans, bad := rcv.Spans()
		if len(bad) > 0 {
			return fmt.Errorf("receiver refused requests: %v", bad)
		}
		var root *receivedSpan
		for i, s := range spans {
			if s.Name == "POST /switchover" && s.Node == p.Name {
				root = &spans[i]
			}
		}
		if root == nil {
			return fmt.Errorf("no POST /switchover span from %s among %d spans", p.Name, len(spans))
		}
		trace = trace[:0]
		for _, s := range spans {
			if s.TraceID == root.TraceID {
				trace = append(trace, s)
			}
		}
		for _, want := range []struct{ name, node string }{
			{"ha.cycle", p.Name}, {"ha.switchover", p.Name}, {"switchover.stop", p.Name}, {"switchover.release", p.Name},
			{"ha.cycle", target.Name}, {"ha.acquire", target.Name}, {"consul.acquire", target.Name}, {"ha.promote", target.Name},
		} {
			if !slices.ContainsFunc(trace, func(s receivedSpan) bool { return s.Name == want.name && s.Node == want.node }) {
				return fmt.Errorf("trace %s has no %s from %s: %v", root.TraceID, want.name, want.node, trace)
			}
		}
		// Every span of the trace hangs from another span of it (one tree, rooted at the
		// request). A cycle still running (the old primary's rewind) exports its children
		// before itself, so this too is waited for.
		ids := map[string]bool{}
		for _, s := range trace {
			ids[s.SpanID] = true
		}
		for _, s := range trace {
			if s.Name != "POST /switchover" && !ids[s.ParentID] {
				return fmt.Errorf("%v: parent not in the trace", s)
			}
		}
		return nil
	})
	t.Logf("switchover trace: %d spans: %v", len(trace), trace)

	// The old primary's log lines inside the trace carry its id.
	traceID := trace[0].TraceID
	testenv.Eventually(t, 10*time.Second, 100*time.Millisecond, func() error {
		b, err := os.ReadFile(p.LogPath)
		if err != nil {
			return err
		}
		if !strings.Contains(string(b), "trace_id="+traceID) {
			return fmt.Errorf("no log line of %s with trace_id=%s", p.Name, traceID)
		}
		return nil
	})

	// After: the roles swapped in the metrics, and the switchover was counted on the new
	// primary.
	testenv.Eventually(t, 60*time.Second, 200*time.Millisecond, func() error {
		if err := checkRoleMetrics(t, target, true); err != nil {
			return err
		}
		return checkRoleMetrics(t, p, false)
	})
	after := metrics(t, target)
	if got := value(t, after, "ramd_switchover_duration_seconds"); got != 1 {
		t.Errorf("%s: ramd_switchover_duration_seconds_count = %v after one switchover, want 1", target.Name, got)
	}
	if sum := after["ramd_switchover_duration_seconds"].GetMetric()[0].GetHistogram().GetSampleSum(); sum <= 0 || sum > 30 {
		t.Errorf("%s: switchover took %v s", target.Name, sum)
	}
	if n := seriesValue(after, "ramd_actions_total", map[string]string{"action": "promote", "result": "ok"}); n != 1 {
		t.Errorf("%s: promote actions = %v, want 1", target.Name, n)
	}
	old := metrics(t, p)
	if n := seriesValue(old, "ramd_actions_total", map[string]string{"action": "switchover", "result": "ok"}); n != 1 {
		t.Errorf("%s: switchover actions = %v, want 1", p.Name, n)
	}
	c.WaitReplicas(120 * time.Second)
}
