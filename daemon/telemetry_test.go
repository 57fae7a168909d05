package daemon

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"syscall"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	"go.opentelemetry.io/otel/propagation"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"
	"go.opentelemetry.io/otel/trace/noop"

	"github.com/ramd-project/ramd/consul"
	"github.com/ramd-project/ramd/daemon/ha"
	"github.com/ramd-project/ramd/observability"
)

// recorded is a node with telemetry going to a span recorder and a fresh registry.
type recorded struct {
	n   *Node
	rec *tracetest.SpanRecorder
	tp  *sdktrace.TracerProvider
	reg *prometheus.Registry
}

func newRecorded(t *testing.T, name string) recorded {
	t.Helper()
	rec := tracetest.NewSpanRecorder()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(rec))
	reg := prometheus.NewRegistry()
	m, err := observability.NewMetrics(reg)
	if err != nil {
		t.Fatal(err)
	}
	n := &Node{cfg: Config{Name: name, Scope: "demo", RetryTimeout: time.Second}, logger: slog.New(slog.DiscardHandler)}
	n.setTelemetry(&Telemetry{TracerProvider: tp, Metrics: m})
	return recorded{n: n, rec: rec, tp: tp, reg: reg}
}

// runCycle runs the node's real cycle skeleton (Node.runCycle: observe, decide, act, tend)
// with stand-ins for the world: the observation o (Consul answered), the plan p, and step
// for each action's work (nil: every action succeeds).
func (r recorded) runCycle(ctx context.Context, o *observation, p ha.Plan, step func(ctx context.Context, a ha.Action) error) {
	if step == nil {
		step = func(context.Context, ha.Action) error { return nil }
	}
	r.n.runCycle(ctx, cycleSteps{
		observe: func(context.Context) observation {
			seen := *o
			seen.in.ConsulOK = true
			return seen
		},
		decide:  func(ha.Input) ha.Plan { return p },
		prepare: func(context.Context, *observation) {},
		do:      func(ctx context.Context, _ *observation, a ha.Action) error { return step(ctx, a) },
		tend:    func(context.Context, *observation, ha.Plan) {},
	})
}

// spanTree renders the ended spans as "name <- parent name" (root: "name <- "), in end order.
func spanTree(spans []sdktrace.ReadOnlySpan) []string {
	names := map[trace.SpanID]string{}
	for _, s := range spans {
		names[s.SpanContext().SpanID()] = s.Name()
	}
	var out []string
	for _, s := range spans {
		parent := names[s.Parent().SpanID()]
		if s.Parent().IsValid() && parent == "" {
			parent = "(remote " + s.Parent().SpanID().String() + ")"
		}
		out = append(out, s.Name()+" <- "+parent)
	}
	return out
}

func byName(spans []sdktrace.ReadOnlySpan, name string) sdktrace.ReadOnlySpan {
	for _, s := range spans {
		if s.Name() == name {
			return s
		}
	}
	return nil
}

func attrs(s sdktrace.ReadOnlySpan) map[string]string {
	out := map[string]string{}
	for _, kv := range s.Attributes() {
		out[string(kv.Key)] = kv.Value.String()
	}
	return out
}

// histogram returns the count and sum of a histogram without labels.
func histogram(t *testing.T, reg *prometheus.Registry, name string) (uint64, float64) {
	t.Helper()
	m := metric(t, reg, name, nil)
	if m == nil {
		return 0, 0
	}
	return m.GetHistogram().GetSampleCount(), m.GetHistogram().GetSampleSum()
}

// metric finds the series of name with exactly labels.
func metric(t *testing.T, reg *prometheus.Registry, name string, labels map[string]string) *dto.Metric {
	t.Helper()
	families, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range families {
		if f.GetName() != name {
			continue
		}
	next:
		for _, m := range f.GetMetric() {
			if len(m.GetLabel()) != len(labels) {
				continue
			}
			for _, l := range m.GetLabel() {
				if labels[l.GetName()] != l.GetValue() {
					continue next
				}
			}
			return m
		}
	}
	return nil
}

