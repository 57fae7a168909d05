package history

import (
	"fmt"
	"slices"
	"time"
)

// Outcome is what the client learned about one write attempt.
type Outcome string

const (
	// OK means PostgreSQL acknowledged the commit: the row must survive (synchronous mode).
	OK Outcome = "ok"
	// Fail means the write certainly did not commit (refused before it ran: no connection,
	// a read-only server). Its row must never appear.
	Fail Outcome = "fail"
	// Unknown means the client cannot tell (a timeout or a connection lost while the commit
	// was in flight): the row may or may not exist, and neither is a violation.
	Unknown Outcome = "unknown"
)

// Op is one write attempt as the client saw it. The commit, if any, happened at some
// instant in [Start, End]; nothing more precise can be known from outside.
type Op struct {
	ID      int64
	Node    string
	Start   time.Time
	End     time.Time
	Outcome Outcome
	// Term optionally names the node's primary term the write was sent in (a timeline);
	// writes of one node in different terms are judged as if by different nodes. Zero when
	// unknown: then one node is assumed to be primary for one contiguous span per history,
	// which holds for a history of one fault (no failback inside it).
	Term int
}

// Observation is one sample of a node's state by a prober. The state it reports held at
// some instant between the request's start and At, when the answer arrived (a node behind
// a slow link answers late); a zero Start means At.
type Observation struct {
	Start    time.Time
	At       time.Time
	Node     string
	Timeline int
	// Primary reports that the node said it was the primary (its /primary answered 200).
	Primary bool
}

// HistoryEntry is one line of the cluster's history key: the timeline that ended and the
// member that took over (Patroni's [timeline, lsn, reason, timestamp, new_leader]).
type HistoryEntry struct {
	Timeline  int
	NewLeader string
}

// Input is everything a scenario collected.
type Input struct {
	Ops []Op
	// Present is the set of ids read from the final primary's table after the scenario.
	Present map[int64]bool
	// Sync is true when the cluster ran in synchronous mode: then any lost acknowledged
	// write is a violation, otherwise it is only counted.
	Sync bool
	// Observations are the prober's samples, in any order.
	Observations []Observation
	// History is the history key read after the scenario; nil skips that check.
	History []HistoryEntry
}

// Overlap is a proof that two nodes were writable at one instant: the acknowledged writes
// that establish it.
type Overlap struct {
	// Span is the set of instants at which node A was certainly writable: from the end of
	// one of its acknowledged writes to the start of a later one.
	A      string
	AFirst Op
	ALast  Op
	// B is the other node, and BFirst/BLast the acknowledged writes bracketing the instant
	// it was writable inside A's span (the same op when one write suffices).
	B      string
	BFirst Op
	BLast  Op
}

func (o Overlap) String() string {
	return fmt.Sprintf("%s acknowledged id %d (ended %s) and id %d (started %s); %s acknowledged id %d (%s..%s) and id %d (%s..%s) in between",
		o.A, o.AFirst.ID, stamp(o.AFirst.End), o.ALast.ID, stamp(o.ALast.Start),
		o.B, o.BFirst.ID, stamp(o.BFirst.Start), stamp(o.BFirst.End), o.BLast.ID, stamp(o.BLast.Start), stamp(o.BLast.End))
}

func stamp(t time.Time) string { return t.UTC().Format("15:04:05.000000") }

// Result is the verdict.
type Result struct {
	Acked   int
	Failed  int
	Unknown int
	// Lost are acknowledged ids absent from the final primary.
	Lost []int64
	// Resurrected are ids reported as failed that are present on the final primary.
	Resurrected []int64
	// Overlaps are the moments with two writable nodes.
	Overlaps []Overlap
	// TimelineRegressions describe a timeline that went down.
	TimelineRegressions []string
	// HistoryMismatches describe observed changes of primary that the history key does not
	// show, or a history key that is not ordered.
	HistoryMismatches []string
	// Primaries is the sequence of distinct primaries observed, in time order.
	Primaries []string
}

// Violations lists every broken promise, empty when the history is correct: Safety, then
// Observed.
func (r Result) Violations(sync bool) []string {
	return append(r.Safety(sync), r.Observed()...)
}

// Safety lists the broken promises about data: acknowledged writes lost (in synchronous
// mode), failed writes present, and moments with two writable nodes.
func (r Result) Safety(sync bool) []string {
	var v []string
	if sync && len(r.Lost) > 0 {
		v = append(v, fmt.Sprintf("%d acknowledged writes lost in synchronous mode: %v", len(r.Lost), head(r.Lost)))
	}
	if len(r.Resurrected) > 0 {
		v = append(v, fmt.Sprintf("%d writes reported failed are present: %v", len(r.Resurrected), head(r.Resurrected)))
	}
	for _, o := range r.Overlaps {
		v = append(v, "two writable nodes: "+o.String())
	}
	return v
}

// Observed lists the broken promises about what the cluster reports: timelines that went
// down, and a history key that does not match the observed changes of primary.
func (r Result) Observed() []string {
	return append(append([]string(nil), r.TimelineRegressions...), r.HistoryMismatches...)
}

func head(ids []int64) []int64 {
	if len(ids) > 10 {
		return ids[:10]
	}
	return ids
}

// Check judges one scenario's history.
func Check(in Input) Result {
	var r Result
	for _, op := range in.Ops {
		switch op.Outcome {
		case OK:
			r.Acked++
			if !in.Present[op.ID] {
				r.Lost = append(r.Lost, op.ID)
			}
		case Fail:
			r.Failed++
			if in.Present[op.ID] {
				r.Resurrected = append(r.Resurrected, op.ID)
			}
		default:
			r.Unknown++
		}
	}
	slices.Sort(r.Lost)
	slices.Sort(r.Resurrected)
	r.Overlaps = Overlaps(in.Ops)
	r.TimelineRegressions = TimelineRegressions(in.Observations)
	r.Primaries = Primaries(in.Observations)
	if in.History != nil {
		r.HistoryMismatches = CheckHistoryKey(in.Observations, in.History)
	}
	return r
}
