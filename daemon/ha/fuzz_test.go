package ha

import (
	"testing"
	"time"
)

// FuzzDecide checks the safety invariants of Decide on random inputs.
func FuzzDecide(f *testing.F) {
	f.Add(uint64(0), uint64(0), int64(0), int64(0), uint8(0), uint8(0))
	f.Add(uint64(1<<40-1), uint64(12345), int64(5000), int64(100), uint8(3), uint8(7))
	f.Fuzz(func(t *testing.T, bits, lsns uint64, seenAgoMs, confirmedAgoMs int64, who, sw uint8) {
		in := fuzzInput(bits, lsns, seenAgoMs, confirmedAgoMs, who, sw)
		p := Decide(in)
		checkInvariants(t, in, p)
	})
}

func fuzzInput(bits, lsns uint64, seenAgoMs, confirmedAgoMs int64, who, sw uint8) Input {
	b := func(i uint) bool { return bits&(1<<i) != 0 }
	names := []string{"n1", "n2", "n3"}
	now := 1000 * time.Second
	in := Input{
		Now:              now,
		Name:             names[int(who)%3],
		Timings:          timings,
		MaxStartFailures: 3,
		ConsulOK:         b(0),
		SessionOK:        b(1),
		Initialized:      b(2),
		Paused:           b(3),
		OperatorStart:    b(33),
		RestartOverdue:   b(34),
		Restoring:        b(35),
		NoFailover:       b(4),
		LeaderReleased:   b(5),
		LeaderOptime:     lsns % 5000,
		LeaderSeenAt:     now - time.Duration(abs(seenAgoMs)%20000)*time.Millisecond,
	}
	if b(6) {
		in.ClusterSystemID = 42
	}
	in.Session = "s-" + in.Name
	if b(7) {
		holder := names[int(who>>2)%3]
		in.Leader = LeaderKey{Present: true, Name: holder, Session: "s-" + holder}
		if b(8) {
			in.Leader.Session = "old"
		}
	}
	if b(9) {
		in.LockConfirmedAt = now - time.Duration(abs(confirmedAgoMs)%10000)*time.Millisecond
	}
	in.PG = PGState{
		DataEmpty:     b(10),
		SystemID:      42,
		Running:       b(11),
		InRecovery:    b(12),
		WasPrimary:    b(13),
		Timeline:      1 + int(bits>>41)%2,
		LSN:           (lsns >> 16) % 5000,
		StartFailures: int(bits>>44) % 5,
		RewindFailed:  b(14),
	}
	if b(15) {
		in.PG.SystemID = 7
	}
	if b(36) {
		in.PG.Unknown = true
		in.PG.SilentFor = time.Duration(abs(confirmedAgoMs)%40000) * time.Millisecond
	}
	if b(37) {
		in.Timings.PGUnresponsiveTimeout = 10 * time.Second
	}
	in.LeaderProbe = Probe{Asked: b(16), Reached: b(17), Primary: b(18), Running: b(19), HasLock: b(20), ConsulOK: b(21)}
	for i, n := range names {
		m := Member{Name: n, Role: "replica", State: "running", LSN: (lsns >> (20 + 4*i)) % 5000, NoFailover: b(uint(22 + i))}
		m.Probe = Probe{Reached: b(uint(25 + i)), Running: true, ConsulOK: b(uint(28 + i)), LSN: m.LSN}
		in.Members = append(in.Members, m)
	}
	if b(31) {
		in.Sync = SyncGate{Enabled: true, Quorum: int(bits>>47) % 3}
		for i, n := range names {
			if b(uint(32 + i)) {
				in.Sync.Members = append(in.Sync.Members, n)
			}
		}
	}
	if sw%4 != 0 {
		in.Switchover = &Switchover{From: names[int(sw>>2)%3], To: names[int(sw>>4)%3], Due: sw&0x40 != 0, AllowDataLoss: sw&0x80 != 0}
		if sw%4 == 2 {
			in.Switchover.To = ""
		}
	}
	return in
}

func abs(v int64) int64 {
	if v < 0 {
		return -v
	}
	return v
}