func counter(t *testing.T, reg *prometheus.Registry, name string, labels map[string]string) float64 {
	t.Helper()
	m := metric(t, reg, name, labels)
	if m == nil {
		t.Fatalf("no series %s%v", name, labels)
	}
	return m.GetCounter().GetValue()
}

// failoverObservation is a replica that last saw the leader's heartbeat 3 s ago.
func failoverObservation() *observation {
	o := &observation{}
	o.in.Now = 100 * time.Second
	o.in.LeaderSeenAt = 97 * time.Second
	o.in.LastLeader = "n1"
	o.in.PG.Timeline = 3
	o.in.PG.LSN = 0x3000060
	return o
}

// TestTraceFailover: an unplanned failover [acquire, promote] is one root span ha.failover
// with the detection time, the observe and decide steps, and a child per action; the Consul
// request inside the acquire is a child of ha.acquire.
func TestTraceFailover(t *testing.T) {
	t.Parallel()
	r := newRecorded(t, "n2")
	o := failoverObservation()
	p := ha.Plan{Reason: "leader is gone: taking over", Actions: []ha.Action{
		{Kind: ha.ActAcquire, Session: "dead-session"}, {Kind: ha.ActPromote},
	}}
	r.runCycle(t.Context(), o, p, func(ctx context.Context, a ha.Action) error {
		if a.Kind == ha.ActAcquire {
			r.n.telemetry().consulSpan(ctx, "kv.acquire", "service/demo/leader", time.Now().Add(-time.Millisecond), nil)
		}
		return nil
	})

	spans := r.rec.Ended()
	want := []string{
		"ha.observe <- ha.failover",
		"ha.decide <- ha.failover",
		"consul.acquire <- ha.acquire",
		"ha.acquire <- ha.failover",
		"ha.promote <- ha.failover",
		"ha.failover <- ",
	}
	if diff := cmp.Diff(want, spanTree(spans)); diff != "" {
		t.Fatalf("spans (-want +got):\n%s", diff)
	}
	for _, s := range spans {
		if s.SpanContext().TraceID() != spans[0].SpanContext().TraceID() {
			t.Errorf("%s is in another trace", s.Name())
		}
	}
	wantPromote := map[string]string{
		"node": "n2", "scope": "demo", "action": "promote", "reason": "leader is gone: taking over",
		"timeline": "3", "lsn": "0/3000060",
	}
	if diff := cmp.Diff(wantPromote, attrs(byName(spans, "ha.promote"))); diff != "" {
		t.Errorf("ha.promote attributes (-want +got):\n%s", diff)
	}
	root := attrs(byName(spans, "ha.failover"))
	if root["detection_seconds"] != "3" || root["last_leader"] != "n1" || root["plan"] != p.String() {
		t.Errorf("ha.failover attributes = %v; want detection_seconds 3, last_leader n1, plan %q", root, p.String())
	}
	if a := attrs(byName(spans, "consul.acquire")); a["op"] != "kv.acquire" || a["key"] != "service/demo/leader" {
		t.Errorf("consul.acquire attributes = %v", a)
	}
	if k := byName(spans, "consul.acquire").SpanKind(); k != trace.SpanKindClient {
		t.Errorf("consul.acquire kind = %v, want client", k)
	}

	if n, sum := histogram(t, r.reg, "ramd_failover_detection_seconds"); n != 1 || sum != 3 {
		t.Errorf("detection histogram: count %d sum %v, want 1 and 3", n, sum)
	}
	if n, sum := histogram(t, r.reg, "ramd_failover_duration_seconds"); n != 1 || sum <= 0 || sum > 5 {
		t.Errorf("failover histogram: count %d sum %v, want 1 and a short duration", n, sum)
	}
	if n, _ := histogram(t, r.reg, "ramd_switchover_duration_seconds"); n != 0 {
		t.Errorf("switchover histogram count %d, want 0", n)
	}
	for _, k := range []string{"acquire", "promote"} {
		if got := counter(t, r.reg, "ramd_actions_total", map[string]string{"action": k, "result": "ok"}); got != 1 {
			t.Errorf("ramd_actions_total{action=%s,result=ok} = %v, want 1", k, got)
		}
	}
	if got := counter(t, r.reg, "ramd_actions_total", map[string]string{"action": "fence", "result": "error"}); got != 0 {
		t.Errorf("ramd_actions_total{action=fence,result=error} = %v, want 0 (initialised)", got)
	}
	if n, _ := histogram(t, r.reg, "ramd_loop_duration_seconds"); n != 1 {
		t.Errorf("loop histogram count %d, want 1", n)
	}
	if m := metric(t, r.reg, "ramd_loop_last_success_timestamp_seconds", nil); m.GetGauge().GetValue() < float64(time.Now().Add(-time.Minute).Unix()) {
		t.Errorf("last success = %v, want now", m.GetGauge().GetValue())
	}
}

