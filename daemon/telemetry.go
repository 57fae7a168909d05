package daemon

import (
	"context"
	"errors"
	"strings"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/trace"
	"go.opentelemetry.io/otel/trace/noop"

	"github.com/ramd-project/ramd/consul"
	"github.com/ramd-project/ramd/daemon/ha"
	"github.com/ramd-project/ramd/daemon/pg"
	"github.com/ramd-project/ramd/observability"
)

// Telemetry is what a node reports to. Either field may be nil: no spans, or no metrics.
type Telemetry struct {
	// TracerProvider makes the spans of the HA loop's actions and of Consul requests made
	// inside them.
	TracerProvider trace.TracerProvider
	// Metrics receives the loop, action, failover, switchover and Consul measurements.
	Metrics *observability.Metrics
}

// tracerName is the instrumentation scope of the loop's spans.
const tracerName = "github.com/ramd-project/ramd/daemon"

// Span names. They are fixed and few: what varies goes in attributes.
const (
	// spanCycle is a cycle whose plan does more than the leader's heartbeat.
	spanCycle = "ha.cycle"
	// spanFailover is the root span of a cycle that takes over from a leader that is gone
	// (no switchover request behind it).
	spanFailover = "ha.failover"
	// spanObserve and spanDecide are the first two steps of a traced cycle.
	spanObserve = "ha.observe"
	spanDecide  = "ha.decide"
	// spanActionPrefix + the action kind names each action's span: ha.acquire, ha.promote,
	// ha.fence, ha.rewind (pg_rewind), ha.clone (pg_basebackup), ha.switchover, ...
	spanActionPrefix = "ha."
	// spanConsulPrefix + the operation names a Consul request made inside a traced action:
	// consul.acquire, consul.release, consul.txn, consul.session.destroy, ...
	spanConsulPrefix = "consul."
)

// Attribute keys of the loop's spans, the same words as the log keys.
const (
	attrNode      = attribute.Key("node")
	attrScope     = attribute.Key("scope")
	attrAction    = attribute.Key("action")
	attrReason    = attribute.Key("reason")
	attrPlan      = attribute.Key("plan")
	attrTimeline  = attribute.Key("timeline")
	attrLSN       = attribute.Key("lsn")
	attrTarget    = attribute.Key("target")
	attrJobID     = attribute.Key("job_id")
	attrLeader    = attribute.Key("last_leader")
	attrDetection = attribute.Key("detection_seconds")
	attrOp        = attribute.Key("op")
	attrKey       = attribute.Key("key")
)

// phaseSpans names the switchover phases (jobPhase) that get a span of their own; every
// other phase is an event on the current span.
var phaseSpans = map[string]string{
	"checkpoint":            "switchover.checkpoint",
	"stopping":              "switchover.stop",
	"waiting for candidate": "switchover.wait_candidate",
	"releasing":             "switchover.release",
}

// actionKinds are the action kinds whose ramd_actions_total series exist from the start.
var actionKinds = []ha.Kind{
	ha.ActBootstrap, ha.ActClaimInitialize, ha.ActClone, ha.ActReclone, ha.ActRewind,
	ha.ActStartReplica, ha.ActFollow, ha.ActHeartbeat, ha.ActFailsafe, ha.ActStartPrimary,
	ha.ActAcquire, ha.ActPromote, ha.ActSwitchover, ha.ActRejectSwitchover, ha.ActFence,
	ha.ActRelease, ha.ActFenceUnresponsive, ha.ActSyncStandbys,
}

// telemetry is a node's tracer and metrics, and what the loop remembers between cycles to
// report failovers and switchovers.
type telemetry struct {
	tracer trace.Tracer
	// tracing is false when the provider records nothing (none given, or a no-op one): the
	// loop then skips building spans and their attributes altogether.
	tracing     bool
	metrics     *observability.Metrics
	node, scope string
	// readJob reads a switchover job; nil means the node's Job (tests replace it).
	readJob func(ctx context.Context, id string) (consul.Job, error)

	// Loop goroutine only.
	job jobTrace
	// failoverAt is the start of the cycle that decided to take over from a dead leader,
	// zero when no unplanned failover is under way; detection is how long before it the
	// last heartbeat was seen (-1 when unknown).
	failoverAt time.Time
	detection  time.Duration
	// phase is the open span of a switchover phase, nil when none.
	phase trace.Span
}

