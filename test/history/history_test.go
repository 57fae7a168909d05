package history

import (
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

var t0 = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)

// at is t0 plus ms milliseconds.
func at(ms int) time.Time { return t0.Add(time.Duration(ms) * time.Millisecond) }

// op builds one attempt on node from ms a to ms b.
func op(id int64, node string, a, b int, out Outcome) Op {
	return Op{ID: id, Node: node, Start: at(a), End: at(b), Outcome: out}
}

func ok(id int64, node string, a, b int) Op   { return op(id, node, a, b, OK) }
func fail(id int64, node string, a, b int) Op { return op(id, node, a, b, Fail) }
func unk(id int64, node string, a, b int) Op  { return op(id, node, a, b, Unknown) }

func present(ids ...int64) map[int64]bool {
	m := map[int64]bool{}
	for _, id := range ids {
		m[id] = true
	}
	return m
}

func obs(ms int, node string, tl int, primary bool) Observation {
	return Observation{At: at(ms), Node: node, Timeline: tl, Primary: primary}
}

// failover is a clean history: n1 acknowledges until 100 ms, is cut off, n2 acknowledges
// from 300 ms on timeline 2.
func failover() Input {
	return Input{
		Ops: []Op{
			ok(1, "n1", 0, 10), fail(2, "n2", 0, 5), ok(3, "n1", 20, 30), fail(4, "n2", 20, 25),
			ok(5, "n1", 90, 100), unk(6, "n1", 120, 620), fail(7, "n2", 120, 130),
			ok(8, "n2", 300, 310), ok(9, "n2", 320, 330), fail(10, "n1", 640, 650),
		},
		Present: present(1, 3, 5, 8, 9),
		Sync:    true,
		Observations: []Observation{
			obs(0, "n1", 1, true), obs(0, "n2", 1, false), obs(200, "n2", 1, false),
			obs(310, "n2", 2, true), obs(700, "n1", 2, false),
		},
		History: []HistoryEntry{{Timeline: 1, NewLeader: "n2"}},
	}
}