// TestTraceFailedAction: a failing action marks its span and the cycle's as errors, counts
// an error, and records no failover; the next cycle that promotes does.
func TestTraceFailedAction(t *testing.T) {
	t.Parallel()
	r := newRecorded(t, "n2")
	o := failoverObservation()
	p := ha.Plan{Reason: "leader is gone: taking over", Actions: []ha.Action{{Kind: ha.ActAcquire}, {Kind: ha.ActPromote}}}
	boom := errors.New("pg_promote: timeout")
	r.runCycle(t.Context(), o, p, func(_ context.Context, a ha.Action) error {
		if a.Kind == ha.ActPromote {
			return boom
		}
		return nil
	})
	spans := r.rec.Ended()
	// The action's span has the action's error; the cycle's the plan's, which names the
	// action that failed.
	for name, want := range map[string]string{"ha.promote": boom.Error(), "ha.failover": "promote: " + boom.Error()} {
		if s := byName(spans, name); s.Status().Code.String() != "Error" || s.Status().Description != want {
			t.Errorf("%s status = %v, want Error %q", name, s.Status(), want)
		}
	}
	if got := counter(t, r.reg, "ramd_actions_total", map[string]string{"action": "promote", "result": "error"}); got != 1 {
		t.Errorf("promote errors = %v, want 1", got)
	}
	if n, _ := histogram(t, r.reg, "ramd_failover_duration_seconds"); n != 0 {
		t.Errorf("failover recorded for a failed promotion")
	}
	if m := metric(t, r.reg, "ramd_loop_last_success_timestamp_seconds", nil); m.GetGauge().GetValue() != 0 {
		t.Errorf("last success moved on a failed cycle")
	}

	// Next cycle: holding the lock, promoting again; the detection is the first cycle's.
	p2 := ha.Plan{Reason: "holding the lock as a standby: promoting", Actions: []ha.Action{{Kind: ha.ActHeartbeat}, {Kind: ha.ActPromote}}}
	r.runCycle(t.Context(), o, p2, func(context.Context, ha.Action) error { return nil })
	if n, sum := histogram(t, r.reg, "ramd_failover_detection_seconds"); n != 1 || sum != 3 {
		t.Errorf("detection histogram: count %d sum %v, want 1 and 3", n, sum)
	}
}

