package ha

import (
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

func TestLeadershipSaw(t *testing.T) {
	t.Parallel()
	const now = 100 * time.Second
	held := LeaderKey{Present: true, Name: "n1", Session: "s1"}
	seen := Leadership{LastLeader: "n1", KeyPresent: true, KeySession: "s1", StatusIndex: 7, SeenAt: 90 * time.Second, AnnouncedTTL: 3 * time.Second}
	tests := []struct {
		name string
		from Leadership
		saw  Sighting
		want Leadership
	}{
		{"first read counts from now", Leadership{}, Sighting{Leader: held, StatusIndex: 7},
			Leadership{LastLeader: "n1", KeyPresent: true, KeySession: "s1", StatusIndex: 7, SeenAt: now}},
		{"first read without a leader counts from now", Leadership{}, Sighting{},
			Leadership{SeenAt: now}},
		{"new heartbeat refreshes", seen, Sighting{Leader: held, StatusIndex: 8, AnnouncedTTL: 3 * time.Second},
			Leadership{LastLeader: "n1", KeyPresent: true, KeySession: "s1", StatusIndex: 8, SeenAt: now, AnnouncedTTL: 3 * time.Second}},
		{"same heartbeat does not refresh", seen, Sighting{Leader: held, StatusIndex: 7, AnnouncedTTL: 3 * time.Second}, seen},
		{"new holder refreshes", seen, Sighting{Leader: LeaderKey{Present: true, Name: "n2", Session: "s2"}, StatusIndex: 7},
			Leadership{LastLeader: "n2", KeyPresent: true, KeySession: "s2", StatusIndex: 7, SeenAt: now, AnnouncedTTL: 3 * time.Second}},
		{"deleted leader key does not refresh", seen, Sighting{StatusIndex: 7},
			Leadership{LastLeader: "n1", StatusIndex: 7, SeenAt: 90 * time.Second, AnnouncedTTL: 3 * time.Second}},
		{"deleted status key does not refresh", seen, Sighting{Leader: held},
			Leadership{LastLeader: "n1", KeyPresent: true, KeySession: "s1", SeenAt: 90 * time.Second, AnnouncedTTL: 3 * time.Second}},
		{"status key written again after a deletion refreshes", Leadership{LastLeader: "n1", KeyPresent: true, KeySession: "s1", SeenAt: 90 * time.Second},
			Sighting{Leader: held, StatusIndex: 3},
			Leadership{LastLeader: "n1", KeyPresent: true, KeySession: "s1", StatusIndex: 3, SeenAt: now}},
		{"a longer announced ttl is kept", seen, Sighting{Leader: held, StatusIndex: 9, AnnouncedTTL: 6 * time.Second},
			Leadership{LastLeader: "n1", KeyPresent: true, KeySession: "s1", StatusIndex: 9, SeenAt: now, AnnouncedTTL: 6 * time.Second}},
		{"a heartbeat without an announcement keeps the last one", seen, Sighting{Leader: held, StatusIndex: 9},
			Leadership{LastLeader: "n1", KeyPresent: true, KeySession: "s1", StatusIndex: 9, SeenAt: now, AnnouncedTTL: 3 * time.Second}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			if d := cmp.Diff(tt.want, tt.from.Saw(tt.saw, now)); d != "" {
				t.Errorf("Saw (-want +got):\n%s", d)
			}
		})
	}
}

func TestLeadershipConfirmedBy(t *testing.T) {
	t.Parallel()
	l := Leadership{LastLeader: "n1", SeenAt: 10 * time.Second}
	if got := l.ConfirmedBy("n1", 12*time.Second).SeenAt; got != 12*time.Second {
		t.Errorf("confirmation by the known leader: SeenAt %s, want 12s", got)
	}
	if got := l.ConfirmedBy("n2", 12*time.Second).SeenAt; got != 10*time.Second {
		t.Errorf("confirmation by another node moved SeenAt to %s", got)
	}
	if got := l.ConfirmedBy("n1", 9*time.Second).SeenAt; got != 10*time.Second {
		t.Errorf("an older confirmation moved SeenAt back to %s", got)
	}
	if got := (Leadership{}).ConfirmedBy("", 9*time.Second).SeenAt; got != 0 {
		t.Errorf("an empty confirmation moved SeenAt to %s", got)
	}
}

