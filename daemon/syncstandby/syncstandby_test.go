package syncstandby

import (
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestParseAndString(t *testing.T) {
	t.Parallel()
	tests := []struct {
		in   string
		want Config
		str  string
	}{
		{"", Config{}, ""},
		{`FIRST 1 ("b")`, Config{MethodFirst, 1, []string{"b"}}, `FIRST 1 ("b")`},
		{`ANY 2 ("c","a","b")`, Config{MethodAny, 2, []string{"a", "b", "c"}}, `ANY 2 ("a","b","c")`},
		{`any 1 (a, b)`, Config{MethodAny, 1, []string{"a", "b"}}, `ANY 1 ("a","b")`},
		{`2 (a, b)`, Config{MethodFirst, 2, []string{"a", "b"}}, `FIRST 2 ("a","b")`},
		{`a`, Config{MethodFirst, 1, []string{"a"}}, `FIRST 1 ("a")`},
	}
	for _, tt := range tests {
		got, err := Parse(tt.in)
		if err != nil {
			t.Fatalf("Parse(%q): %v", tt.in, err)
		}
		if diff := cmp.Diff(tt.want, got); diff != "" {
			t.Errorf("Parse(%q) (-want +got):\n%s", tt.in, diff)
		}
		if got.String() != tt.str {
			t.Errorf("String() = %q, want %q", got.String(), tt.str)
		}
	}
	if _, err := Parse("*"); err == nil {
		t.Error("'*' accepted")
	}
}

func TestRequiredQuorum(t *testing.T) {
	t.Parallel()
	any := func(k int, n ...string) Config { return Config{MethodAny, k, n} }
	first := func(k int, n ...string) Config { return Config{MethodFirst, k, n} }
	tests := []struct {
		name  string
		names []string
		pg    Config
		q     int
		ok    bool
	}{
		{"first 1 of its one name", []string{"a"}, first(1, "a"), 0, true},
		{"first: unlisted name unsafe", []string{"b"}, first(1, "a"), 0, false},
		{"first k over more names unsafe", []string{"a"}, first(1, "a", "b"), 0, false},
		{"any 1 of 2, both published", []string{"a", "b"}, any(1, "a", "b"), 1, true},
		{"any 2 of 3, all published", []string{"a", "b", "c"}, any(2, "a", "b", "c"), 1, true},
		{"any 1 of 3, two published: unsafe", []string{"a", "b"}, any(1, "a", "b", "c"), 0, false},
		{"any 2 of 3, two published", []string{"a", "b"}, any(2, "a", "b", "c"), 1, true},
		{"nothing enforced: names unsafe", []string{"a"}, Config{}, 0, false},
		{"no names always safe", nil, any(1, "a"), 0, true},
	}
	for _, tt := range tests {
		q, ok := RequiredQuorum(tt.names, tt.pg)
		if q != tt.q || ok != tt.ok {
			t.Errorf("%s: RequiredQuorum = %d,%v want %d,%v", tt.name, q, ok, tt.q, tt.ok)
		}
	}
}

func standby(name string, flush uint64, state string) Standby {
	return Standby{Name: name, Streaming: true, SyncState: state, Flush: flush}
}

func TestDesired(t *testing.T) {
	t.Parallel()
	two := []Standby{standby("b", 10, "async"), standby("c", 20, "async")}
	tests := []struct {
		name string
		in   Input
		want string
	}{
		{"off", Input{Mode: ModeOff, Standbys: two}, ""},
		{"first 1 picks the most advanced", Input{Mode: ModeOn, Count: 1, Standbys: two}, `FIRST 1 ("c")`},
		{"first 1 keeps the current one", Input{Mode: ModeOn, Count: 1, Standbys: two, PG: Config{MethodFirst, 1, []string{"b"}}}, `FIRST 1 ("b")`},
		{"first 1 honours sync_priority", Input{Mode: ModeOn, Count: 1, Standbys: []Standby{{Name: "b", Streaming: true, Priority: 5}, standby("c", 20, "")}}, `FIRST 1 ("b")`},
		{"first 2 of 2", Input{Mode: ModeOn, Count: 2, Standbys: two}, `FIRST 2 ("b","c")`},
		{"quorum 1 lists all", Input{Mode: ModeQuorum, Count: 1, Standbys: two}, `ANY 1 ("b","c")`},
		{"nosync excluded", Input{Mode: ModeOn, Count: 1, Standbys: []Standby{{Name: "b", Streaming: true, NoSync: true}}}, ""},
		{"not streaming excluded", Input{Mode: ModeOn, Count: 1, Standbys: []Standby{{Name: "b"}}}, ""},
		{"strict without standbys: placeholder", Input{Mode: ModeOn, Count: 1, Strict: true}, `FIRST 1 ("ramd_strict_placeholder_0")`},
		{"strict keeps a published standby that left", Input{Mode: ModeOn, Count: 1, Strict: true, Published: Published{Names: []string{"b"}}}, `FIRST 1 ("b")`},
		{"quorum count above members", Input{Mode: ModeQuorum, Count: 3, Standbys: two}, `ANY 2 ("b","c")`},
	}
	for _, tt := range tests {
		if got := Desired(tt.in).String(); got != tt.want {
			t.Errorf("%s: Desired = %q, want %q", tt.name, got, tt.want)
		}
	}
}

// converge runs Next as the daemon would, with standbys catching up at once.
func converge(t *testing.T, in Input) Input {
	t.Helper()
	for i := 0; i < 10; i++ {
		st := Next(in)
		checkStep(t, in, st)
		switch {
		case st.Publish != nil:
			in.Published = *st.Publish
			in.Published.Exists = true
		case st.SetPG != nil:
			in.PG = *st.SetPG
			in.ChangeLSN = 100
			for j := range in.Standbys {
				in.Standbys[j].Flush = 100
				in.Standbys[j].SyncState = "async"
				if contains(in.PG.Names, in.Standbys[j].Name) {
					in.Standbys[j].SyncState = map[Method]string{MethodFirst: "sync", MethodAny: "quorum"}[in.PG.Method]
				}
			}
		default:
			return in
		}
	}
	t.Fatalf("no convergence: %+v", in)
	return in
}

func TestConvergence(t *testing.T) {
	t.Parallel()
	in := Input{Mode: ModeOn, Count: 1, Leader: "a", Standbys: []Standby{standby("b", 10, "async"), standby("c", 20, "async")}}
	in = converge(t, in)
	if in.PG.String() != `FIRST 1 ("c")` || join(in.Published.Names) != "c" || in.Published.Quorum != 0 {
		t.Fatalf("first 1: pg %s published %+v", in.PG, in.Published)
	}
	// c leaves: the sync key drops it before PostgreSQL switches to b.
	in.Standbys = in.Standbys[:1]
	in = converge(t, in)
	if in.PG.String() != `FIRST 1 ("b")` || join(in.Published.Names) != "b" {
		t.Fatalf("after c left: pg %s published %+v", in.PG, in.Published)
	}
	// Switch to quorum with three standbys.
	in.Mode, in.Count = ModeQuorum, 2
	in.Standbys = append(in.Standbys, standby("c", 100, "async"), standby("d", 100, "async"))
	in = converge(t, in)
	if in.PG.String() != `ANY 2 ("b","c","d")` || join(in.Published.Names) != "b,c,d" || in.Published.Quorum != 1 {
		t.Fatalf("quorum: pg %s published %+v", in.PG, in.Published)
	}
	// Mode off: everything unpublished first, then PostgreSQL cleared.
	in.Mode = ModeOff
	in = converge(t, in)
	if !in.PG.Empty() || len(in.Published.Names) != 0 {
		t.Fatalf("off: pg %s published %+v", in.PG, in.Published)
	}
}

func TestAddedStandbyWaitsForCatchUp(t *testing.T) {
	t.Parallel()
	in := Input{Mode: ModeOn, Count: 1, Leader: "a",
		Standbys:  []Standby{standby("b", 50, "sync")},
		PG:        Config{MethodFirst, 1, []string{"b"}},
		Published: Published{Exists: true, Leader: "a"},
		ChangeLSN: 100}
	st := Next(in)
	if st.Publish != nil {
		t.Fatalf("published %+v before b flushed past the change", st.Publish)
	}
	in.Standbys[0].Flush = 100
	st = Next(in)
	if st.Publish == nil || join(st.Publish.Names) != "b" {
		t.Fatalf("b caught up but step is %+v", st)
	}
}

// checkStep asserts the invariant of one step.
func checkStep(t *testing.T, in Input, st Step) {
	t.Helper()
	if st.Publish != nil && st.SetPG != nil {
		t.Fatalf("a step both publishes and changes PostgreSQL: %+v", st)
	}
	if st.SetPG != nil {
		if !(in.Published.Exists && Safe(in.Published, in.PG) && Safe(in.Published, *st.SetPG)) {
			t.Fatalf("PostgreSQL changes to %s while the sync key %+v is not safe for it and for %s", st.SetPG, in.Published, in.PG)
		}
	}
	if st.Publish != nil {
		if !Safe(*st.Publish, in.PG) {
			t.Fatalf("publishes %+v, unsafe while PostgreSQL enforces %s", st.Publish, in.PG)
		}
		for _, n := range st.Publish.Names {
			if contains(in.Published.Names, n) && in.Published.Leader == in.Leader {
				continue
			}
			ok := false
			for _, s := range in.Standbys {
				if s.Name == n && s.Flush >= in.ChangeLSN {
					ok = true
				}
			}
			if !ok {
				t.Fatalf("publishes %s before it flushed past the change (input %+v)", n, in)
			}
		}
	}
}

// FuzzNext checks that every step keeps the invariant on random states.
func FuzzNext(f *testing.F) {
	f.Add(uint64(0), uint8(1), uint8(0))
	f.Add(uint64(0xfeedface), uint8(2), uint8(7))
	f.Fuzz(func(t *testing.T, bits uint64, count, shape uint8) {
		b := func(i uint) bool { return bits&(1<<i) != 0 }
		names := []string{"b", "c", "d"}
		in := Input{Leader: "a", Count: int(count%3) + 1, Strict: b(0), ChangeLSN: 50}
		in.Mode = []Mode{ModeOff, ModeOn, ModeQuorum}[shape%3]
		for i, n := range names {
			if b(uint(1 + i)) {
				in.Standbys = append(in.Standbys, Standby{Name: n, Streaming: b(uint(4 + i)), Flush: uint64(bits>>(8+4*i)) % 100,
					SyncState: []string{"async", "sync", "quorum", "potential"}[(bits>>(20+2*i))%4], NoSync: b(uint(30 + i))})
			}
		}
		var pgNames []string
		for i, n := range names {
			if b(uint(40 + i)) {
				pgNames = append(pgNames, n)
			}
		}
		if len(pgNames) > 0 {
			k := 1 + int(bits>>44)%len(pgNames)
			if b(46) {
				in.PG = Config{MethodAny, k, pgNames}
			} else {
				in.PG = Config{MethodFirst, len(pgNames), pgNames}
			}
		}
		// A published state that is safe for the current setting (the invariant holds
		// before the step).
		var pub []string
		for i, n := range names {
			if b(uint(50 + i)) {
				pub = append(pub, n)
			}
		}
		in.Published = Published{Exists: b(53), Leader: "a", Names: pub}
		if q, ok := RequiredQuorum(pub, in.PG); ok {
			in.Published.Quorum = q + int(shape>>4)%2
		} else {
			in.Published.Names = nil
		}
		if !in.Published.Exists {
			in.Published = Published{}
		}
		checkStep(t, in, Next(in))
	})
}