// TestTraceRoutineCycle: the leader's heartbeat-only cycle makes no span, but is measured.
func TestTraceRoutineCycle(t *testing.T) {
	t.Parallel()
	r := newRecorded(t, "n1")
	o := &observation{}
	for range 3 {
		r.runCycle(t.Context(), o, ha.Plan{Reason: "leader", Actions: []ha.Action{{Kind: ha.ActHeartbeat}}},
			func(ctx context.Context, _ ha.Action) error {
				r.n.telemetry().consulSpan(ctx, "kv.txn", "service/demo/status", time.Now(), nil)
				return nil
			})
		r.runCycle(t.Context(), o, ha.Plan{Reason: "leader", Actions: []ha.Action{{Kind: ha.ActHeartbeat}, {Kind: ha.ActSyncStandbys}}},
			func(context.Context, ha.Action) error { return nil })
		r.runCycle(t.Context(), o, ha.Plan{Reason: "replica of n1"}, nil)
	}
	if spans := r.rec.Ended(); len(spans) != 0 {
		t.Errorf("routine cycles made spans: %v", spanTree(spans))
	}
	if n, _ := histogram(t, r.reg, "ramd_heartbeat_duration_seconds"); n != 6 {
		t.Errorf("heartbeat histogram count %d, want 6", n)
	}
	if n, _ := histogram(t, r.reg, "ramd_loop_duration_seconds"); n != 9 {
		t.Errorf("loop histogram count %d, want 9", n)
	}
	if got := counter(t, r.reg, "ramd_actions_total", map[string]string{"action": "sync_standbys", "result": "ok"}); got != 3 {
		t.Errorf("sync_standbys actions = %v, want 3", got)
	}
}

// apiSpan starts the span an API request would have, and the job record it writes.
func apiSpan(t *testing.T, tp trace.TracerProvider, created time.Time) (trace.Span, consul.Job) {
	t.Helper()
	ctx, span := tp.Tracer("api").Start(t.Context(), "POST /switchover", trace.WithSpanKind(trace.SpanKindServer))
	job := consul.Job{ID: "j1", CreatedAt: created, TraceParent: traceParent(ctx)}
	if job.TraceParent == "" {
		t.Fatal("no traceparent for a context with a span")
	}
	return span, job
}

// TestTraceSwitchoverOldPrimary: the old primary's cycle continues the request's trace; the
// switchover action has a span per phase.
func TestTraceSwitchoverOldPrimary(t *testing.T) {
	t.Parallel()
	r := newRecorded(t, "n1")
	req, job := apiSpan(t, r.tp, time.Now())
	reads := 0
	r.n.telemetry().readJob = func(_ context.Context, id string) (consul.Job, error) {
		reads++
		if id != job.ID {
			return consul.Job{}, consul.ErrNotFound
		}
		return job, nil
	}
	o := &observation{failover: &consul.Failover{Leader: "n1", Member: "n2", JobID: "j1"}}
	p := ha.Plan{Reason: "switchover to n2", Actions: []ha.Action{{Kind: ha.ActHeartbeat}, {Kind: ha.ActSwitchover, Target: "n2"}}}
	r.runCycle(t.Context(), o, p, func(ctx context.Context, a ha.Action) error {
		if a.Kind == ha.ActSwitchover {
			for _, phase := range []string{"checkpoint", "stopping", "waiting for candidate", "releasing"} {
				r.n.tracePhase(ctx, phase)
			}
		}
		return nil
	})
	req.End()

	spans := r.rec.Ended()
	want := []string{
		"ha.observe <- ha.cycle",
		"ha.decide <- ha.cycle",
		"ha.heartbeat <- ha.cycle",
		"switchover.checkpoint <- ha.switchover",
		"switchover.stop <- ha.switchover",
		"switchover.wait_candidate <- ha.switchover",
		"switchover.release <- ha.switchover",
		"ha.switchover <- ha.cycle",
		"ha.cycle <- POST /switchover",
		"POST /switchover <- ",
	}
	if diff := cmp.Diff(want, spanTree(spans)); diff != "" {
		t.Fatalf("spans (-want +got):\n%s", diff)
	}
	for _, s := range spans {
		if s.SpanContext().TraceID() != req.SpanContext().TraceID() {
			t.Errorf("%s is not in the request's trace", s.Name())
		}
	}
	if a := attrs(byName(spans, "ha.switchover")); a["target"] != "n2" || a["job_id"] != "j1" {
		t.Errorf("ha.switchover attributes = %v, want target n2 and job_id j1", a)
	}
	// A second cycle for the same job does not read it again.
	r.runCycle(t.Context(), o, p, func(context.Context, ha.Action) error { return nil })
	if reads != 1 {
		t.Errorf("job read %d times, want 1", reads)
	}
}

