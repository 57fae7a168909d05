package syncstandby

import (
	"sort"
	"strconv"
)

// Mode is the cluster's synchronous_mode.
type Mode string

// Modes, with Patroni's names.
const (
	ModeOff    Mode = "off"
	ModeOn     Mode = "on"     // FIRST N with exactly N names
	ModeQuorum Mode = "quorum" // ANY N over every eligible standby
)

// PlaceholderPrefix names the fake standbys that block writes in strict mode when too few
// real ones exist.
const PlaceholderPrefix = "ramd_strict_placeholder_"

// Published is the content of the sync key: who may be promoted and how many other members
// of Names a candidate must compare its position with (Patroni's "quorum").
type Published struct {
	Exists bool
	Leader string
	Names  []string // sorted
	Quorum int
}

// Equal compares two published states (Exists ignored).
func (p Published) Equal(o Published) bool {
	return p.Leader == o.Leader && p.Quorum == o.Quorum && join(p.Names) == join(o.Names)
}

func join(n []string) string {
	s := ""
	for i, x := range n {
		if i > 0 {
			s += ","
		}
		s += x
	}
	return s
}

// Standby is one standby as the primary sees it.
type Standby struct {
	Name string
	// Streaming is true when pg_stat_replication shows it streaming.
	Streaming bool
	// SyncState is pg_stat_replication.sync_state: sync, quorum, potential, async.
	SyncState string
	// Flush is its flush position.
	Flush uint64
	// NoSync is the member's nosync tag.
	NoSync bool
	// Priority is its sync_priority tag (higher first).
	Priority int
	// Lagging is true when it is too far behind to be made synchronous.
	Lagging bool
}

// Input is what the leader observed for one step.
type Input struct {
	Mode     Mode
	Count    int // synchronous_node_count
	Strict   bool
	Leader   string
	Standbys []Standby
	// PG is what PostgreSQL enforces now (SHOW synchronous_standby_names).
	PG Config
	// Published is the sync key.
	Published Published
	// ChangeLSN is the primary's WAL position when PostgreSQL's setting last changed; a
	// standby added then may be published only once it flushed past it.
	ChangeLSN uint64
}

// Step is what to do now. At most one of the two is set; the next cycle continues.
type Step struct {
	// Publish is a new sync key content (CAS against the one read).
	Publish *Published
	// SetPG is a new synchronous_standby_names (then reload).
	SetPG *Config
	// Reason explains the step.
	Reason string
}

// Desired is what PostgreSQL should enforce for in.
func Desired(in Input) Config {
	if in.Mode != ModeOn && in.Mode != ModeQuorum {
		return Config{}
	}
	n := max(1, in.Count)
	var eligible []Standby
	for _, s := range in.Standbys {
		if s.Streaming && !s.NoSync && !s.Lagging && s.Name != in.Leader {
			eligible = append(eligible, s)
		}
	}
	// Keep current synchronous standbys first (stability), then priority, then position.
	current := map[string]bool{}
	for _, name := range in.PG.Names {
		current[name] = true
	}
	sort.SliceStable(eligible, func(i, j int) bool {
		a, b := eligible[i], eligible[j]
		if current[a.Name] != current[b.Name] {
			return current[a.Name]
		}
		if a.Priority != b.Priority {
			return a.Priority > b.Priority
		}
		if a.Flush != b.Flush {
			return a.Flush > b.Flush
		}
		return a.Name < b.Name
	})
	var names []string
	switch in.Mode {
	case ModeOn:
		for i := 0; i < len(eligible) && i < n; i++ {
			names = append(names, eligible[i].Name)
		}
	case ModeQuorum:
		for _, s := range eligible {
			names = append(names, s.Name)
		}
	}
	if in.Strict {
		// Keep the published standbys listed even when they are gone: writes wait for them
		// rather than run without a synchronous copy; pad with placeholders.
		have := map[string]bool{}
		for _, x := range names {
			have[x] = true
		}
		for _, x := range in.Published.Names {
			if len(names) >= n {
				break
			}
			if !have[x] && x != in.Leader {
				names = append(names, x)
				have[x] = true
			}
		}
		for i := 0; len(names) < n; i++ {
			names = append(names, PlaceholderPrefix+strconv.Itoa(i))
		}
	}
	if len(names) == 0 {
		return Config{}
	}
	sort.Strings(names)
	c := Config{Method: MethodFirst, Num: len(names), Names: names}
	if in.Mode == ModeQuorum {
		c.Method, c.Num = MethodAny, min(n, len(names))
	}
	return c
}

// Canonical is the sync key that exactly matches what PostgreSQL enforces: FIRST k over k
// names → any of them (quorum 0); ANY k over m → compare with m-k others.
func Canonical(leader string, pg Config) Published {
	p := Published{Leader: leader}
	if pg.Empty() {
		return p
	}
	for _, n := range pg.Names {
		if !isPlaceholder(n) {
			p.Names = append(p.Names, n)
		}
	}
	if pg.Method == MethodAny {
		p.Quorum = len(pg.Names) - pg.Num
	}
	if r, ok := RequiredQuorum(p.Names, pg); ok {
		p.Quorum = max(p.Quorum, r)
	} else {
		p.Names, p.Quorum = nil, 0
	}
	return p
}