// jobTrace is what a switchover job record tells the loop: where its trace continues and
// when it was asked for.
type jobTrace struct {
	id     string
	parent trace.SpanContext // the requesting API call's span, invalid when none
	start  time.Time         // created, or scheduled when later; zero when unknown
}

func newTelemetry(t *Telemetry, node, scope string) *telemetry {
	tel := &telemetry{node: node, scope: scope, detection: -1}
	var tp trace.TracerProvider = noop.NewTracerProvider()
	if t != nil {
		if _, isNoop := t.TracerProvider.(noop.TracerProvider); t.TracerProvider != nil && !isNoop {
			tp, tel.tracing = t.TracerProvider, true
		}
		tel.metrics = t.Metrics
	}
	tel.tracer = tp.Tracer(tracerName, trace.WithInstrumentationVersion(Version))
	return tel
}

// setTelemetry makes the node report to t (nil: record nothing): spans for every cycle that
// acts (not for the leader's routine heartbeat) with a child per action and per Consul
// request, and the ramd_* loop, action, failover, switchover and Consul metrics. New calls it.
func (n *Node) setTelemetry(t *Telemetry) {
	tel := newTelemetry(t, n.cfg.Name, n.cfg.Scope)
	n.tel = tel
	if t == nil {
		return
	}
	kinds := make([]string, len(actionKinds))
	for i, k := range actionKinds {
		kinds[i] = string(k)
	}
	tel.metrics.InitActions(kinds...)
	if n.consul != nil {
		n.consul.SetObserver(tel.consulRequest)
		if tel.tracing {
			n.consul.SetSpanObserver(tel.consulSpan)
		}
	}
}

// telemetry returns the node's telemetry (one that records nothing for a Node not made by
// New, as some tests build).
func (n *Node) telemetry() *telemetry {
	if n.tel == nil {
		n.tel = newTelemetry(nil, n.cfg.Name, n.cfg.Scope)
	}
	return n.tel
}

// routine reports whether the plan is a steady state: nothing, or only what the leader does
// every cycle (the heartbeat, and in synchronous mode the reconcile of the sync standbys).
// Such a cycle gets metrics but no span.
func routine(p ha.Plan) bool {
	for _, a := range p.Actions {
		if a.Kind != ha.ActHeartbeat && a.Kind != ha.ActSyncStandbys {
			return false
		}
	}
	return true
}

// cycleTrace follows one cycle. It lives on the loop's stack.
type cycleTrace struct {
	n          *Node
	t          *telemetry
	start      time.Time
	observedAt time.Time
	span       trace.Span // nil when the cycle is not traced
}

// beginCycle starts following a cycle.
func (n *Node) beginCycle() cycleTrace {
	return cycleTrace{n: n, t: n.telemetry(), start: time.Now()}
}

// observed marks the end of the observe step.
func (c *cycleTrace) observed() { c.observedAt = time.Now() }