func TestCheck(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name   string
		in     func() Input
		want   []string // substrings, one per expected violation, in order
		lost   int
		acked  int
		unsure int
	}{
		{name: "clean failover passes", in: failover, acked: 5, unsure: 1},
		{
			name: "unknown write present or absent is fine",
			in: func() Input {
				in := failover()
				in.Present[6] = true
				return in
			},
			acked: 5, unsure: 1,
		},
		{
			name: "lost acknowledged write fails in sync mode",
			in: func() Input {
				in := failover()
				delete(in.Present, 5)
				return in
			},
			want: []string{"1 acknowledged writes lost in synchronous mode: [5]"},
			lost: 1, acked: 5, unsure: 1,
		},
		{
			name: "lost acknowledged write is counted in async mode",
			in: func() Input {
				in := failover()
				in.Sync = false
				delete(in.Present, 5)
				return in
			},
			lost: 1, acked: 5, unsure: 1,
		},
		{
			name: "failed write present fails",
			in: func() Input {
				in := failover()
				in.Present[7] = true
				return in
			},
			want:  []string{"1 writes reported failed are present: [7]"},
			acked: 5, unsure: 1,
		},
		{
			name: "old primary acknowledges after the new one started",
			in: func() Input {
				in := failover()
				in.Ops = append(in.Ops, ok(11, "n1", 400, 410))
				in.Present[11] = true
				return in
			},
			want:  []string{"two writable nodes: n1 acknowledged id 1"},
			acked: 6, unsure: 1,
		},
		{
			name: "interleaved spans on two nodes fail",
			in: func() Input {
				return Input{
					Ops:     []Op{ok(1, "n1", 0, 10), ok(2, "n2", 5, 15), ok(3, "n1", 50, 60), ok(4, "n2", 55, 65)},
					Present: present(1, 2, 3, 4),
				}
			},
			want:  []string{"two writable nodes: n1 acknowledged id 1 (ended 00:00:00.010000) and id 3 (started 00:00:00.050000); n2 acknowledged id 2"},
			acked: 4,
		},
		{
			name: "overlapping attempt intervals alone prove nothing",
			in: func() Input {
				// n1's commit may have been at 0 ms, n2's at 100 ms: no instant with both.
				return Input{
					Ops:     []Op{ok(1, "n1", 0, 100), ok(2, "n2", 0, 100), ok(3, "n2", 110, 120)},
					Present: present(1, 2, 3),
				}
			},
			acked: 3,
		},
		{
			name: "touching spans prove nothing",
			in: func() Input {
				return Input{
					Ops:     []Op{ok(1, "n1", 0, 10), ok(2, "n1", 50, 60), ok(3, "n2", 40, 50), ok(4, "n2", 90, 100)},
					Present: present(1, 2, 3, 4),
				}
			},
			acked: 4,
		},
		{
			name: "a single write inside another node's span fails",
			in: func() Input {
				return Input{
					Ops:     []Op{ok(1, "n1", 0, 10), ok(2, "n2", 20, 30), ok(3, "n1", 50, 60)},
					Present: present(1, 2, 3),
				}
			},
			want:  []string{"two writable nodes: n1 acknowledged id 1 (ended 00:00:00.010000) and id 3 (started 00:00:00.050000); n2 acknowledged id 2 (00:00:00.020000..00:00:00.030000) and id 2"},
			acked: 3,
		},
		{
			name: "a failback in a new term is not an overlap",
			in: func() Input {
				in := Input{
					Ops:     []Op{ok(1, "n1", 0, 10), ok(2, "n1", 20, 30), ok(3, "n2", 40, 50), ok(4, "n2", 60, 70), ok(5, "n1", 80, 90)},
					Present: present(1, 2, 3, 4, 5),
				}
				in.Ops[4].Term = 3
				return in
			},
			acked: 5,
		},
		{
			name: "the same failback without terms is reported",
			in: func() Input {
				return Input{
					Ops:     []Op{ok(1, "n1", 0, 10), ok(2, "n1", 20, 30), ok(3, "n2", 40, 50), ok(4, "n2", 60, 70), ok(5, "n1", 80, 90)},
					Present: present(1, 2, 3, 4, 5),
				}
			},
			want:  []string{"two writable nodes: n1 acknowledged id 1 (ended 00:00:00.010000) and id 5"},
			acked: 5,
		},
		{
			name: "timeline of a node goes down",
			in: func() Input {
				in := failover()
				in.Observations = append(in.Observations, obs(800, "n1", 1, false))
				return in
			},
			want:  []string{"timeline of n1 went from 2"},
			acked: 5, unsure: 1,
		},
		{
			name: "old primary seen primary again on its old timeline",
			in: func() Input {
				in := failover()
				in.Observations = append(in.Observations, obs(350, "n1", 1, true))
				return in
			},
			want: []string{
				"primary timeline went from 2 (n2",
				"primary changed from n2 (timeline 2) to n1 without a new timeline (1)",
				"history key names timeline 1, not older than the primary's timeline 1",
			},
			acked: 5, unsure: 1,
		},
		{
			name: "a slow answer of the old primary that overlaps the new one's is no regression",
			in: func() Input {
				in := failover()
				// Asked at 250 ms (before n2's promotion), answered at 350 ms.
				late := obs(350, "n1", 1, true)
				late.Start = at(250)
				in.Observations = append(in.Observations, late)
				return in
			},
			acked: 5, unsure: 1,
		},
		{
			name: "the old primary asked after the new one answered is a regression",
			in: func() Input {
				in := failover()
				late := obs(400, "n1", 1, true)
				late.Start = at(315)
				in.Observations = append(in.Observations, late)
				return in
			},
			want: []string{
				"primary timeline went from 2 (n2",
				"primary changed from n2 (timeline 2) to n1 without a new timeline (1)",
				"history key names timeline 1, not older than the primary's timeline 1",
			},
			acked: 5, unsure: 1,
		},
		{
			name: "history key misses the failover",
			in: func() Input {
				in := failover()
				in.History = []HistoryEntry{}
				return in
			},
			want:  []string{"history key has no entry for the change from n1 (timeline 1) to n2 (timeline 2)"},
			acked: 5, unsure: 1,
		},
		{
			name: "history key names the wrong leader",
			in: func() Input {
				in := failover()
				in.History = []HistoryEntry{{Timeline: 1, NewLeader: "n3"}}
				return in
			},
			want:  []string{"history key has no entry for the change from n1"},
			acked: 5, unsure: 1,
		},
		{
			name: "history key out of order",
			in: func() Input {
				in := failover()
				in.History = []HistoryEntry{{Timeline: 1, NewLeader: "n2"}, {Timeline: 1, NewLeader: "n2"}}
				return in
			},
			want:  []string{"history key not ordered: timeline 1 after 1"},
			acked: 5, unsure: 1,
		},
		{
			name: "history key ahead of the primary",
			in: func() Input {
				in := failover()
				in.History = append(in.History, HistoryEntry{Timeline: 2, NewLeader: "n1"})
				return in
			},
			want:  []string{"history key names timeline 2, not older than the primary's timeline 2"},
			acked: 5, unsure: 1,
		},
		{
			name: "no change of primary needs no history",
			in: func() Input {
				return Input{
					Ops:          []Op{ok(1, "n1", 0, 10)},
					Present:      present(1),
					Sync:         true,
					Observations: []Observation{obs(0, "n1", 4, true), obs(500, "n1", 4, true)},
					History:      []HistoryEntry{{Timeline: 1}, {Timeline: 2, NewLeader: "n2"}, {Timeline: 3, NewLeader: "n1"}},
				}
			},
			acked: 1,
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			in := tc.in()
			r := Check(in)
			got := r.Violations(in.Sync)
			if len(got) != len(tc.want) {
				t.Fatalf("violations:\n%s\nwant %d: %q", strings.Join(got, "\n"), len(tc.want), tc.want)
			}
			for i := range got {
				if !strings.Contains(got[i], tc.want[i]) {
					t.Errorf("violation %d = %q, want it to contain %q", i, got[i], tc.want[i])
				}
			}
			if diff := cmp.Diff([]int{tc.lost, tc.acked, tc.unsure}, []int{len(r.Lost), r.Acked, r.Unknown}); diff != "" {
				t.Errorf("lost, acked, unknown (-want +got):\n%s", diff)
			}
		})
	}
}

func TestPrimaries(t *testing.T) {
	t.Parallel()
	got := Primaries([]Observation{
		obs(30, "n2", 2, true), obs(0, "n1", 1, true), obs(10, "n1", 1, true), obs(20, "n2", 1, false), obs(40, "n1", 3, true),
	})
	if diff := cmp.Diff([]string{"n1", "n2", "n1"}, got); diff != "" {
		t.Errorf("Primaries (-want +got):\n%s", diff)
	}
}