func TestStaleAndLockAtTheBoundaries(t *testing.T) {
	t.Parallel()
	l := Leadership{SeenAt: 10 * time.Second}
	tests := []struct {
		name      string
		now       time.Duration
		announced time.Duration
		stale     bool
	}{
		{"just before ttl", 13*time.Second - time.Nanosecond, 0, false},
		{"exactly at ttl", 13 * time.Second, 0, true},
		{"at ttl but a longer ttl announced", 13 * time.Second, 5 * time.Second, false},
		{"exactly at the announced ttl", 15 * time.Second, 5 * time.Second, true},
	}
	for _, tt := range tests {
		l := l
		l.AnnouncedTTL = tt.announced
		if got := l.Stale(tt.now, timings); got != tt.stale {
			t.Errorf("%s: Stale = %v, want %v", tt.name, got, tt.stale)
		}
	}
	k := Lock{Held: true, ConfirmedAt: 10 * time.Second}
	if !k.Valid(12*time.Second-time.Nanosecond, timings, 0) {
		t.Error("lock invalid just before the fence deadline")
	}
	if k.Valid(12*time.Second, timings, 0) {
		t.Error("lock valid exactly at the fence deadline")
	}
	if k.Valid(11*time.Second+time.Nanosecond, timings, 2*time.Second) {
		t.Error("lock valid past a shorter announced window")
	}
	if (Lock{ConfirmedAt: 10 * time.Second}).Valid(11*time.Second, timings, 0) || (Lock{Held: true}).Valid(time.Second, timings, 0) {
		t.Error("a lock not held or never confirmed is valid")
	}
	if got := k.Deadline(timings, 0); got != 12*time.Second {
		t.Errorf("Deadline = %s, want 12s", got)
	}
	if got := k.WorkUntil(10500*time.Millisecond, timings, 0); got != 11*time.Second {
		t.Errorf("WorkUntil = %s, want 11s (the next heartbeat)", got)
	}
	if got := k.WorkUntil(12*time.Second, timings, 0); got != 0 {
		t.Errorf("WorkUntil past the deadline = %s, want 0 (no bound)", got)
	}
	if got := (Lock{ConfirmedAt: 10 * time.Second}).WorkUntil(10500*time.Millisecond, timings, 0); got != 0 {
		t.Errorf("WorkUntil of a lock not held = %s, want 0 (no bound)", got)
	}
}

