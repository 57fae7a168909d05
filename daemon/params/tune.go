package params

import (
	"fmt"
	"strconv"
)

// Workload is the kind of use Tune sizes the server for (pgtune's "DB type").
type Workload string

// Workloads, as pgtune names them.
const (
	WorkloadWeb     Workload = "web"     // web application: many short queries
	WorkloadOLTP    Workload = "oltp"    // online transaction processing
	WorkloadDW      Workload = "dw"      // data warehouse: few large queries
	WorkloadMixed   Workload = "mixed"   // mixed
	WorkloadDesktop Workload = "desktop" // a developer's machine
)

// Storage is the kind of disk under the data directory.
type Storage string

// Storage kinds.
const (
	StorageSSD Storage = "ssd"
	StorageHDD Storage = "hdd"
	StorageSAN Storage = "san"
)

// TuneInput describes the node and its use.
type TuneInput struct {
	MemoryBytes    int64 // memory for PostgreSQL (cgroup limit included)
	CPUs           int
	Storage        Storage
	Major          int // PostgreSQL major version
	Workload       Workload
	MaxConnections int // 0: the workload's default
}

// Suggestion is one suggested parameter with the reason for its value.
type Suggestion struct {
	Name   string `json:"name"`
	Value  string `json:"value"`
	Reason string `json:"reason"`
}

// Sizes in kB, the unit the formulas work in.
const (
	kB = 1
	mB = 1024 * kB
	gB = 1024 * mB
)

// workloadTable holds pgtune's per-workload constants.
type workloadTable struct {
	conns       int
	sbDiv       int // shared_buffers = RAM / sbDiv
	ecsNum      int // effective_cache_size = RAM * ecsNum / 4
	mwmDiv      int // maintenance_work_mem = RAM / mwmDiv
	wmDiv       int // work_mem divisor d
	minWAL      int // kB
	maxWAL      int // kB
	statsTarget int
	gatherUncap bool // max_parallel_workers_per_gather not capped at 4
	jitOff      bool
}

var workloads = map[Workload]workloadTable{
	WorkloadWeb:     {conns: 200, sbDiv: 4, ecsNum: 3, mwmDiv: 16, wmDiv: 1, minWAL: 1 * gB, maxWAL: 4 * gB, statsTarget: 100, jitOff: true},
	WorkloadOLTP:    {conns: 300, sbDiv: 4, ecsNum: 3, mwmDiv: 16, wmDiv: 1, minWAL: 2 * gB, maxWAL: 8 * gB, statsTarget: 100, jitOff: true},
	WorkloadDW:      {conns: 40, sbDiv: 4, ecsNum: 3, mwmDiv: 8, wmDiv: 2, minWAL: 4 * gB, maxWAL: 16 * gB, statsTarget: 500, gatherUncap: true},
	WorkloadMixed:   {conns: 100, sbDiv: 4, ecsNum: 3, mwmDiv: 16, wmDiv: 2, minWAL: 1 * gB, maxWAL: 4 * gB, statsTarget: 100, jitOff: true},
	WorkloadDesktop: {conns: 20, sbDiv: 16, ecsNum: 1, mwmDiv: 16, wmDiv: 6, minWAL: 100 * mB, maxWAL: 2 * gB, statsTarget: 100, jitOff: true},
}

// Caps and floors of the formulas (pgtune, 2026).
const (
	maintenanceWorkMemCap = 8 * gB
	workMemFloor          = 4 * mB
	walBuffersCap         = 16 * mB
	walBuffersNear        = 14 * mB // above this, round up to the cap
	walBuffersFloor       = 32 * kB
	hugePagesFrom         = 2 * gB // shared_buffers from which huge pages pay
)