// TestTraceSwitchoverCandidate: the candidate's promotion joins the request's trace and
// records the switchover's duration from the request.
func TestTraceSwitchoverCandidate(t *testing.T) {
	t.Parallel()
	r := newRecorded(t, "n2")
	req, job := apiSpan(t, r.tp, time.Now().Add(-2*time.Second))
	r.n.telemetry().readJob = func(context.Context, string) (consul.Job, error) { return job, nil }
	o := failoverObservation()
	o.failover = &consul.Failover{Leader: "n1", Member: "n2", JobID: "j1"}
	p := ha.Plan{Reason: "leader is gone: taking over", Actions: []ha.Action{{Kind: ha.ActAcquire}, {Kind: ha.ActPromote}}}
	r.runCycle(t.Context(), o, p, func(ctx context.Context, a ha.Action) error {
		if a.Kind == ha.ActPromote {
			r.n.tracePhase(ctx, "promoted") // an event: no span of its own
		}
		return nil
	})
	req.End()
	spans := r.rec.Ended()
	want := []string{
		"ha.observe <- ha.cycle",
		"ha.decide <- ha.cycle",
		"ha.acquire <- ha.cycle",
		"ha.promote <- ha.cycle",
		"ha.cycle <- POST /switchover",
		"POST /switchover <- ",
	}
	if diff := cmp.Diff(want, spanTree(spans)); diff != "" {
		t.Fatalf("spans (-want +got):\n%s", diff)
	}
	if ev := byName(spans, "ha.promote").Events(); len(ev) != 1 || ev[0].Name != "promoted" {
		t.Errorf("ha.promote events = %v, want one \"promoted\"", ev)
	}
	if n, sum := histogram(t, r.reg, "ramd_switchover_duration_seconds"); n != 1 || sum < 2 || sum > 10 {
		t.Errorf("switchover histogram: count %d sum %v, want 1 and about 2 s", n, sum)
	}
	if n, _ := histogram(t, r.reg, "ramd_failover_duration_seconds"); n != 0 {
		t.Error("a switchover was recorded as a failover")
	}
}

// TestMetricsWithoutTracing: with metrics and no tracer provider (tracing off), a switchover
// is still measured from its job, and nothing builds spans.
func TestMetricsWithoutTracing(t *testing.T) {
	t.Parallel()
	reg := prometheus.NewRegistry()
	m, err := observability.NewMetrics(reg)
	if err != nil {
		t.Fatal(err)
	}
	n := &Node{cfg: Config{Name: "n2", Scope: "demo", RetryTimeout: time.Second}, logger: slog.New(slog.DiscardHandler)}
	n.setTelemetry(&Telemetry{Metrics: m})
	n.telemetry().readJob = func(context.Context, string) (consul.Job, error) {
		return consul.Job{ID: "j1", CreatedAt: time.Now().Add(-time.Second)}, nil
	}
	r := recorded{n: n, reg: reg}
	o := &observation{failover: &consul.Failover{Leader: "n1", Member: "n2", JobID: "j1"}}
	p := ha.Plan{Reason: "leader is gone: taking over", Actions: []ha.Action{{Kind: ha.ActAcquire}, {Kind: ha.ActPromote}}}
	r.runCycle(t.Context(), o, p, func(ctx context.Context, _ ha.Action) error {
		if trace.SpanFromContext(ctx).SpanContext().IsValid() {
			t.Error("an action runs in a span with tracing off")
		}
		return nil
	})
	if c, sum := histogram(t, reg, "ramd_switchover_duration_seconds"); c != 1 || sum < 1 {
		t.Errorf("switchover histogram: count %d sum %v, want 1 and about 1 s", c, sum)
	}
}

