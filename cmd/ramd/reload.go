package main

import (
	"context"
	"log/slog"
	"os"
	"os/signal"
	"sync"
	"syscall"

	"github.com/ramd-project/ramd/daemon"
	"github.com/ramd-project/ramd/daemon/pg"
)

// handleSIGHUP reads the database password files again on every SIGHUP and hands the
// passwords to the node, which rotates them (daemon.Node.RotatePasswords). Only the _FILE
// variants are read again: a password given in the environment cannot change. A file that
// cannot be read is logged and changes nothing. The returned function stops the handler and
// waits for it.
func handleSIGHUP(ctx context.Context, c pg.Config, node *daemon.Node, logger *slog.Logger) (stop func()) {
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	ctx, cancel := context.WithCancel(ctx)
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			select {
			case <-ctx.Done():
				return
			case <-hup:
			}
			if c.SuperuserPasswordFile == "" && c.ReplicationPasswordFile == "" {
				logger.Warn("SIGHUP: no RAMD_PG_*_PASSWORD_FILE to read again; nothing changes")
				continue
			}
			next := pg.Config{SuperuserPasswordFile: c.SuperuserPasswordFile, ReplicationPasswordFile: c.ReplicationPasswordFile}
			if err := next.ReadSecretFiles(); err != nil {
				logger.Error("SIGHUP: read the password files; nothing changes", "err", err)
				continue
			}
			logger.Info("SIGHUP: password files read again; rotating the database passwords")
			node.RotatePasswords(pg.Passwords{Superuser: next.SuperuserPassword, Replication: next.ReplicationPassword})
		}
	}()
	return func() {
		signal.Stop(hup)
		cancel()
		wg.Wait()
	}
}
