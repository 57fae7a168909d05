package observability

import (
	"errors"
	"fmt"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// Results of ramd_actions_total and ramd_consul_requests_total.
const (
	ResultOK    = "ok"
	ResultError = "error"
	// ResultUnavailable is a Consul request that got no answer, timed out or got a 5xx.
	ResultUnavailable = "unavailable"
)

// Histogram buckets, in seconds. Each says what it must resolve.
var (
	// loopBuckets: an idle cycle takes a few milliseconds; a promotion, a switchover or a
	// pg_rewind takes from a second to minutes.
	loopBuckets = []float64{.0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30, 60}
	// failoverBuckets: from the decision to a promoted PostgreSQL is well under a second
	// when nothing goes wrong; the detection before it is about RAMD_TTL (3 s by default).
	failoverBuckets = []float64{.1, .25, .5, 1, 2, 3, 4, 5, 7.5, 10, 15, 30, 60}
	// switchoverBuckets: a request to a promoted candidate is about a second; a slow
	// checkpoint or a lagging candidate makes it tens of seconds.
	switchoverBuckets = []float64{.25, .5, 1, 2, 3, 5, 7.5, 10, 15, 30, 60}
	// requestBuckets: a local agent answers in a millisecond; the heartbeat transaction
	// goes through raft; a blocking query (kv.watch) waits up to 30 s by design.
	requestBuckets = []float64{.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30}
)

// Metrics are the measurements the HA loop and the Consul client report, registered on the
// process's registry. Every method is safe on a nil *Metrics (and then does nothing), and
// safe for concurrent use.
type Metrics struct {
	loopDuration       prometheus.Histogram
	loopLastSuccess    prometheus.Gauge
	actions            *prometheus.CounterVec
	failoverDuration   prometheus.Histogram
	failoverDetection  prometheus.Histogram
	switchoverDuration prometheus.Histogram
	heartbeatDuration  prometheus.Histogram
	consulDuration     *prometheus.HistogramVec
	consulRequests     *prometheus.CounterVec
}

// NewMetrics builds ramd's metrics and registers them on reg.
func NewMetrics(reg prometheus.Registerer) (*Metrics, error) {
	m := &Metrics{
		loopDuration: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "ramd_loop_duration_seconds",
			Help:    "Duration of one HA loop cycle: observe, decide, act and publish.",
			Buckets: loopBuckets,
		}),
		loopLastSuccess: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "ramd_loop_last_success_timestamp_seconds",
			Help: "Unix time of the end of the last HA loop cycle that reached Consul and whose actions all succeeded, 0 if none yet.",
		}),
		actions: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "ramd_actions_total",
			Help: "HA actions run, by action kind and result (ok or error).",
		}, []string{"action", "result"}),
		failoverDuration: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "ramd_failover_duration_seconds",
			Help:    "Unplanned failovers won by this node: from the cycle that decided the leader was gone to PostgreSQL promoted.",
			Buckets: failoverBuckets,
		}),
		failoverDetection: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "ramd_failover_detection_seconds",
			Help:    "Unplanned failovers won by this node: from the last leader heartbeat it saw to the decision to take over.",
			Buckets: failoverBuckets,
		}),
		switchoverDuration: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "ramd_switchover_duration_seconds",
			Help:    "Switchovers and manual failovers to this node: from the request (or its scheduled time) to PostgreSQL promoted.",
			Buckets: switchoverBuckets,
		}),
		heartbeatDuration: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "ramd_heartbeat_duration_seconds",
			Help:    "Duration of the leader's heartbeat action (the Consul transaction, or the failsafe round that replaces it).",
			Buckets: requestBuckets,
		}),
		consulDuration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "ramd_consul_request_duration_seconds",
			Help:    "Duration of Consul HTTP requests by operation; kv.watch includes the blocking wait.",
			Buckets: requestBuckets,
		}, []string{"op"}),
		consulRequests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "ramd_consul_requests_total",
			Help: "Consul HTTP requests by operation and result (ok, error for an error answer, unavailable for no answer, a timeout or a 5xx).",
		}, []string{"op", "result"}),
	}
	var errs []error
	for _, c := range []prometheus.Collector{
		m.loopDuration, m.loopLastSuccess, m.actions, m.failoverDuration, m.failoverDetection,
		m.switchoverDuration, m.heartbeatDuration, m.consulDuration, m.consulRequests,
	} {
		if err := reg.Register(c); err != nil {
			errs = append(errs, err)
		}
	}
	if err := errors.Join(errs...); err != nil {
		return nil, fmt.Errorf("register ramd metrics: %w", err)
	}
	return m, nil
}

// InitActions creates the ok and error series of each action kind at 0, so that rates and
// alerts see a series before the first occurrence.
func (m *Metrics) InitActions(kinds ...string) {
	if m == nil {
		return
	}
	for _, k := range kinds {
		m.actions.WithLabelValues(k, ResultOK)
		m.actions.WithLabelValues(k, ResultError)
	}
}

