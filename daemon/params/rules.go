package params

import (
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
)

// Rule names a check of Review.
type Rule string

// The rules of Review. RuleValue is PostgreSQL's own judgement of one value (Check);
// RuleMaxBackends and RuleStackDepth are checks the server makes at start from several
// parameters or from the machine; the others are ramd's.
const (
	RuleValue        Rule = "value"
	RuleMaxBackends  Rule = "max_backends"
	RuleStackDepth   Rule = "max_stack_depth"
	RuleWALLevel     Rule = "wal_level"
	RuleWALSenders   Rule = "max_wal_senders"
	RuleSlots        Rule = "max_replication_slots"
	RuleWALSize      Rule = "wal_size"
	RuleMemory       Rule = "memory"
	RuleClientConns  Rule = "client_connections"
	RuleNotInVersion Rule = "not_in_version"
)

// Facts are what Review needs to know about the node and the cluster; zero means unknown
// and switches the rules that need the fact off.
type Facts struct {
	MemoryBytes     int64 // memory available to PostgreSQL: the smaller of RAM and the cgroup limit
	StackLimitBytes int64 // RLIMIT_STACK the server inherits (soft limit); 0 unlimited or unknown
	Members         int   // members of the cluster
}

// Issue is one refusal or warning about a field.
type Issue struct {
	Field   string `json:"field"`
	Value   string `json:"value"`
	Message string `json:"message"`
	Rule    Rule   `json:"rule"`
}

// Report is Review's verdict: refusals (the change must not be applied) and warnings (legal
// but risky), each sorted by field.
type Report struct {
	Refusals []Issue `json:"refusals,omitempty"`
	Warnings []Issue `json:"warnings,omitempty"`
}

// OK reports whether nothing was refused.
func (r Report) OK() bool { return len(r.Refusals) == 0 }

// Margins of the replication rules.
const (
	// senderMargin: WAL senders and slots beyond one per member, for pg_basebackup,
	// pg_rewind and a backup tool streaming at the same time as the replicas.
	senderMargin = 2
	// minClientConnections: fewer connections left to ordinary roles is worth a warning.
	minClientConnections = 5
	// maxBackends is PostgreSQL's MAX_BACKENDS (2^18 - 1): the server refuses more processes.
	maxBackends = 1<<18 - 1
	// stackDepthSlop is STACK_DEPTH_SLOP: max_stack_depth must stay this far below the
	// stack rlimit.
	stackDepthSlop = 512 << 10
)

// Review judges a complete set of parameters (what ramd would write; a parameter not in
// proposed takes the catalog's boot value) for this version and node: every value through
// Check, then the rules PostgreSQL cannot check alone. It never changes a value.
func Review(c *Catalog, proposed map[string]string, f Facts) Report {
	r := &review{c: c, f: f, vals: map[string]Value{}, given: map[string]string{}}
	names := make([]string, 0, len(proposed))
	for n := range proposed {
		names = append(names, n)
	}
	slices.Sort(names)
	for _, n := range names {
		v, err := c.Check(n, proposed[n])
		if err != nil {
			rule := RuleValue
			if errors.Is(err, ErrNotInVersion) {
				rule = RuleNotInVersion
			}
			r.refuse(n, proposed[n], err.Error(), rule)
			continue
		}
		key := asciiLower(v.Name)
		r.vals[key], r.given[key] = v, n
	}
	r.maxBackends()
	r.stackDepth()
	r.replication()
	r.walSize()
	r.memory()
	r.clientConns()
	out := Report{Refusals: r.refusals, Warnings: r.warnings}
	byField := func(a, b Issue) int { return strings.Compare(a.Field, b.Field) }
	slices.SortStableFunc(out.Refusals, byField)
	slices.SortStableFunc(out.Warnings, byField)
	return out
}

type review struct {
	c        *Catalog
	f        Facts
	vals     map[string]Value  // valid proposed values by lower-case name
	given    map[string]string // the name as proposed
	refusals []Issue
	warnings []Issue
}

func (r *review) refuse(field, value, msg string, rule Rule) {
	r.refusals = append(r.refusals, Issue{Field: field, Value: value, Message: msg, Rule: rule})
}

func (r *review) warn(field, value, msg string, rule Rule) {
	r.warnings = append(r.warnings, Issue{Field: field, Value: value, Message: msg, Rule: rule})
}

// num returns the value of a numeric parameter in base units: proposed, else the boot
// value; ok is false when the version lacks it.
func (r *review) num(name string) (float64, bool) {
	if v, ok := r.vals[name]; ok {
		return v.Num, true
	}
	p, ok := r.c.Lookup(name)
	if !ok {
		return 0, false
	}
	n, err := strconv.ParseFloat(p.BootVal, 64)
	return n, err == nil
}

// proposedOf returns the field and value as proposed for name, or the name and its
// effective value when it was not proposed.
func (r *review) proposedOf(name string) (string, string, bool) {
	if v, ok := r.vals[name]; ok {
		return r.given[name], v.Input, true
	}
	n, _ := r.num(name)
	return name, strconv.FormatFloat(n, 'f', -1, 64), false
}

// blame picks the first proposed field among names (a rule over several parameters is
// reported on one the change touched), else the first name.
func (r *review) blame(names ...string) (string, string) {
	for _, n := range names {
		if f, v, ok := r.proposedOf(n); ok {
			return f, v
		}
	}
	f, v, _ := r.proposedOf(names[0])
	return f, v
}

func (r *review) touched(names ...string) bool {
	for _, n := range names {
		if _, ok := r.vals[n]; ok {
			return true
		}
	}
	return false
}