// decided starts the cycle's span when the plan acts, with the observe and decide steps as
// children, and returns the context the act and publish steps run in. A cycle that serves a
// switchover job continues the trace of the API request that created it; an unplanned
// failover is a root span of its own (ha.failover) with the detection time.
func (c *cycleTrace) decided(ctx context.Context, o *observation, p ha.Plan) context.Context {
	decidedAt := time.Now()
	t, n := c.t, c.n
	jobID := switchoverJobID(o, n.cfg.Name)
	unplanned := p.Has(ha.ActPromote) && jobID == ""
	switch {
	case !unplanned:
		t.failoverAt, t.detection = time.Time{}, -1
	case p.Has(ha.ActAcquire) && t.failoverAt.IsZero():
		t.failoverAt, t.detection = c.start, -1
		if o.in.LeaderSeenAt > 0 && o.in.Now >= o.in.LeaderSeenAt {
			t.detection = o.in.Now - o.in.LeaderSeenAt
		}
	}
	if !t.tracing || routine(p) {
		if jobID != "" && p.Has(ha.ActPromote) {
			n.switchoverJob(ctx, t, jobID) // for ramd_switchover_duration_seconds
		}
		return ctx
	}

	name, parent := spanCycle, ctx
	attrs := []attribute.KeyValue{
		attrNode.String(t.node), attrScope.String(t.scope), attrPlan.String(p.String()),
		attrReason.String(p.Reason), attrTimeline.Int(o.in.PG.Timeline), attrLSN.String(pg.LSN(o.in.PG.LSN).String()),
	}
	if jobID != "" {
		attrs = append(attrs, attrJobID.String(jobID))
		if j := n.switchoverJob(ctx, t, jobID); j.parent.IsValid() {
			parent = trace.ContextWithRemoteSpanContext(ctx, j.parent)
		}
	}
	if unplanned {
		name = spanFailover
		attrs = append(attrs, attrLeader.String(o.in.LastLeader))
		if t.detection >= 0 {
			attrs = append(attrs, attrDetection.Float64(t.detection.Seconds()))
		}
	}
	ctx, c.span = t.tracer.Start(parent, name, trace.WithTimestamp(c.start), trace.WithAttributes(attrs...))
	_, s := t.tracer.Start(ctx, spanObserve, trace.WithTimestamp(c.start))
	s.End(trace.WithTimestamp(c.observedAt))
	_, s = t.tracer.Start(ctx, spanDecide, trace.WithTimestamp(c.observedAt),
		trace.WithAttributes(attrPlan.String(p.String()), attrReason.String(p.Reason)))
	s.End(trace.WithTimestamp(decidedAt))
	return ctx
}

// end records the cycle's duration and, when it reached Consul and every action
// succeeded, its success; then ends the span.
func (c *cycleTrace) end(err error, consulOK bool) {
	now := time.Now()
	c.t.metrics.ObserveLoop(now.Sub(c.start), err == nil && consulOK, now)
	if c.span != nil {
		failed(c.span, err)
		c.span.End(trace.WithTimestamp(now))
	}
}

// switchoverJobID is the job behind a pending switchover or manual failover that this
// node takes part in (as the leader handing over, or as the candidate), "" when none.
func switchoverJobID(o *observation, name string) string {
	f := o.failover
	if f == nil || f.JobID == "" {
		return ""
	}
	if f.Member != "" && f.Member != name && f.Leader != name {
		return ""
	}
	return f.JobID
}

// switchoverJob reads job id once per job (again only after a failed read).
func (n *Node) switchoverJob(ctx context.Context, t *telemetry, id string) jobTrace {
	if t.job.id == id {
		return t.job
	}
	read := t.readJob
	if read == nil {
		read = n.Job
	}
	cctx, cancel := context.WithTimeout(ctx, n.timings().RetryTimeout)
	j, err := read(cctx, id)
	cancel()
	if err != nil {
		return jobTrace{id: id}
	}
	jt := jobTrace{id: id, start: j.CreatedAt}
	if at, err := time.Parse(time.RFC3339, j.ScheduledAt); err == nil && at.After(jt.start) {
		jt.start = at
	}
	if j.TraceParent != "" {
		carrier := propagation.MapCarrier{"traceparent": j.TraceParent}
		// The job's trace continues from the request that created it, not from this cycle.
		jt.parent = trace.SpanContextFromContext(observability.Propagator().Extract(context.Background(), carrier)) //nolint:contextcheck // a remote parent, on purpose
	}
	t.job = jt
	return jt
}

// actionTrace follows one action. It lives on the loop's stack.
type actionTrace struct {
	t     *telemetry
	ctx   context.Context
	span  trace.Span // nil when the cycle is not traced
	kind  ha.Kind
	job   string
	start time.Time
}

// startAction starts following action a of plan p: a child span of the cycle's span (when
// the cycle is traced) whose context the action runs in.
func (n *Node) startAction(ctx context.Context, t *telemetry, o *observation, p ha.Plan, a ha.Action) actionTrace {
	at := actionTrace{t: t, ctx: ctx, kind: a.Kind, job: switchoverJobID(o, n.cfg.Name), start: time.Now()}
	if !t.tracing || !trace.SpanFromContext(ctx).IsRecording() {
		return at
	}
	attrs := []attribute.KeyValue{
		attrNode.String(t.node), attrScope.String(t.scope), attrAction.String(string(a.Kind)),
		attrReason.String(p.Reason), attrTimeline.Int(o.in.PG.Timeline), attrLSN.String(pg.LSN(o.in.PG.LSN).String()),
	}
	if a.Target != "" {
		attrs = append(attrs, attrTarget.String(a.Target))
	}
	if at.job != "" {
		attrs = append(attrs, attrJobID.String(at.job))
	}
	at.ctx, at.span = t.tracer.Start(ctx, spanActionPrefix+string(a.Kind), trace.WithAttributes(attrs...))
	return at
}