// TestTraceJobWithoutTraceparent: a job from an untraced request still gets a (root) cycle
// span, and a scheduled job's duration counts from its scheduled time.
func TestTraceJobWithoutTraceparent(t *testing.T) {
	t.Parallel()
	r := newRecorded(t, "n2")
	at := time.Now().Add(-time.Second).UTC().Truncate(time.Second)
	r.n.telemetry().readJob = func(context.Context, string) (consul.Job, error) {
		return consul.Job{ID: "j2", CreatedAt: at.Add(-time.Hour), ScheduledAt: at.Format(time.RFC3339)}, nil
	}
	o := &observation{failover: &consul.Failover{Leader: "n1", Member: "n2", JobID: "j2"}}
	p := ha.Plan{Reason: "leader is gone: taking over", Actions: []ha.Action{{Kind: ha.ActAcquire}, {Kind: ha.ActPromote}}}
	r.runCycle(t.Context(), o, p, func(context.Context, ha.Action) error { return nil })
	if root := byName(r.rec.Ended(), "ha.cycle"); root == nil || root.Parent().IsValid() {
		t.Errorf("cycle span %v: want a root ha.cycle", root)
	}
	if n, sum := histogram(t, r.reg, "ramd_switchover_duration_seconds"); n != 1 || sum > 60 {
		t.Errorf("switchover histogram: count %d sum %v, want 1 and measured from the scheduled time", n, sum)
	}
}

func TestConsulRequestResult(t *testing.T) {
	t.Parallel()
	r := newRecorded(t, "n1")
	tel := r.n.telemetry()
	tel.consulRequest("kv.get", time.Millisecond, nil)
	tel.consulRequest("kv.get", time.Millisecond, fmt.Errorf("get x: %w: dial tcp: refused", consul.ErrUnavailable))
	tel.consulRequest("kv.acquire", time.Millisecond, errors.New("Unexpected response code: 400"))
	for _, c := range []struct {
		op, result string
	}{{"kv.get", "ok"}, {"kv.get", "unavailable"}, {"kv.acquire", "error"}} {
		if got := counter(t, r.reg, "ramd_consul_requests_total", map[string]string{"op": c.op, "result": c.result}); got != 1 {
			t.Errorf("ramd_consul_requests_total{op=%s,result=%s} = %v, want 1", c.op, c.result, got)
		}
	}
	// Outside a span, a Consul request makes no span.
	tel.consulSpan(t.Context(), "kv.watch", "service/demo/status", time.Now(), nil)
	if n := len(r.rec.Ended()); n != 0 {
		t.Errorf("%d spans for a request outside any span", n)
	}
}

// TestTraceParent checks the traceparent recorded in a job.
func TestTraceParent(t *testing.T) {
	t.Parallel()
	if got := traceParent(t.Context()); got != "" {
		t.Errorf("traceParent without a span = %q, want empty", got)
	}
	tp := sdktrace.NewTracerProvider()
	ctx, span := tp.Tracer("t").Start(t.Context(), "x")
	defer span.End()
	got := traceParent(ctx)
	sc := trace.SpanContextFromContext(observability.Propagator().Extract(t.Context(), propagation.MapCarrier{"traceparent": got}))
	if sc.TraceID() != span.SpanContext().TraceID() || sc.SpanID() != span.SpanContext().SpanID() || !sc.IsSampled() {
		t.Errorf("traceparent %q does not name the span %v", got, span.SpanContext())
	}
}

// TestTelemetryDefault: a node without telemetry acts without spans or metrics.
func TestTelemetryDefault(t *testing.T) {
	t.Parallel()
	n := &Node{cfg: Config{Name: "n1", Scope: "demo", RetryTimeout: time.Second}, logger: slog.New(slog.DiscardHandler)}
	o := failoverObservation()
	p := ha.Plan{Reason: "x", Actions: []ha.Action{{Kind: ha.ActFence}}}
	tc := n.beginCycle()
	tc.observed()
	ctx := tc.decided(t.Context(), o, p)
	at := n.startAction(ctx, n.telemetry(), o, p, p.Actions[0])
	if trace.SpanFromContext(at.ctx).IsRecording() {
		t.Error("a node without telemetry records spans")
	}
	at.end(nil)
	tc.end(nil, true)
	if first, again := n.telemetry(), n.telemetry(); first != again {
		t.Error("the default telemetry is not kept")
	}
}

