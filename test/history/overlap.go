package history

import (
	"cmp"
	"slices"
	"strconv"
	"time"
)

// span is the set of instants at which one node (in one term) was certainly writable.
type span struct {
	node  string
	ops   []Op // acknowledged writes, by start
	first Op   // the acknowledged write that ended first
	last  Op   // the acknowledged write that started last
}

// valid reports whether the span holds an instant: the first write ended before the last
// one started, so both commits bracket a stretch of time.
func (s span) valid() bool { return s.first.End.Before(s.last.Start) }

// contains reports whether [from, to] lies strictly inside the span.
func (s span) contains(from, to time.Time) bool {
	return s.valid() && s.first.End.Before(from) && to.Before(s.last.Start)
}

// Overlaps returns the proofs that two nodes were writable at one instant. The rule, from
// acknowledged writes only (failed and unknown attempts prove nothing):
//
// An acknowledged write committed at some instant inside [Start, End] of its attempt, no
// more precisely. A node's primary term is one contiguous stretch of time (grouped by Term
// when the writer knows it), so if node A acknowledged a write a1 and later a write a2 with
// a1.End < a2.Start, A was writable during all of [a1.End, a2.Start]: it committed before
// the first instant and after the last. Taking the write that ended first and the one that
// started last gives A's certain span [minEnd, maxStart]. Two nodes were writable at the
// same instant when
//
//  1. their certain spans intersect (in more than a point), or
//  2. one acknowledged write b of node B lies strictly inside A's certain span
//     (minEnd < b.Start and b.End < maxStart): b committed inside it.
//
// Two overlapping attempt intervals on different nodes prove nothing by themselves: A may
// have committed at the start of its interval and B at the end of its own, after A had
// stopped. The rule is sound (a reported overlap is a real split brain, given contiguous
// terms) but not complete: a split brain whose two sides each acknowledged only writes
// whose intervals straddle the other's is not reported. A writer that tries every node
// every few milliseconds makes such a miss short.
func Overlaps(ops []Op) []Overlap {
	spans := spansOf(ops)
	var out []Overlap
	for i := range spans {
		for j := range spans {
			if i == j || spans[i].node == spans[j].node {
				continue
			}
			a, b := spans[i], spans[j]
			if o, ok := overlap(a, b, i < j); ok {
				out = append(out, o)
			}
		}
	}
	return out
}

// overlap tests span b against span a. Intersecting spans are reported once (when
// reportSpans, i.e. for one order of the pair); a single write of b inside a for each order.
func overlap(a, b span, reportSpans bool) (Overlap, bool) {
	if !a.valid() {
		return Overlap{}, false
	}
	if b.valid() {
		lo := maxTime(a.first.End, b.first.End)
		hi := minTime(a.last.Start, b.last.Start)
		if lo.Before(hi) {
			if !reportSpans {
				return Overlap{}, false
			}
			return Overlap{A: a.node, AFirst: a.first, ALast: a.last, B: b.node, BFirst: b.first, BLast: b.last}, true
		}
	}
	for _, op := range b.ops {
		if a.contains(op.Start, op.End) {
			return Overlap{A: a.node, AFirst: a.first, ALast: a.last, B: b.node, BFirst: op, BLast: op}, true
		}
	}
	return Overlap{}, false
}

func spansOf(ops []Op) []span {
	groups := map[string]*span{}
	var keys []string
	for _, op := range ops {
		if op.Outcome != OK {
			continue
		}
		k := op.Node + "\x00" + strconv.Itoa(op.Term)
		s := groups[k]
		if s == nil {
			s = &span{node: op.Node, first: op, last: op}
			groups[k] = s
			keys = append(keys, k)
		}
		s.ops = append(s.ops, op)
		if op.End.Before(s.first.End) {
			s.first = op
		}
		if op.Start.After(s.last.Start) {
			s.last = op
		}
	}
	slices.Sort(keys)
	out := make([]span, 0, len(keys))
	for _, k := range keys {
		s := groups[k]
		slices.SortFunc(s.ops, func(x, y Op) int { return cmp.Or(x.Start.Compare(y.Start), cmp.Compare(x.ID, y.ID)) })
		out = append(out, *s)
	}
	return out
}

func maxTime(a, b time.Time) time.Time {
	if a.After(b) {
		return a
	}
	return b
}

func minTime(a, b time.Time) time.Time {
	if a.Before(b) {
		return a
	}
	return b
}