func isPlaceholder(n string) bool {
	return len(n) >= len(PlaceholderPrefix) && n[:len(PlaceholderPrefix)] == PlaceholderPrefix
}

// RequiredQuorum is the smallest quorum that makes publishing names safe while PostgreSQL
// enforces pg, or ok=false when no quorum can (some acknowledging set may avoid names).
//
// FIRST k over exactly k names: every listed standby acknowledged every commit, so any
// published name that is listed is enough (quorum 0); a name not listed is unsafe.
// ANY k over P: a commit may be acknowledged by any k of P, so at least max(0, k-|P\S|) of
// them are in S, and a candidate comparing with q+1 members of S meets one of them iff
// q+1 > |S| - max(0, k-|P\S|).
func RequiredQuorum(names []string, pg Config) (int, bool) {
	if len(names) == 0 {
		return 0, true
	}
	if pg.Empty() {
		return 0, false // nothing was acknowledged by any standby
	}
	inP := map[string]bool{}
	for _, n := range pg.Names {
		inP[n] = true
	}
	switch pg.Method {
	case MethodFirst:
		if pg.Num < len(pg.Names) {
			return 0, false // FIRST k over more than k names: unknown who acknowledged
		}
		for _, n := range names {
			if !inP[n] {
				return 0, false
			}
		}
		return 0, true
	case MethodAny:
		outside := 0
		for _, n := range pg.Names {
			if !contains(names, n) {
				outside++
			}
		}
		inS := pg.Num - outside
		if inS <= 0 {
			return 0, false
		}
		return len(names) - inS, true
	}
	return 0, false
}

func contains(list []string, x string) bool {
	for _, y := range list {
		if y == x {
			return true
		}
	}
	return false
}

// Safe reports whether pub is safe while PostgreSQL enforces pg.
func Safe(pub Published, pg Config) bool {
	r, ok := RequiredQuorum(pub.Names, pg)
	return ok && pub.Quorum >= r
}

// Next decides one step toward the desired state, keeping the invariant at every step.
func Next(in Input) Step {
	want := Desired(in)
	pub := in.Published
	if !in.PG.Equal(want) {
		// While PostgreSQL changes, commits acknowledged under the old setting and under the
		// new one must both be found: the published state must be safe for both first.
		if pub.Exists && pub.Leader == in.Leader && Safe(pub, in.PG) && Safe(pub, want) {
			w := want
			return Step{SetPG: &w, Reason: "set synchronous_standby_names to " + quoteEmpty(want.String())}
		}
		narrowed := Published{Leader: in.Leader}
		for _, n := range pub.Names {
			if pub.Leader == in.Leader && contains(want.Names, n) && contains(in.PG.Names, n) {
				narrowed.Names = append(narrowed.Names, n)
			}
		}
		q1, ok1 := RequiredQuorum(narrowed.Names, in.PG)
		q2, ok2 := RequiredQuorum(narrowed.Names, want)
		if ok1 && ok2 && len(narrowed.Names) > 0 {
			narrowed.Quorum = max(q1, q2)
		} else {
			narrowed.Names, narrowed.Quorum = nil, 0
		}
		return Step{Publish: &narrowed, Reason: "narrow the sync key before changing synchronous_standby_names"}
	}
	canon := Canonical(in.Leader, want)
	if pub.Exists && pub.Equal(canon) {
		return Step{Reason: "synchronous standbys in place"}
	}
	// PostgreSQL enforces want. A standby may be published once it flushed past the change:
	// it then holds every commit acknowledged under the previous setting too.
	var ready Published
	ready.Leader = in.Leader
	for _, s := range in.Standbys {
		if contains(canon.Names, s.Name) && s.Flush >= in.ChangeLSN && (s.SyncState == "sync" || s.SyncState == "quorum") {
			ready.Names = append(ready.Names, s.Name)
		}
	}
	sort.Strings(ready.Names)
	if len(ready.Names) == len(canon.Names) {
		return Step{Publish: &canon, Reason: "publish the synchronous standbys PostgreSQL enforces"}
	}
	if q, ok := RequiredQuorum(ready.Names, want); ok && len(ready.Names) > 0 {
		ready.Quorum = q
		if !pub.Exists || !pub.Equal(ready) {
			return Step{Publish: &ready, Reason: "publish the synchronous standbys that caught up"}
		}
		return Step{Reason: "waiting for the other synchronous standbys to catch up"}
	}
	if !pub.Exists || pub.Leader != in.Leader || len(pub.Names) > 0 && !Safe(pub, want) {
		empty := Published{Leader: in.Leader}
		return Step{Publish: &empty, Reason: "no synchronous standby caught up yet"}
	}
	return Step{Reason: "waiting for synchronous standbys to catch up"}
}

func quoteEmpty(s string) string {
	if s == "" {
		return "''"
	}
	return s
}
