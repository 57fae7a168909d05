package daemon

import (
	"testing"
	"time"

	"github.com/ramd-project/ramd/daemon/pg"
)

func TestStandbyStalled(t *testing.T) {
	t.Parallel()
	t0 := time.Unix(1000, 0)
	const limit = 3 * time.Second
	rep := func(sent, flush pg.LSN) pg.Replication { return pg.Replication{SentLSN: sent, FlushLSN: flush} }
	tests := []struct {
		name        string
		prev        standbyProgress
		seen        bool
		r           pg.Replication
		now         time.Time
		wantStalled bool
		wantAt      time.Time
	}{
		{name: "first sight starts the clock", r: rep(200, 100), now: t0, wantAt: t0},
		{name: "caught up is never stalled", prev: standbyProgress{flush: 100, at: t0}, seen: true, r: rep(100, 100), now: t0.Add(time.Minute), wantAt: t0.Add(time.Minute)},
		{name: "flush moved resets the clock", prev: standbyProgress{flush: 100, at: t0}, seen: true, r: rep(300, 200), now: t0.Add(10 * time.Second), wantAt: t0.Add(10 * time.Second)},
		{name: "behind without movement within the limit", prev: standbyProgress{flush: 100, at: t0}, seen: true, r: rep(300, 100), now: t0.Add(limit), wantAt: t0},
		{name: "behind without movement past the limit", prev: standbyProgress{flush: 100, at: t0}, seen: true, r: rep(300, 100), now: t0.Add(limit + time.Millisecond), wantStalled: true, wantAt: t0},
		{name: "a stalled standby that confirms again recovers", prev: standbyProgress{flush: 100, at: t0}, seen: true, r: rep(300, 300), now: t0.Add(time.Minute), wantAt: t0.Add(time.Minute)},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			got, stalled := standbyStalled(tc.prev, tc.seen, tc.r, tc.now, limit)
			if stalled != tc.wantStalled || !got.at.Equal(tc.wantAt) {
				t.Errorf("standbyStalled = (%+v, %v), want stalled %v since %s", got, stalled, tc.wantStalled, tc.wantAt)
			}
		})
	}
}