// ObserveLoop records one cycle that took d and ended at end; success moves
// ramd_loop_last_success_timestamp_seconds to end.
func (m *Metrics) ObserveLoop(d time.Duration, success bool, end time.Time) {
	if m == nil {
		return
	}
	m.loopDuration.Observe(d.Seconds())
	if success {
		m.loopLastSuccess.Set(float64(end.UnixNano()) / 1e9)
	}
}

// ObserveAction counts one action of kind with its outcome.
func (m *Metrics) ObserveAction(kind string, err error) {
	if m == nil {
		return
	}
	result := ResultOK
	if err != nil {
		result = ResultError
	}
	m.actions.WithLabelValues(kind, result).Inc()
}

// ObserveHeartbeat records the duration of one heartbeat action.
func (m *Metrics) ObserveHeartbeat(d time.Duration) {
	if m == nil {
		return
	}
	m.heartbeatDuration.Observe(d.Seconds())
}

// ObserveFailover records an unplanned failover this node won: detection is the time from
// the last leader heartbeat it saw to its decision (negative when unknown: not recorded),
// took the time from the decision to the promotion.
func (m *Metrics) ObserveFailover(detection, took time.Duration) {
	if m == nil {
		return
	}
	if detection >= 0 {
		m.failoverDetection.Observe(detection.Seconds())
	}
	m.failoverDuration.Observe(took.Seconds())
}

// ObserveSwitchover records a switchover to this node that took d from request to promotion.
func (m *Metrics) ObserveSwitchover(d time.Duration) {
	if m == nil {
		return
	}
	m.switchoverDuration.Observe(max(d, 0).Seconds())
}

// ObserveConsulRequest records one Consul request: its operation (a fixed name such as
// kv.get or session.renew, never a key), its result (ResultOK, ResultError or
// ResultUnavailable) and its duration.
func (m *Metrics) ObserveConsulRequest(op, result string, d time.Duration) {
	if m == nil {
		return
	}
	m.consulDuration.WithLabelValues(op).Observe(d.Seconds())
	m.consulRequests.WithLabelValues(op, result).Inc()
}

// StatusGauges are the values read from the HA loop's published Status at scrape time.
// A nil function reads 0.
type StatusGauges struct {
	// LockHeld is 1 while this node holds the leader lock.
	LockHeld func() float64
	// ReplicationLagBytes is how far this replica's replay is behind the leader's position.
	ReplicationLagBytes func() float64
	// ReplicationLagSeconds is the age of the last replayed transaction while replay is
	// behind, 0 when caught up.
	ReplicationLagSeconds func() float64
	// SyncStandbys is the number of synchronous (or quorum) standbys of this primary.
	SyncStandbys func() float64
	// PendingRestart is 1 when PostgreSQL needs a restart to apply a parameter change.
	PendingRestart func() float64
	// ConfigValid is 1 while the member acts on a valid configuration read from Consul.
	ConfigValid func() float64
	// SyncDegraded is 1 while a leader in synchronous mode acknowledges commits without a
	// synchronous standby.
	SyncDegraded func() float64
}

// RegisterStatusGauges registers the gauges of g on reg as GaugeFuncs: the values stay in
// the Status snapshot, the gauges only read them. Registering the same gauges again is not
// an error.
func RegisterStatusGauges(reg prometheus.Registerer, g StatusGauges) error {
	gauges := []struct {
		name, help string
		f          func() float64
	}{
		{"ramd_lock_held", "1 while this node holds the leader lock, 0 otherwise.", g.LockHeld},
		{"ramd_replication_lag_bytes", "Bytes of WAL this replica has yet to replay to reach the leader's last known position, 0 on the primary or when PostgreSQL is not running.", g.ReplicationLagBytes},
		{"ramd_replication_lag_seconds", "Age of the last transaction this replica replayed while replay is behind the leader, 0 when caught up, on the primary or when PostgreSQL is not running.", g.ReplicationLagSeconds},
		{"ramd_sync_standbys", "Number of synchronous or quorum standbys PostgreSQL reports on this primary, 0 on replicas.", g.SyncStandbys},
		{"ramd_pending_restart", "1 if PostgreSQL needs a restart to apply a parameter change, 0 otherwise.", g.PendingRestart},
		{"ramd_config_valid", "1 while this member acts on a valid dynamic configuration read from Consul, 0 while the config key is missing or refused (the last valid one stays in force).", g.ConfigValid},
		{"ramd_sync_degraded", "1 while this leader is in synchronous mode but acknowledges commits without a synchronous standby, 0 otherwise.", g.SyncDegraded},
	}
	var errs []error
	for _, gg := range gauges {
		f := gg.f
		if f == nil {
			f = func() float64 { return 0 }
		}
		err := reg.Register(prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: gg.name, Help: gg.help}, f))
		if are := (prometheus.AlreadyRegisteredError{}); err != nil && !errors.As(err, &are) {
			errs = append(errs, err)
		}
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("register status gauges: %w", err)
	}
	return nil
}
