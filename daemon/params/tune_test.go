package params_test

import (
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/ramd-project/ramd/daemon/params"
)

// reference is the box of the published pgtune example: 16 GB, 8 CPUs, SSD, PostgreSQL 15.
func reference(w params.Workload) params.TuneInput {
	return params.TuneInput{MemoryBytes: 16 << 30, CPUs: 8, Storage: params.StorageSSD, Major: 15, Workload: w}
}

func suggestionMap(t *testing.T, in params.TuneInput) map[string]string {
	t.Helper()
	s, err := params.Tune(in)
	if err != nil {
		t.Fatalf("Tune(%+v): %v", in, err)
	}
	m := map[string]string{}
	for _, x := range s {
		if x.Reason == "" {
			t.Errorf("%s has no reason", x.Name)
		}
		m[x.Name] = x.Value
	}
	return m
}

// TestTuneReferenceFigures: the numbers pgtune publishes for 16 GB / 8 CPUs / SSD / PG 15.
func TestTuneReferenceFigures(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name     params.Workload
		workMem  string
		mwm      string
		minWAL   string
		maxWAL   string
		stats    string
		conns    string
		gather   string
		jit      string
		noJITRow bool
	}{
		{name: params.WorkloadWeb, workMem: "20164kB", mwm: "1GB", minWAL: "1GB", maxWAL: "4GB", stats: "100", conns: "200", gather: "4", jit: "off"},
		{name: params.WorkloadOLTP, workMem: "13617kB", mwm: "1GB", minWAL: "2GB", maxWAL: "8GB", stats: "100", conns: "300", gather: "4", jit: "off"},
		{name: params.WorkloadDW, workMem: "43690kB", mwm: "2GB", minWAL: "4GB", maxWAL: "16GB", stats: "500", conns: "40", gather: "4", noJITRow: true},
		{name: params.WorkloadMixed, workMem: "19418kB", mwm: "1GB", minWAL: "1GB", maxWAL: "4GB", stats: "100", conns: "100", gather: "4", jit: "off"},
	}
	for _, tc := range tests {
		t.Run(string(tc.name), func(t *testing.T) {
			t.Parallel()
			got := suggestionMap(t, reference(tc.name))
			want := map[string]string{
				"max_connections":                  tc.conns,
				"shared_buffers":                   "4GB",
				"effective_cache_size":             "12GB",
				"maintenance_work_mem":             tc.mwm,
				"checkpoint_completion_target":     "0.9",
				"wal_buffers":                      "16MB",
				"default_statistics_target":        tc.stats,
				"random_page_cost":                 "1.1",
				"effective_io_concurrency":         "200",
				"work_mem":                         tc.workMem,
				"huge_pages":                       "try",
				"min_wal_size":                     tc.minWAL,
				"max_wal_size":                     tc.maxWAL,
				"max_worker_processes":             "8",
				"max_parallel_workers_per_gather":  tc.gather,
				"max_parallel_workers":             "8",
				"max_parallel_maintenance_workers": "4",
			}
			if !tc.noJITRow {
				want["jit"] = tc.jit
			}
			if d := cmp.Diff(want, got); d != "" {
				t.Errorf("Tune(%s) (-want +got):\n%s", tc.name, d)
			}
		})
	}
}

func TestTuneEdges(t *testing.T) {
	t.Parallel()
	small := suggestionMap(t, params.TuneInput{MemoryBytes: 1 << 30, CPUs: 2, Storage: params.StorageHDD, Major: 13, Workload: params.WorkloadDesktop})
	want := map[string]string{
		"max_connections": "20", "shared_buffers": "64MB", "effective_cache_size": "256MB",
		"maintenance_work_mem": "64MB", "checkpoint_completion_target": "0.9", "wal_buffers": "1966kB",
		"default_statistics_target": "100", "random_page_cost": "4", "effective_io_concurrency": "2",
		"work_mem": "4MB", "min_wal_size": "100MB", "max_wal_size": "2GB", "jit": "off",
	}
	if d := cmp.Diff(want, small); d != "" {
		t.Errorf("desktop 1 GB 2 CPUs HDD (-want +got):\n%s", d)
	}
	conns := suggestionMap(t, params.TuneInput{MemoryBytes: 16 << 30, CPUs: 8, Storage: params.StorageSAN, Major: 17, Workload: params.WorkloadWeb, MaxConnections: 500})
	if conns["max_connections"] != "500" || conns["effective_io_concurrency"] != "300" {
		t.Errorf("max_connections 500, SAN: %v", conns)
	}
	for _, bad := range []params.TuneInput{
		{MemoryBytes: 16 << 30, CPUs: 8, Storage: "nvme", Major: 15, Workload: params.WorkloadWeb},
		{MemoryBytes: 16 << 30, CPUs: 8, Storage: params.StorageSSD, Major: 15, Workload: "batch"},
		{MemoryBytes: 1 << 20, CPUs: 8, Storage: params.StorageSSD, Major: 15, Workload: params.WorkloadWeb},
		{MemoryBytes: 16 << 30, CPUs: 0, Storage: params.StorageSSD, Major: 15, Workload: params.WorkloadWeb},
		{MemoryBytes: 16 << 30, CPUs: 8, Storage: params.StorageSSD, Major: 12, Workload: params.WorkloadWeb},
	} {
		if _, err := params.Tune(bad); err == nil {
			t.Errorf("Tune(%+v) accepted", bad)
		}
	}
}

// TestTuneSuggestionsValidate: every suggestion, for every workload and a range of
// machines, passes the validator of the installed server and ramd's rules for the node.
func TestTuneSuggestionsValidate(t *testing.T) {
	t.Parallel()
	cat, _ := realCatalog(t)
	for _, w := range []params.Workload{params.WorkloadWeb, params.WorkloadOLTP, params.WorkloadDW, params.WorkloadMixed, params.WorkloadDesktop} {
		for _, mem := range []int64{512 << 20, 2 << 30, 16 << 30, 256 << 30, 4 << 40} {
			for _, cpus := range []int{1, 4, 8, 64} {
				in := params.TuneInput{MemoryBytes: mem, CPUs: cpus, Storage: params.StorageSSD, Major: cat.Major(), Workload: w}
				s, err := params.Tune(in)
				if err != nil {
					t.Fatalf("Tune(%+v): %v", in, err)
				}
				set := map[string]string{}
				for _, x := range s {
					set[x.Name] = x.Value
				}
				rep := params.Review(cat, set, params.Facts{MemoryBytes: mem, Members: 3})
				if !rep.OK() {
					t.Errorf("Tune(%+v) refused: %+v", in, rep.Refusals)
				}
			}
		}
	}
}