// end counts the action, records heartbeat, failover and switchover durations, and ends
// the action's span (and any switchover phase left open).
func (at *actionTrace) end(err error) {
	t := at.t
	now := time.Now()
	t.metrics.ObserveAction(string(at.kind), err)
	switch {
	case at.kind == ha.ActHeartbeat:
		t.metrics.ObserveHeartbeat(now.Sub(at.start))
	case at.kind == ha.ActPromote && err == nil:
		t.promoted(at.job, now)
	}
	t.endPhase()
	if at.span != nil {
		failed(at.span, err)
		at.span.End(trace.WithTimestamp(now))
	}
}

// promoted records a successful promotion at now: a switchover's duration from its
// request, or an unplanned failover's from its decision.
func (t *telemetry) promoted(job string, now time.Time) {
	switch {
	case job != "":
		if t.job.id == job && !t.job.start.IsZero() {
			t.metrics.ObserveSwitchover(now.Sub(t.job.start))
		}
	case !t.failoverAt.IsZero():
		t.metrics.ObserveFailover(t.detection, now.Sub(t.failoverAt))
	}
	t.failoverAt, t.detection = time.Time{}, -1
}

// tracePhase marks a switchover phase reached on this node: it closes the previous phase's
// span and opens this one's as a child of the span in ctx (phases without a span of their
// own become events).
func (n *Node) tracePhase(ctx context.Context, phase string) {
	t := n.telemetry()
	t.endPhase()
	parent := trace.SpanFromContext(ctx)
	if !parent.IsRecording() {
		return
	}
	name, ok := phaseSpans[phase]
	if !ok {
		parent.AddEvent(phase)
		return
	}
	_, t.phase = t.tracer.Start(ctx, name, trace.WithAttributes(attrNode.String(t.node), attrScope.String(t.scope)))
}

// endPhase ends the open phase span, if any.
func (t *telemetry) endPhase() {
	if t.phase != nil {
		t.phase.End()
		t.phase = nil
	}
}

// consulRequest feeds ramd_consul_request_duration_seconds and ramd_consul_requests_total.
func (t *telemetry) consulRequest(op string, d time.Duration, err error) {
	result := observability.ResultOK
	switch {
	case errors.Is(err, consul.ErrUnavailable):
		result = observability.ResultUnavailable
	case err != nil:
		result = observability.ResultError
	}
	t.metrics.ObserveConsulRequest(op, result, d)
}

// consulSpan records a Consul request made inside a traced span as its child, after the
// fact (the request started at start and ends now). Requests outside spans (watches, idle
// cycles) record nothing.
func (t *telemetry) consulSpan(ctx context.Context, op, key string, start time.Time, err error) {
	if !t.tracing || !trace.SpanFromContext(ctx).IsRecording() {
		return
	}
	_, s := t.tracer.Start(ctx, spanConsulPrefix+strings.TrimPrefix(op, "kv."),
		trace.WithTimestamp(start), trace.WithSpanKind(trace.SpanKindClient),
		trace.WithAttributes(attrOp.String(op), attrKey.String(key)))
	failed(s, err)
	s.End()
}

// failed marks span as failed with err (nothing when err is nil).
func failed(span trace.Span, err error) {
	if err == nil {
		return
	}
	span.RecordError(err)
	span.SetStatus(codes.Error, err.Error())
}

// traceParent is the W3C traceparent of the span in ctx ("" when there is none), for a
// switchover job to carry to the nodes that carry it out.
func traceParent(ctx context.Context) string {
	if !trace.SpanContextFromContext(ctx).IsValid() {
		return ""
	}
	carrier := propagation.MapCarrier{}
	observability.Propagator().Inject(ctx, carrier)
	return carrier.Get("traceparent")
}
