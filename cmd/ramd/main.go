// Command ramd is the node agent: it owns one PostgreSQL server and keeps the cluster highly
// available through Consul. Configuration comes from environment variables (ramd --help).
//
// GOMAXPROCS is set once at start (from the CPU limit, or the GOMAXPROCS variable): the
// runtime would otherwise wake every second to look for a changed limit, in a process that
// sleeps most of each second.
//
//go:debug updatemaxprocs=0
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"runtime"
	"runtime/debug"
	"syscall"
	"time"

	"github.com/sethvargo/go-envconfig"
	"go.opentelemetry.io/otel"

	"github.com/ramd-project/ramd/api"
	"github.com/ramd-project/ramd/consul"
	"github.com/ramd-project/ramd/daemon"
	"github.com/ramd-project/ramd/daemon/fence"
	"github.com/ramd-project/ramd/daemon/pg"
	"github.com/ramd-project/ramd/daemon/proc"
	"github.com/ramd-project/ramd/observability"
	"github.com/ramd-project/ramd/routing"
)

// Exit codes.
const (
	exitOK     = 0
	exitFailed = 1
	exitConfig = 2
)

func main() { os.Exit(run(os.Args[1:], os.Stdout, os.Stderr)) }

func run(args []string, stdout, stderr io.Writer) int {
	if len(args) > 0 {
		switch args[0] {
		case "-h", "--help", "help":
			printHelp(stdout)
			return exitOK
		case "--version", "version":
			fmt.Fprintln(stdout, "ramd", daemon.Version)
			return exitOK
		case fence.SubcommandName:
			return runGuard(stderr)
		default:
			fmt.Fprintf(stderr, "ramd: unknown argument %q (see ramd --help)\n", args[0])
			return exitConfig
		}
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	cfg, err := loadConfig(ctx, envconfig.OsLookuper())
	if err == nil {
		err = cfg.Validate()
	}
	if err != nil {
		fmt.Fprintf(stderr, "ramd: invalid configuration: %v\n", err)
		return exitConfig
	}
	tracing, err := observability.NewTracing(ctx, os.LookupEnv, observability.Identity{
		Instance: cfg.Node.Name, Version: daemon.Version, Scope: cfg.Node.Scope})
	if err != nil {
		fmt.Fprintf(stderr, "ramd: invalid configuration: %v\n", err)
		return exitConfig
	}
	logger := observability.NewLogger(cfg.Log, stderr)
	// Export failures (collector down) are reported through the process's log.
	otel.SetErrorHandler(otel.ErrorHandlerFunc(func(err error) { logger.Warn("opentelemetry", "err", err) }))
	defer func() {
		sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
		defer cancel()
		if err := tracing.Shutdown(sctx); err != nil {
			logger.Warn("flush traces", "err", err)
		}
	}()
	if err := serve(ctx, cfg, tracing, logger); err != nil {
		logger.Error("ramd stopped with an error", "err", err)
		return exitFailed
	}
	return exitOK
}

// runGuard is the fence guard process: it reads its duty from stdin (see package fence).
func runGuard(stderr io.Writer) int {
	runtime.GOMAXPROCS(1) // one goroutine does the work (see cmd/ramd-fence)
	// The guard ignores the signals a terminal sends to its group; only ramd's pipe or a
	// SIGKILL ends it.
	signal.Ignore(syscall.SIGINT, syscall.SIGTERM, syscall.SIGHUP)
	logger := slog.New(slog.NewTextHandler(stderr, nil)).With("component", "fence-guard")
	if err := fence.RunGuard(context.Background(), os.Stdin, logger); err != nil {
		logger.Error("guard failed", "err", err)
		return exitFailed
	}
	return exitOK
}

func serve(ctx context.Context, cfg Config, tracing *observability.Tracing, logger *slog.Logger) error {
	reg := observability.NewRegistry()
	metrics, err := observability.NewMetrics(reg)
	if err != nil {
		return err
	}
	inst, err := pg.New(cfg.PG, logger)
	if err != nil {
		return fmt.Errorf("postgres: %w", err)
	}
	defer inst.Close()
	client, err := consul.New(cfg.Consul, logger)
	if err != nil {
		return fmt.Errorf("consul: %w", err)
	}
	checkAgent(ctx, client, cfg.Node.RetryTimeout, logger)
	live, err := api.NewLive(cfg.API)
	if err != nil {
		return fmt.Errorf("api tls: %w", err)
	}
	serverTLS := live.ServerTLS()
	ln, err := net.Listen("tcp", cfg.API.Listen)
	if err != nil {
		return fmt.Errorf("api listen %s: %w", cfg.API.Listen, err)
	}
	guard, err := fence.Start(ctx, logger)
	if err != nil {
		_ = ln.Close()
		return err
	}
	registrar := routing.NewRegistrar(cfg.Routing, client)
	auth := live.Auth()
	node := daemon.New(cfg.Node, daemon.Deps{
		PG: inst, Consul: client, Guard: guard, Registrar: registrar, Logger: logger,
		Telemetry: &daemon.Telemetry{TracerProvider: tracing.Provider(), Metrics: metrics},
		PeerAuth:  daemon.PeerAuth{User: auth.Username, Password: auth.Password, Token: auth.Token},
		PeerTLS:   live.ClientTLS(),
	})
	apiOpts := []api.Option{api.WithLiveAuth(live)}
	if level, msg, ok := cfg.API.OpenWarning(); ok {
		logger.Log(ctx, level, msg, "listen", cfg.API.Listen)
	}
	if tracing.Enabled() {
		apiOpts = append(apiOpts, api.WithTracerProvider(tracing.Provider()))
	}
	if serverTLS != nil && cfg.API.VerifyClient == api.VerifyRequired {
		logger.Info("the API requires client certificates: health checkers must present one signed by RAMD_API_CAFILE")
	}
	srv := api.NewServer(cfg.API, api.NewRouter(routes(node), reg, logger, time.Now, apiOpts...)) //nolint:contextcheck // the router's middleware works with each request's own context
	srv.TLSConfig = serverTLS
	// net/http's own errors (TLS handshakes of checkers without a certificate, clients that
	// hang up) go to the structured log at debug level instead of stderr.
	srv.ErrorLog = slog.NewLogLogger(logger.With("component", "http").Handler(), slog.LevelDebug)
	served := make(chan error, 1)
	go func() { served <- api.Serve(srv, ln) }()
	logger.Info("api listening", "addr", ln.Addr().String(), "api_url", cfg.Node.APIURL, "tls", serverTLS != nil, "traces", tracing.Exporter())

	stopHUP := handleSIGHUP(ctx, cfg.PG, live, node, logger)
	runCtx, stopRelease := context.WithCancel(ctx)
	released := make(chan struct{})
	go func() { defer close(released); releaseStartupPages(runCtx, releaseAfter, logger) }()
	runErr := node.Run(ctx)
	stopRelease()
	<-released
	stopHUP()

	sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
	defer cancel()
	_ = srv.Shutdown(sctx)
	if err := <-served; err != nil && !errors.Is(err, http.ErrServerClosed) {
		logger.Warn("api server", "err", err)
	}
	if err := guard.Close(sctx); err != nil {
		logger.Warn("fence guard", "err", err)
	}
	return runErr
}

// releaseAfter is how long after start ramd lets go of the pages of its binary it touched
// while starting: by then the first cycles, the API's first health checks and the
// PostgreSQL start or clone have run.
const releaseAfter = 30 * time.Second

// releaseStartupPages waits for after (or ctx), then releases the binary's code and constants
// pages touched so far (proc.ReleaseExecutablePages) and the heap freed since start, so an
// idle node's resident memory is what it runs, not everything every package's
// initialisation touched once.
func releaseStartupPages(ctx context.Context, after time.Duration, logger *slog.Logger) {
	t := time.NewTimer(after)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return
	case <-t.C:
	}
	before, _ := proc.ReadMemory(os.Getpid())
	n, err := proc.ReleaseExecutablePages()
	if err != nil {
		logger.Debug("release start-up pages", "err", err)
		return
	}
	debug.FreeOSMemory()
	now, _ := proc.ReadMemory(os.Getpid())
	logger.Debug("released start-up pages", "mapped_bytes", n, "rss_before", before.RSS, "rss_after", now.RSS)
}

// checkAgent warns loudly when ramd talks to a Consul server agent: sessions made through a
// server die with it (hashicorp/consul#20424); run a client agent on every ramd host.
func checkAgent(ctx context.Context, c *consul.Client, timeout time.Duration, logger *slog.Logger) {
	cctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	info, err := c.Agent(cctx)
	if err != nil {
		logger.Warn("consul agent not reachable yet; will keep trying", "err", err)
		return
	}
	if info.Server && !info.DevMode {
		logger.Warn("ramd talks to a Consul SERVER agent: its sessions die when that server is partitioned; run a local client agent", "agent", info.NodeName)
	}
}