// Tune suggests parameters for the node with pgtune's formulas: memory split between
// shared_buffers, the page cache and per-query memory; WAL sizes, planner costs and I/O
// concurrency by workload and storage; parallel workers by CPUs. Each suggestion carries
// its reason. wal_level is never lowered (ramd needs replica), so desktop keeps it.
func Tune(in TuneInput) ([]Suggestion, error) {
	w, ok := workloads[in.Workload]
	switch {
	case !ok:
		return nil, fmt.Errorf("tune: unknown workload %q (web, oltp, dw, mixed, desktop)", in.Workload)
	case in.MemoryBytes < 256<<20:
		return nil, fmt.Errorf("tune: memory %d bytes: need at least 256 MB", in.MemoryBytes)
	case in.CPUs < 1:
		return nil, fmt.Errorf("tune: cpus %d: need at least 1", in.CPUs)
	case in.Major < 13:
		return nil, fmt.Errorf("tune: PostgreSQL %d: need 13 or later", in.Major)
	}
	ioConc := map[Storage]int{StorageSSD: 200, StorageHDD: 2, StorageSAN: 300}
	if _, ok := ioConc[in.Storage]; !ok {
		return nil, fmt.Errorf("tune: unknown storage %q (ssd, hdd, san)", in.Storage)
	}
	ram := in.MemoryBytes / 1024 // kB
	var out []Suggestion
	add := func(name, value, reason string) {
		out = append(out, Suggestion{Name: name, Value: value, Reason: reason})
	}
	conns, connReason := in.MaxConnections, "as requested"
	if conns <= 0 {
		conns, connReason = w.conns, fmt.Sprintf("default for a %s workload", in.Workload)
	}
	add("max_connections", strconv.Itoa(conns), connReason)

	sb := ram / int64(w.sbDiv)
	add("shared_buffers", formatKB(sb), fmt.Sprintf("1/%d of memory (%s)", w.sbDiv, formatKB(ram)))
	add("effective_cache_size", formatKB(ram*int64(w.ecsNum)/4), fmt.Sprintf("%d/4 of memory: what the page cache and shared buffers can hold", w.ecsNum))
	mwm := min(ram/int64(w.mwmDiv), maintenanceWorkMemCap)
	add("maintenance_work_mem", formatKB(mwm), fmt.Sprintf("1/%d of memory, at most %s", w.mwmDiv, formatKB(maintenanceWorkMemCap)))
	add("checkpoint_completion_target", "0.9", "spread checkpoint writes over 90% of the interval")
	wb := walBuffers(sb)
	add("wal_buffers", formatKB(wb), "3% of shared_buffers, at most 16MB")
	add("default_statistics_target", strconv.Itoa(w.statsTarget), fmt.Sprintf("planner statistics detail for a %s workload", in.Workload))
	if in.Storage == StorageHDD {
		add("random_page_cost", "4", "random reads cost more than sequential ones on spinning disks")
	} else {
		add("random_page_cost", "1.1", fmt.Sprintf("random reads cost almost as little as sequential ones on %s", in.Storage))
	}
	add("effective_io_concurrency", strconv.Itoa(ioConc[in.Storage]), fmt.Sprintf("concurrent I/O requests a %s serves well", in.Storage))

	workers := 8
	if in.CPUs >= 4 {
		workers = in.CPUs
	}
	wm := max((ram-sb)/int64((conns+workers)*3)/int64(w.wmDiv), workMemFloor)
	add("work_mem", formatKB(wm), fmt.Sprintf("(memory - shared_buffers) / ((max_connections + %d workers) × 3) / %d, at least %s",
		workers, w.wmDiv, formatKB(workMemFloor)))
	if sb >= hugePagesFrom {
		add("huge_pages", "try", "shared_buffers of 2GB or more: huge pages save page-table memory")
	}
	add("min_wal_size", formatKB(int64(w.minWAL)), fmt.Sprintf("WAL kept for a %s workload", in.Workload))
	add("max_wal_size", formatKB(int64(w.maxWAL)), fmt.Sprintf("WAL between checkpoints for a %s workload", in.Workload))
	if in.CPUs >= 4 {
		gather := (in.CPUs + 1) / 2
		if !w.gatherUncap {
			gather = min(gather, 4)
		}
		add("max_worker_processes", strconv.Itoa(in.CPUs), "one background worker per CPU")
		add("max_parallel_workers_per_gather", strconv.Itoa(gather), "half the CPUs per query")
		add("max_parallel_workers", strconv.Itoa(in.CPUs), "one parallel worker per CPU")
		add("max_parallel_maintenance_workers", strconv.Itoa(min((in.CPUs+1)/2, 4)), "half the CPUs, at most 4, per index build")
	}
	if w.jitOff {
		add("jit", "off", "short queries lose more to JIT compilation than they gain")
	}
	return out, nil
}

// walBuffers is pgtune's wal_buffers: 3% of shared_buffers, capped, rounded up to the cap
// just below it, with a floor (kB).
func walBuffers(sb int64) int64 {
	wb := 3 * sb / 100
	if wb > walBuffersCap {
		wb = walBuffersCap
	}
	if wb > walBuffersNear && wb < walBuffersCap {
		wb = walBuffersCap
	}
	return max(wb, walBuffersFloor)
}

// formatKB renders kB with the largest of GB, MB, kB that divides it, as pgtune does.
func formatKB(v int64) string {
	switch {
	case v%gB == 0:
		return strconv.FormatInt(v/gB, 10) + "GB"
	case v%mB == 0:
		return strconv.FormatInt(v/mB, 10) + "MB"
	}
	return strconv.FormatInt(v, 10) + "kB"
}
