// Command ramd-fence is ramd's fence guard as a program of its own: it reads its duty from
// standard input (package fence) and kills the postmaster at the fencing deadline when ramd
// does not move it. It links only the fence package, so the guard beside every primary costs
// a few megabytes instead of a second copy of ramd. ramd starts it when it lies next to the
// ramd binary, and runs "ramd fence-guard" otherwise.
package main

import (
	"context"
	"log/slog"
	"os"
	"os/signal"
	"runtime"
	"syscall"

	"github.com/ramd-project/ramd/daemon/fence"
)

func main() {
	// One goroutine does the work: more processors would only mean more threads woken for
	// each line ramd sends.
	runtime.GOMAXPROCS(1)
	// The guard ignores the signals a terminal sends to its group; only ramd's pipe closing
	// or a SIGKILL ends it.
	signal.Ignore(syscall.SIGINT, syscall.SIGTERM, syscall.SIGHUP)
	logger := slog.New(slog.NewTextHandler(os.Stderr, nil)).With("component", "fence-guard")
	if err := fence.RunGuard(context.Background(), os.Stdin, logger); err != nil {
		logger.Error("guard failed", "err", err)
		os.Exit(1)
	}
}
