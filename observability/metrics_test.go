package observability

import (
	"bytes"
	"errors"
	"flag"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/prometheus/common/expfmt"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata")

// fixedGauges reads the same values at every scrape.
func fixedGauges() StatusGauges {
	return StatusGauges{
		LockHeld:              func() float64 { return 1 },
		ReplicationLagBytes:   func() float64 { return 0 },
		ReplicationLagSeconds: func() float64 { return 0 },
		SyncStandbys:          func() float64 { return 1 },
		PendingRestart:        func() float64 { return 0 },
	}
}

// exampleRegistry holds every ramd_* metric with one observation of each kind.
func exampleRegistry(t *testing.T) *prometheus.Registry {
	t.Helper()
	reg := prometheus.NewPedanticRegistry()
	m, err := NewMetrics(reg)
	if err != nil {
		t.Fatal(err)
	}
	if err := RegisterStatusGauges(reg, fixedGauges()); err != nil {
		t.Fatal(err)
	}
	m.InitActions("acquire", "promote")
	m.ObserveLoop(20*time.Millisecond, true, time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC))
	m.ObserveLoop(300*time.Millisecond, false, time.Date(2026, 3, 1, 12, 0, 1, 0, time.UTC))
	m.ObserveAction("acquire", nil)
	m.ObserveAction("promote", errors.New("boom"))
	m.ObserveHeartbeat(3 * time.Millisecond)
	m.ObserveFailover(3200*time.Millisecond, 450*time.Millisecond)
	m.ObserveFailover(-1, 2*time.Second)
	m.ObserveSwitchover(1200 * time.Millisecond)
	m.ObserveConsulRequest("kv.get", ResultOK, 800*time.Microsecond)
	m.ObserveConsulRequest("kv.txn", ResultUnavailable, 2*time.Second)
	return reg
}

// TestMetricsGolden compares the names, help texts, types and values of every ramd_* metric
// with testdata/metrics.golden (go test -update rewrites it).
func TestMetricsGolden(t *testing.T) {
	t.Parallel()
	reg := exampleRegistry(t)
	path := filepath.Join("testdata", "metrics.golden")
	if *update {
		families, err := reg.Gather()
		if err != nil {
			t.Fatal(err)
		}
		var buf bytes.Buffer
		enc := expfmt.NewEncoder(&buf, expfmt.NewFormat(expfmt.TypeTextPlain))
		for _, f := range families {
			if err := enc.Encode(f); err != nil {
				t.Fatal(err)
			}
		}
		if err := os.WriteFile(path, buf.Bytes(), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("read golden file (run go test -update to create it): %v", err)
	}
	if err := testutil.GatherAndCompare(reg, bytes.NewReader(want)); err != nil {
		t.Error(err)
	}
}

// TestMetricsLint lints every ramd_* metric, each collector on its own and all gathered.
func TestMetricsLint(t *testing.T) {
	t.Parallel()
	reg := exampleRegistry(t)
	problems, err := testutil.GatherAndLint(reg)
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range problems {
		t.Errorf("lint %s: %s", p.Metric, p.Text)
	}
	m, err := NewMetrics(prometheus.NewRegistry())
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []prometheus.Collector{m.loopDuration, m.loopLastSuccess, m.actions, m.failoverDuration,
		m.failoverDetection, m.switchoverDuration, m.heartbeatDuration, m.consulDuration, m.consulRequests} {
		problems, err := testutil.CollectAndLint(c)
		if err != nil {
			t.Fatal(err)
		}
		for _, p := range problems {
			t.Errorf("lint %s: %s", p.Metric, p.Text)
		}
	}
}

func TestMetricsValues(t *testing.T) {
	t.Parallel()
	reg := prometheus.NewRegistry()
	m, err := NewMetrics(reg)
	if err != nil {
		t.Fatal(err)
	}
	end := time.Unix(1_772_366_400, 500_000_000)
	m.ObserveLoop(time.Millisecond, true, end)
	m.ObserveLoop(time.Millisecond, false, end.Add(time.Hour)) // a failed cycle does not move it
	if got := testutil.ToFloat64(m.loopLastSuccess); got != 1_772_366_400.5 {
		t.Errorf("last success = %v, want 1772366400.5", got)
	}
	m.ObserveAction("fence", nil)
	m.ObserveAction("fence", errors.New("x"))
	m.ObserveAction("fence", nil)
	got := map[string]float64{
		"ok":    testutil.ToFloat64(m.actions.WithLabelValues("fence", ResultOK)),
		"error": testutil.ToFloat64(m.actions.WithLabelValues("fence", ResultError)),
	}
	if diff := cmp.Diff(map[string]float64{"ok": 2, "error": 1}, got); diff != "" {
		t.Errorf("ramd_actions_total{action=fence} (-want +got):\n%s", diff)
	}
	m.ObserveConsulRequest("kv.acquire", ResultError, time.Millisecond)
	if n := testutil.CollectAndCount(m.consulRequests); n != 1 {
		t.Errorf("consul request series = %d, want 1", n)
	}
	if _, err := NewMetrics(reg); err == nil {
		t.Error("registering the metrics twice on one registry did not fail")
	}
	if err := RegisterStatusGauges(reg, StatusGauges{}); err != nil {
		t.Fatal(err)
	}
	if err := RegisterStatusGauges(reg, fixedGauges()); err != nil {
		t.Errorf("registering the status gauges again: %v", err)
	}
	if n, err := testutil.GatherAndCount(reg, "ramd_lock_held"); err != nil || n != 1 {
		t.Errorf("ramd_lock_held series = %d (%v), want 1", n, err)
	}
}

// TestMetricsNil checks that a nil *Metrics is a valid "no metrics".
func TestMetricsNil(t *testing.T) {
	t.Parallel()
	var m *Metrics
	m.InitActions("x")
	m.ObserveLoop(time.Second, true, time.Now())
	m.ObserveAction("x", nil)
	m.ObserveHeartbeat(time.Second)
	m.ObserveFailover(time.Second, time.Second)
	m.ObserveSwitchover(time.Second)
	m.ObserveConsulRequest("kv.get", ResultOK, time.Second)
}