// maxBackends: the server refuses to start when connections, autovacuum workers, background
// workers and WAL senders (plus one launcher) exceed MAX_BACKENDS.
func (r *review) maxBackends() {
	av := "autovacuum_max_workers"
	if _, ok := r.c.Lookup("autovacuum_worker_slots"); ok {
		av = "autovacuum_worker_slots" // 18+: the slots, not the workers, count
	}
	names := []string{"max_connections", av, "max_worker_processes", "max_wal_senders"}
	if !r.touched(names...) {
		return
	}
	sum := 1.0
	var parts []string
	for _, n := range names {
		v, _ := r.num(n)
		sum += v
		parts = append(parts, fmt.Sprintf("%s %.0f", n, v))
	}
	if sum > maxBackends {
		f, v := r.blame(names...)
		r.refuse(f, v, fmt.Sprintf("%s plus 1 make %.0f server processes, more than PostgreSQL's limit of %d",
			strings.Join(parts, " + "), sum, maxBackends), RuleMaxBackends)
	}
}

// stackDepth: max_stack_depth must stay 512 kB below the stack rlimit of the server.
func (r *review) stackDepth() {
	if r.f.StackLimitBytes <= 0 || !r.touched("max_stack_depth") {
		return
	}
	v, _ := r.num("max_stack_depth")
	limitKB := (r.f.StackLimitBytes - stackDepthSlop) / 1024
	if v*1024 > float64(r.f.StackLimitBytes-stackDepthSlop) {
		f, val := r.blame("max_stack_depth")
		r.refuse(f, val, fmt.Sprintf("max_stack_depth must not exceed %dkB on this node (stack limit %d kB)",
			limitKB, r.f.StackLimitBytes/1024), RuleStackDepth)
	}
}

// replication: streaming replicas need wal_level replica or logical, and a WAL sender and
// a slot per member plus a margin.
func (r *review) replication() {
	if v, ok := r.vals["wal_level"]; ok && v.Shown == "minimal" {
		r.refuse(r.given["wal_level"], v.Input, `wal_level must be "replica" or "logical": replicas cannot stream from "minimal"`, RuleWALLevel)
	}
	if r.f.Members <= 0 {
		return
	}
	need := float64(r.f.Members + senderMargin)
	for _, n := range []string{"max_wal_senders", "max_replication_slots"} {
		v, ok := r.vals[n]
		if !ok || v.Num >= need {
			continue
		}
		rule := RuleWALSenders
		if n == "max_replication_slots" {
			rule = RuleSlots
		}
		r.refuse(r.given[n], v.Input, fmt.Sprintf("%s must be at least %.0f: %d members plus %d for base backups and rewinds",
			n, need, r.f.Members, senderMargin), rule)
	}
}

// walSize: min_wal_size must stay below max_wal_size.
func (r *review) walSize() {
	if !r.touched("min_wal_size", "max_wal_size") {
		return
	}
	lo, ok1 := r.num("min_wal_size")
	hi, ok2 := r.num("max_wal_size")
	if ok1 && ok2 && lo >= hi {
		f, v := r.blame("min_wal_size", "max_wal_size")
		r.refuse(f, v, fmt.Sprintf("min_wal_size (%.0f MB) must be less than max_wal_size (%.0f MB)", lo, hi), RuleWALSize)
	}
}

// memory: shared_buffers above the node's memory cannot start; shared_buffers plus one
// work_mem per connection above it risks the OOM killer.
func (r *review) memory() {
	if r.f.MemoryBytes <= 0 || !r.touched("shared_buffers", "work_mem", "max_connections") {
		return
	}
	sbBlocks, ok := r.num("shared_buffers")
	p, _ := r.c.Lookup("shared_buffers")
	if !ok || p.unit.kind != unitMemory {
		return
	}
	sb := sbBlocks * p.unit.size
	mem := float64(r.f.MemoryBytes)
	if sb > mem && r.touched("shared_buffers") {
		f, v := r.blame("shared_buffers")
		r.refuse(f, v, fmt.Sprintf("shared_buffers (%s) is more than the node's memory (%s): the server could not start",
			human(sb), human(mem)), RuleMemory)
		return
	}
	wm, ok1 := r.num("work_mem")
	conns, ok2 := r.num("max_connections")
	if !ok1 || !ok2 {
		return
	}
	total := sb + conns*wm*1024
	if total > mem {
		f, v := r.blame("shared_buffers", "work_mem", "max_connections")
		r.warn(f, v, fmt.Sprintf("shared_buffers (%s) + max_connections (%.0f) × work_mem (%s) = %s, more than the node's memory (%s)",
			human(sb), conns, human(wm*1024), human(total), human(mem)), RuleMemory)
	}
}

// clientConns: connections left to ordinary roles after the reserved ones.
func (r *review) clientConns() {
	names := []string{"max_connections", "superuser_reserved_connections", "reserved_connections"}
	if !r.touched(names...) {
		return
	}
	mc, _ := r.num("max_connections")
	su, _ := r.num("superuser_reserved_connections")
	rc, _ := r.num("reserved_connections") // 0 before 16
	if left := mc - su - rc; left < minClientConnections {
		f, v := r.blame(names...)
		r.warn(f, v, fmt.Sprintf("max_connections (%.0f) leaves %.0f connections to ordinary roles after %.0f reserved ones",
			mc, left, su+rc), RuleClientConns)
	}
}

// human prints a byte count with the largest binary unit it reaches.
func human(b float64) string {
	for _, u := range memoryUnits {
		if b >= u.size {
			return strconv.FormatFloat(b/u.size, 'g', 4, 64) + " " + u.name
		}
	}
	return strconv.FormatFloat(b, 'f', 0, 64) + " B"
}
