package daemon

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/ramd-project/ramd/daemon/proc"
)

// answerCheckEvery is how often a postmaster that looks healthy in /proc is still asked to
// accept a new connection (pg.Instance.Answers). Each check forks a backend on the server
// (about 15 ms of CPU on the project's machine), so it is not made every cycle: a stopped
// postmaster shows in /proc at once, and a hung server fails the status read anyway. The
// periodic check catches a postmaster hung in a state /proc does not tell, within this long.
const answerCheckEvery = 10 * time.Second

// errPostmasterStopped: /proc shows the postmaster stopped (SIGSTOP) or traced.
var errPostmasterStopped = errors.New("the postmaster is stopped (SIGSTOP or traced)")

// answerCheck decides from the postmaster's /proc state (0: unknown) whether this cycle
// must ask the server to accept a new connection, and whether it is stopped and so silent
// without asking: stopped ('T', 't') is silent; sleeping or running ('S', 'R') needs a check
// only while the server is silent already (to see it answer again) or once the last check
// is answerCheckEvery old; any other state (uninterruptible sleep on storage, say) or an
// unknown one is checked every cycle.
func answerCheck(state byte, silent bool, sinceLast time.Duration) (check, stopped bool) {
	switch state {
	case 'T', 't':
		return false, true
	case 'S', 'R':
		return silent || sinceLast >= answerCheckEvery, false
	}
	return true, false
}

// postmasterAnswers is the cycle's test of a running postmaster at now: nil when it is not
// known to be stopped and, when this cycle checks (answerCheck), it accepted a new
// connection.
func (n *Node) postmasterAnswers(ctx context.Context, pid int, now time.Duration) error {
	var state byte
	if st, err := proc.ReadStat(pid); err == nil {
		state = st.State
	}
	check, stopped := answerCheck(state, n.pgMem.silence.Silent, now-n.pgMem.answerCheckedAt)
	if stopped {
		return fmt.Errorf("postmaster %d: %w", pid, errPostmasterStopped)
	}
	if !check {
		return nil
	}
	n.pgMem.answerCheckedAt = now
	if err := n.pg.Answers(ctx); err != nil {
		return fmt.Errorf("postmaster %d: %w", pid, err)
	}
	return nil
}
