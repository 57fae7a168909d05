package history

import (
	"cmp"
	"fmt"
	"slices"
	"time"
)

// sortedObservations orders the samples by the start of their requests: when two samples'
// intervals overlap, either order is possible, and this one is taken.
func sortedObservations(obs []Observation) []Observation {
	s := slices.Clone(obs)
	slices.SortStableFunc(s, func(a, b Observation) int { return a.from().Compare(b.from()) })
	return s
}

// from is the earliest instant the sample's state can be from.
func (o Observation) from() time.Time {
	if o.Start.IsZero() {
		return o.At
	}
	return o.Start
}

// after reports whether o's request started after p's answer arrived: o's state is then
// certainly the later of the two.
func (o Observation) after(p Observation) bool { return o.from().After(p.At) }

// TimelineRegressions checks that timelines only grow: each node's reported timeline
// never goes down, and neither does the timeline of whichever node says it is the primary.
// A zero timeline (unknown) is skipped, and so is a lower timeline from a sample whose
// request started before the higher one's answer arrived (either may be the later state).
func TimelineRegressions(obs []Observation) []string {
	var out []string
	last := map[string]Observation{}
	var lastPrimary *Observation
	for _, o := range sortedObservations(obs) {
		if o.Timeline == 0 {
			continue
		}
		if p, ok := last[o.Node]; ok && o.Timeline < p.Timeline && o.after(p) {
			out = append(out, fmt.Sprintf("timeline of %s went from %d (%s) down to %d (%s)", o.Node, p.Timeline, stamp(p.At), o.Timeline, stamp(o.At)))
		}
		last[o.Node] = o
		if !o.Primary {
			continue
		}
		if lastPrimary != nil && o.Timeline < lastPrimary.Timeline && o.after(*lastPrimary) {
			out = append(out, fmt.Sprintf("primary timeline went from %d (%s at %s) down to %d (%s at %s)",
				lastPrimary.Timeline, lastPrimary.Node, stamp(lastPrimary.At), o.Timeline, o.Node, stamp(o.At)))
		}
		lastPrimary = &o
	}
	return out
}

// stint is one node's uninterrupted run as the observed primary.
type stint struct {
	node     string
	timeline int // the highest timeline seen during the stint
}

func stints(obs []Observation) []stint {
	var out []stint
	for _, o := range sortedObservations(obs) {
		if !o.Primary {
			continue
		}
		if n := len(out); n > 0 && out[n-1].node == o.Node {
			out[n-1].timeline = max(out[n-1].timeline, o.Timeline)
			continue
		}
		out = append(out, stint{node: o.Node, timeline: o.Timeline})
	}
	return out
}

// Primaries returns the observed primaries in order, a node listed again only after
// another one was primary in between.
func Primaries(obs []Observation) []string {
	var out []string
	for _, s := range stints(obs) {
		out = append(out, s.node)
	}
	return out
}

// CheckHistoryKey checks the history key against the observed changes of primary: entries
// are ordered by strictly growing timeline, each observed change from P (timeline t) to Q
// (timeline t') came with a new timeline and has an entry for a timeline in [t, t') whose
// new leader is Q (or unnamed, as old Patroni entries are), and no entry names a timeline
// at or beyond the last primary's.
func CheckHistoryKey(obs []Observation, hist []HistoryEntry) []string {
	var out []string
	for i := 1; i < len(hist); i++ {
		if hist[i].Timeline <= hist[i-1].Timeline {
			out = append(out, fmt.Sprintf("history key not ordered: timeline %d after %d", hist[i].Timeline, hist[i-1].Timeline))
		}
	}
	st := stints(obs)
	for i := 1; i < len(st); i++ {
		p, q := st[i-1], st[i]
		if q.timeline <= p.timeline {
			out = append(out, fmt.Sprintf("primary changed from %s (timeline %d) to %s without a new timeline (%d)", p.node, p.timeline, q.node, q.timeline))
			continue
		}
		found := slices.ContainsFunc(hist, func(h HistoryEntry) bool {
			return h.Timeline >= p.timeline && h.Timeline < q.timeline && (h.NewLeader == "" || h.NewLeader == q.node)
		})
		if !found {
			out = append(out, fmt.Sprintf("history key has no entry for the change from %s (timeline %d) to %s (timeline %d)", p.node, p.timeline, q.node, q.timeline))
		}
	}
	if n := len(st); n > 0 && len(hist) > 0 {
		lastTL := st[n-1].timeline
		maxHist := slices.MaxFunc(hist, func(a, b HistoryEntry) int { return cmp.Compare(a.Timeline, b.Timeline) })
		if lastTL > 0 && maxHist.Timeline >= lastTL {
			out = append(out, fmt.Sprintf("history key names timeline %d, not older than the primary's timeline %d", maxHist.Timeline, lastTL))
		}
	}
	return out
}
