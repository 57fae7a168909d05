package fence

import (
	"time"

	"golang.org/x/sys/unix"
)

// Now returns the host's CLOCK_MONOTONIC reading. It is the one clock ramd uses for
// deadlines, shared by the HA loop and the guard process.
func Now() time.Duration {
	var ts unix.Timespec
	if err := unix.ClockGettime(unix.CLOCK_MONOTONIC, &ts); err != nil {
		panic("fence: CLOCK_MONOTONIC unavailable: " + err.Error()) // programmer/platform error
	}
	return time.Duration(ts.Nano())
}
