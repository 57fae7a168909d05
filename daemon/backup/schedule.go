package backup

import (
	"fmt"
	"time"

	"github.com/ramd-project/ramd/daemon/dynconf"
)

// maxMissedTicks bounds the walk over the ticks a stopped cluster missed.
const maxMissedTicks = 10000

// Due decides whether a schedule fires now. last is the tick it last fired for (or the time
// it was first seen, so a new schedule does not fire for the past). It returns the latest
// tick in (last, now] and true, or false when no tick passed: a cluster that was down over
// several ticks runs the backup once, not once per missed tick. Times are taken in UTC.
func Due(spec string, last, now time.Time) (time.Time, bool, error) {
	sched, err := dynconf.CronParser.Parse(spec)
	if err != nil {
		return time.Time{}, false, fmt.Errorf("schedule %q: %w", spec, err)
	}
	last, now = last.UTC(), now.UTC()
	tick := sched.Next(last)
	if tick.IsZero() || tick.After(now) {
		return time.Time{}, false, nil
	}
	for range maxMissedTicks {
		next := sched.Next(tick)
		if next.IsZero() || next.After(now) {
			return tick, true, nil
		}
		tick = next
	}
	return now, true, nil // too many missed ticks to walk: count now as the tick
}

// NextTick is the schedule's next tick after t (zero when it never fires again).
func NextTick(spec string, t time.Time) (time.Time, error) {
	sched, err := dynconf.CronParser.Parse(spec)
	if err != nil {
		return time.Time{}, fmt.Errorf("schedule %q: %w", spec, err)
	}
	return sched.Next(t.UTC()), nil
}