func TestNextWake(t *testing.T) {
	t.Parallel()
	const end = 100 * time.Second
	replica := Leadership{LastLeader: "n1", SeenAt: 99 * time.Second}
	tests := []struct {
		name string
		w    Wake
		want time.Duration
	}{
		{"replica with a fresh leader waits loop_wait", Wake{End: end, Timings: timings, Self: "n2", Leadership: Leadership{LastLeader: "n1", SeenAt: end}}, time.Second},
		{"replica wakes when it may race", Wake{End: end, Timings: timings, Self: "n2", Leadership: Leadership{LastLeader: "n1", SeenAt: 97500 * time.Millisecond}},
			500*time.Millisecond + time.Millisecond},
		{"replica past its race time waits loop_wait", Wake{End: end, Timings: timings, Self: "n2", Leadership: Leadership{LastLeader: "n1", SeenAt: 90 * time.Second}}, time.Second},
		{"replica counts the announced ttl", Wake{End: end, Timings: timings, Self: "n2", Leadership: Leadership{LastLeader: "n1", SeenAt: 95500 * time.Millisecond, AnnouncedTTL: 5 * time.Second}},
			500*time.Millisecond + time.Millisecond},
		{"never saw a leader", Wake{End: end, Timings: timings, Self: "n2", Leadership: Leadership{SeenAt: 99 * time.Second}}, time.Second},
		{"was the leader itself", Wake{End: end, Timings: timings, Self: "n1", Leadership: replica}, time.Second},
		{"holds the key", Wake{End: end, Timings: timings, Self: "n2", HoldsKey: true, Leadership: replica}, time.Second},
		{"leader keeps a fixed rate", Wake{End: end, Timings: timings, Self: "n1", Lock: Lock{Held: true, ConfirmedAt: 99700 * time.Millisecond}}, 700 * time.Millisecond},
		{"leader after a slow cycle heartbeats soon", Wake{End: end, Timings: timings, Self: "n1", Lock: Lock{Held: true, ConfirmedAt: 98500 * time.Millisecond}}, OverdueWake},
		{"leader just overdue waits OverdueWake", Wake{End: end, Timings: timings, Self: "n1", Lock: Lock{Held: true, ConfirmedAt: 98999*time.Millisecond + 999*time.Microsecond}}, OverdueWake},
		{"failsafe asks again soon", Wake{End: end, Timings: timings, Self: "n1", Failsafe: true, FailsafeInterval: 300 * time.Millisecond,
			Lock: Lock{Held: true, ConfirmedAt: 99900 * time.Millisecond}}, 300 * time.Millisecond},
		{"failed failsafe round late in the window: no retry at once", Wake{End: end, Timings: timings, Self: "n1", Unconfirmed: true, FailsafeInterval: 300 * time.Millisecond,
			Lock: Lock{Held: true, ConfirmedAt: 98100 * time.Millisecond}}, 300 * time.Millisecond},
		{"failed round of a lock no longer held: loop_wait", Wake{End: end, Timings: timings, Self: "n1", Unconfirmed: true, FailsafeInterval: 300 * time.Millisecond,
			Lock: Lock{ConfirmedAt: 98100 * time.Millisecond}}, time.Second},
		{"lock past its deadline (guard fired, Consul away): loop_wait, no spin", Wake{End: end, Timings: timings, Self: "n1", Unconfirmed: true, FailsafeInterval: 300 * time.Millisecond,
			Lock: Lock{Held: true, ConfirmedAt: 97 * time.Second}}, time.Second},
		{"living on failsafe past the deadline: loop_wait", Wake{End: end, Timings: timings, Self: "n1", Failsafe: true, FailsafeInterval: 300 * time.Millisecond,
			Lock: Lock{Held: true, ConfirmedAt: 97 * time.Second}}, time.Second},
	}
	for _, tt := range tests {
		if got := NextWake(tt.w); got != tt.want {
			t.Errorf("%s: NextWake = %s, want %s", tt.name, got, tt.want)
		}
	}
}

// FuzzLeadershipSaw: whatever the sightings, a read without a leader key and with the status
// key absent or unchanged never refreshes SeenAt, and SeenAt never goes back.
func FuzzLeadershipSaw(f *testing.F) {
	f.Add(true, "s1", uint64(7), true, "s1", uint64(7), int64(5))
	f.Add(true, "s1", uint64(7), false, "", uint64(0), int64(5))
	f.Fuzz(func(t *testing.T, present bool, session string, idx uint64, present2 bool, session2 string, idx2 uint64, step int64) {
		if step <= 0 {
			return
		}
		l := Leadership{}.Saw(Sighting{Leader: LeaderKey{Present: present, Name: "n1", Session: session}, StatusIndex: idx}, time.Second)
		next := l.Saw(Sighting{Leader: LeaderKey{Present: present2, Name: "n1", Session: session2}, StatusIndex: idx2}, time.Second+time.Duration(step))
		if next.SeenAt < l.SeenAt {
			t.Fatalf("SeenAt went back from %s to %s", l.SeenAt, next.SeenAt)
		}
		if !present2 && (idx2 == 0 || idx2 == l.StatusIndex) && next.SeenAt != l.SeenAt {
			t.Fatalf("a read with no leader key and no new heartbeat refreshed SeenAt: %+v -> %+v", l, next)
		}
	})
}
