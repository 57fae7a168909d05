package main

import (
	"context"
	"log/slog"
	"os"
	"os/signal"
	"sync"
	"syscall"

	"github.com/ramd-project/ramd/api"
	"github.com/ramd-project/ramd/daemon"
	"github.com/ramd-project/ramd/daemon/pg"
)

// handleSIGHUP reloads on every SIGHUP what can change without a restart:
//   - the API's credential files (RAMD_API_PASSWORD_FILE, RAMD_API_TOKEN_FILE), certificate,
//     key and CA bundle; the listener takes them at its next handshake and request, and the
//     node's calls to other members use them from then on;
//   - the database password files, handed to the node, which rotates them
//     (daemon.Node.RotatePasswords).
//
// Only the _FILE variants are read again: a secret given in the environment cannot change.
// A part that cannot be read is logged and keeps its previous state; the other part still
// reloads. The returned function stops the handler and waits for it.
func handleSIGHUP(ctx context.Context, c pg.Config, live *api.Live, node *daemon.Node, logger *slog.Logger) (stop func()) {
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
			reloadAPI(live, node, logger)
			reloadPasswords(c, node, logger)
		}
	}()
	return func() {
		signal.Stop(hup)
		cancel()
		wg.Wait()
	}
}

func reloadAPI(live *api.Live, node *daemon.Node, logger *slog.Logger) {
	if err := live.Reload(); err != nil {
		logger.Error("SIGHUP: reload the API's credentials and TLS files; the API keeps the previous ones", "err", err)
		return
	}
	a := live.Auth()
	node.SetPeers(daemon.PeerAuth{User: a.Username, Password: a.Password, Token: a.Token}, live.ClientTLS())
	logger.Info("SIGHUP: the API's credentials and TLS files read again", "tls", live.ServerTLS() != nil)
}

func reloadPasswords(c pg.Config, node *daemon.Node, logger *slog.Logger) {
	if c.SuperuserPasswordFile == "" && c.ReplicationPasswordFile == "" {
		logger.Debug("SIGHUP: no RAMD_PG_*_PASSWORD_FILE to read again; the database passwords stay")
		return
	}
	next := pg.Config{SuperuserPasswordFile: c.SuperuserPasswordFile, ReplicationPasswordFile: c.ReplicationPasswordFile}
	if err := next.ReadSecretFiles(); err != nil {
		logger.Error("SIGHUP: read the password files; the database passwords stay", "err", err)
		return
	}
	logger.Info("SIGHUP: password files read again; rotating the database passwords")
	node.RotatePasswords(pg.Passwords{Superuser: next.SuperuserPassword, Replication: next.ReplicationPassword})
}