// discardExporter is an in-memory exporter that keeps only a count, so that a long
// benchmark does not grow without bound.
type discardExporter struct{ spans int }

func (e *discardExporter) ExportSpans(_ context.Context, s []sdktrace.ReadOnlySpan) error {
	e.spans += len(s)
	return nil
}
func (e *discardExporter) Shutdown(context.Context) error { return nil }

// BenchmarkCycleTelemetry measures what the telemetry adds to one HA cycle: the cycle
// wrapper, the action spans and one Consul request span per action, with no telemetry at
// all ("off"), with metrics and a no-op provider ("noop": what ramd runs without OTEL_*),
// and with metrics and the SDK's provider, a batch span processor and an in-memory exporter
// ("sdk"). "heartbeat" is the leader's steady cycle (no span),
// "failover" an acting cycle [acquire, promote].
func BenchmarkCycleTelemetry(b *testing.B) {
	plans := []struct {
		name string
		p    ha.Plan
	}{
		{"heartbeat", ha.Plan{Reason: "leader", Actions: []ha.Action{{Kind: ha.ActHeartbeat}}}},
		{"failover", ha.Plan{Reason: "leader is gone: taking over", Actions: []ha.Action{{Kind: ha.ActAcquire}, {Kind: ha.ActPromote}}}},
	}
	setups := []struct {
		name string
		tel  func() (*Telemetry, func())
	}{
		{"off", func() (*Telemetry, func()) { return nil, func() {} }},
		{"noop", func() (*Telemetry, func()) { // what cmd/ramd wires when no OTEL_* is set
			m, _ := observability.NewMetrics(prometheus.NewRegistry())
			return &Telemetry{TracerProvider: noop.NewTracerProvider(), Metrics: m}, func() {}
		}},
		{"sdk", func() (*Telemetry, func()) {
			m, _ := observability.NewMetrics(prometheus.NewRegistry())
			tp := sdktrace.NewTracerProvider(sdktrace.WithBatcher(&discardExporter{}))
			return &Telemetry{TracerProvider: tp, Metrics: m}, func() { _ = tp.Shutdown(context.Background()) }
		}},
	}
	for _, pl := range plans {
		for _, s := range setups {
			b.Run(pl.name+"/"+s.name, func(b *testing.B) {
				n := &Node{cfg: Config{Name: "n2", Scope: "demo", RetryTimeout: time.Second}, logger: slog.New(slog.DiscardHandler)}
				tel, stop := s.tel()
				defer stop()
				if tel != nil {
					n.setTelemetry(tel)
				}
				o := failoverObservation()
				ctx := context.Background()
				b.ReportAllocs()
				cpu0 := processCPU()
				for b.Loop() {
					tc := n.beginCycle()
					tc.observed()
					cctx := tc.decided(ctx, o, pl.p)
					t := n.telemetry()
					for _, a := range pl.p.Actions {
						at := n.startAction(cctx, t, o, pl.p, a)
						t.consulSpan(at.ctx, "kv.acquire", "service/demo/leader", at.start, nil)
						t.consulRequest("kv.acquire", time.Millisecond, nil)
						at.end(nil)
					}
					tc.end(nil, true)
				}
				// CPU time of the whole process (the exporter's goroutine included) per cycle:
				// unlike ns/op it does not grow when other processes take the CPU.
				b.ReportMetric(float64((processCPU()-cpu0).Nanoseconds())/float64(b.N), "cpu-ns/op")
			})
		}
	}
}

// processCPU is the user and system CPU time this process used so far.
func processCPU() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