func checkInvariants(t *testing.T, in Input, p Plan) {
	t.Helper()
	acquired := in.HoldsLock()
	for _, a := range p.Actions {
		switch a.Kind {
		case ActAcquire:
			acquired = true
		case ActPromote:
			if !acquired {
				t.Fatalf("promote without the lock: %s\n%+v", p, in)
			}
		}
	}
	if in.Sync.Enabled && p.Has(ActAcquire) && p.Has(ActPromote) && !in.HoldsLock() {
		forced := in.Switchover != nil && in.Switchover.To == in.Name && in.Switchover.AllowDataLoss
		if !in.Sync.has(in.Name) && !forced {
			t.Fatalf("promotes %s, not in the sync key %v: %s", in.Name, in.Sync.Members, p)
		}
		if !forced {
			compared := 0
			for _, m := range in.Members {
				if m.Name != in.Name && in.Sync.has(m.Name) && m.Probe.Reached && m.Probe.Running && m.Probe.LSN > 0 {
					compared++
					if m.Probe.LSN > in.PG.LSN {
						t.Fatalf("promotes %s behind synchronous standby %s: %s", in.Name, m.Name, p)
					}
				}
			}
			if compared < in.Sync.Quorum {
				t.Fatalf("promotes after comparing with %d of %d: %s", compared, in.Sync.Quorum, p)
			}
		}
	}
	if p.Has(ActFenceUnresponsive) {
		// Only a lock holder whose running server stayed silent past the limit hands over
		// this way, never in pause, and never in a plan that also takes or uses the lock.
		if !in.HoldsLock() || in.Paused || !in.PG.Unknown || !in.Timings.Unresponsive(in.PG.SilentFor) {
			t.Fatalf("fence_unresponsive without a silent leader past the limit: %s\n%+v", p, in)
		}
		if len(p.Actions) != 1 {
			t.Fatalf("fence_unresponsive with other actions: %s", p)
		}
	}
	if p.Has(ActPromote) && p.Has(ActFence) {
		t.Fatalf("promote and fence in one plan: %s", p)
	}
	if in.Paused && !in.OperatorStart {
		for _, k := range []Kind{ActFence, ActFenceUnresponsive, ActStartPrimary, ActRewind, ActReclone, ActClone, ActBootstrap} {
			if p.Has(k) {
				t.Fatalf("paused plan has %s: %s", k, p)
			}
		}
		if p.Has(ActPromote) && !(in.HoldsLock() && in.Switchover != nil) {
			t.Fatalf("paused plan promotes without a manual switchover: %s", p)
		}
	}
	if in.Restoring && in.ConsulOK && in.Initialized && in.ClusterSystemID != 0 {
		// The restore job owns PostgreSQL: the loop starts, clones and promotes nothing.
		for _, k := range []Kind{ActPromote, ActStartPrimary, ActStartReplica, ActRewind, ActReclone, ActClone, ActBootstrap, ActFollow} {
			if p.Has(k) {
				t.Fatalf("plan during a restore has %s: %s", k, p)
			}
		}
	}
	primary := in.PG.Running && !in.PG.InRecovery && !in.PG.DataEmpty
	relevant := in.ConsulOK && in.Initialized && in.ClusterSystemID == in.PG.SystemID && in.ClusterSystemID != 0
	if primary && !in.Paused && relevant && in.Leader.Present && in.Leader.Name != in.Name && !p.Has(ActFence) {
		t.Fatalf("primary sees %s holding the lock and does not fence: %s", in.Leader.Name, p)
	}
	if primary && !in.Paused && !in.ConsulOK && !in.LockValid() && !p.Has(ActFence) {
		t.Fatalf("primary past its fencing deadline without consul does not fence: %s", p)
	}
	if primary && !in.Paused && relevant && !in.HoldsLock() && !in.LockValid() && !p.Has(ActFence) {
		t.Fatalf("primary without a valid lock does not fence: %s", p)
	}
	if p.Has(ActAcquire) && !in.HoldsLock() && !(primary && in.LockValid()) {
		if in.Leader.Present && in.Leader.Name != in.Name && !leaderStale(in) {
			t.Fatalf("races a leader seen alive within ttl: %s", p)
		}
		if gone, _ := leaderGone(in); !gone {
			t.Fatalf("races while the leader is not gone: %s", p)
		}
	}
}
