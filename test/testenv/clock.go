package testenv

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// A step of the wall clock cannot be confined to one network namespace: Linux's time
// namespaces offset only CLOCK_MONOTONIC and CLOCK_BOOTTIME. StepClock therefore steps the
// wall clock (CLOCK_REALTIME) of the whole machine, as an NTP step or an operator's date -s
// would on a host: every process sees it, the Consul servers and PostgreSQL included. The
// true time is kept as the pair (wall, monotonic) read before the first step, in a file, so
// that RestoreClock can put it back exactly from CLOCK_MONOTONIC (which no step moves) even
// after a test process was killed in the middle of a step.
var clockFile = filepath.Join(os.TempDir(), "ramd-test-clock")

// ClockStepOptIn is the variable that allows StepClock: stepping the machine's clock is
// never done unasked.
const ClockStepOptIn = "RAMD_FAULTS_CLOCK_STEP"

// StepClock moves the machine's wall clock by d (forward or back) from where it is now, and
// registers RestoreClock in t.Cleanup. The test is skipped unless ClockStepOptIn is "1", and
// where the process may not set the clock (it needs CAP_SYS_TIME).
func StepClock(t testing.TB, d time.Duration) {
	t.Helper()
	if os.Getenv(ClockStepOptIn) != "1" {
		t.Skipf("skipping: stepping the wall clock moves the whole machine's clock; set %s=1 to allow it", ClockStepOptIn)
	}
	if err := RestoreClock(); err != nil {
		t.Fatalf("restore the clock before a step: %v", err)
	}
	wall, mono, err := readClocks()
	if err != nil {
		t.Fatal(err)
	}
	keep := fmt.Sprintf("%d %d\n", wall.UnixNano(), mono)
	if err := os.WriteFile(clockFile, []byte(keep), 0o600); err != nil {
		t.Fatalf("record the true time: %v", err)
	}
	t.Cleanup(func() {
		if err := RestoreClock(); err != nil {
			t.Errorf("restore the clock: %v", err)
		}
	})
	ts := unix.NsecToTimespec(wall.Add(d).UnixNano())
	if err := unix.ClockSettime(unix.CLOCK_REALTIME, &ts); err != nil {
		_ = os.Remove(clockFile)
		if errors.Is(err, unix.EPERM) {
			Missing(t, "cannot set the wall clock here: %v", err)
		}
		t.Fatalf("step the wall clock by %s: %v", d, err)
	}
}

// RestoreClock puts the wall clock back to the true time recorded by the first StepClock
// (that time plus the monotonic time elapsed since), and forgets it. Without a record it
// does nothing.
func RestoreClock() error {
	b, err := os.ReadFile(clockFile)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("read %s: %w", clockFile, err)
	}
	f := strings.Fields(string(b))
	if len(f) != 2 {
		return fmt.Errorf("%s: want \"<wall ns> <monotonic ns>\", have %q", clockFile, b)
	}
	wall0, err1 := strconv.ParseInt(f[0], 10, 64)
	mono0, err2 := strconv.ParseInt(f[1], 10, 64)
	if err := errors.Join(err1, err2); err != nil {
		return fmt.Errorf("%s: %w", clockFile, err)
	}
	_, mono, err := readClocks()
	if err != nil {
		return err
	}
	ts := unix.NsecToTimespec(wall0 + (mono - mono0))
	if err := unix.ClockSettime(unix.CLOCK_REALTIME, &ts); err != nil {
		return fmt.Errorf("set the wall clock back: %w", err)
	}
	return os.Remove(clockFile)
}

// readClocks reads the wall clock and CLOCK_MONOTONIC (in ns) one after the other.
func readClocks() (time.Time, int64, error) {
	var w, m unix.Timespec
	if err := unix.ClockGettime(unix.CLOCK_REALTIME, &w); err != nil {
		return time.Time{}, 0, fmt.Errorf("read the wall clock: %w", err)
	}
	if err := unix.ClockGettime(unix.CLOCK_MONOTONIC, &m); err != nil {
		return time.Time{}, 0, fmt.Errorf("read the monotonic clock: %w", err)
	}
	return time.Unix(0, w.Nano()), m.Nano(), nil
}
