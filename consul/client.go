package consul

import (
	"context"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"sync/atomic"
	"time"

	"github.com/hashicorp/consul/api"
)

const (
	// DefaultTimeout bounds one request when Config.Timeout is not set. The agent is local, so
	// an answer takes milliseconds; 2 s leaves room for a raft round trip under load while
	// staying well below a session TTL (>= 10 s), so a hung agent is noticed in time.
	DefaultTimeout = 2 * time.Second
	// readRetryPause is the upper bound of the jittered pause before a read's single retry
	// after a transport error: long enough for a restarting listener or a stale pooled
	// connection to clear, short against the request timeout.
	readRetryPause = 100 * time.Millisecond
)

// Client talks to one Consul agent. Safe for concurrent use.
type Client struct {
	api     *api.Client
	log     *slog.Logger
	timeout time.Duration // per request; blocking queries add their wait on top
	// obs holds the hooks requests are reported to (observe.go); nil when none. A stored
	// value is never changed: setting a hook stores a new one.
	obs atomic.Pointer[observers]
}

// New builds a Client from cfg: address, ACL token (Token, or TokenFile read once), TLS and
// datacenter. It does not contact the agent. Every request is bounded by cfg.Timeout (or
// DefaultTimeout), or by the caller's ctx when that is shorter; blocking queries get their
// wait on top. A nil logger discards; the Client logs only at Debug, once per request.
func New(cfg Config, logger *slog.Logger) (*Client, error) {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	timeout := cfg.Timeout
	if timeout <= 0 {
		timeout = DefaultTimeout
	}
	addr := cfg.Addr
	if addr == "" {
		addr = "127.0.0.1:8500"
	}
	ac := &api.Config{
		Address:    addr,
		Datacenter: cfg.Datacenter,
		Token:      cfg.Token,
		TokenFile:  cfg.TokenFile,
		TLSConfig: api.TLSConfig{
			Address:            cfg.TLSServerName,
			CAFile:             cfg.CACert,
			CAPath:             cfg.CAPath,
			CertFile:           cfg.ClientCert,
			KeyFile:            cfg.ClientKey,
			InsecureSkipVerify: cfg.SSL && !cfg.SSLVerify,
		},
	}
	if cfg.SSL {
		ac.Scheme = "https"
	}
	// The agent is local (a client agent on the host): compressing its answers costs both
	// sides CPU and the client a fresh decompressor (tens of KiB) per answer, for nothing.
	ac.Transport = api.DefaultConfig().Transport
	ac.Transport.DisableCompression = true
	client, err := api.NewClient(ac)
	if err != nil {
		return nil, fmt.Errorf("build consul client for %s: %w", addr, err)
	}
	return &Client{api: client, log: logger, timeout: timeout}, nil
}

// Agent reads /v1/agent/self: who the local agent is and whether it is a server.
func (c *Client) Agent(ctx context.Context) (AgentInfo, error) {
	var self struct {
		Config struct {
			NodeName   string
			Datacenter string
			Server     bool
			Version    string
			DevMode    *bool
		}
		DebugConfig struct {
			DevMode bool
		}
	}
	err := c.read(ctx, "agent.self", "", 0, func(ctx context.Context) error {
		_, err := c.api.Raw().Query("/v1/agent/self", &self, queryOpts(ctx))
		return err
	})
	if err != nil {
		return AgentInfo{}, fmt.Errorf("read agent self: %w", c.translate(ctx, err))
	}
	info := AgentInfo{
		NodeName:   self.Config.NodeName,
		Datacenter: self.Config.Datacenter,
		Server:     self.Config.Server,
		DevMode:    self.DebugConfig.DevMode,
		Version:    self.Config.Version,
	}
	if self.Config.DevMode != nil {
		info.DevMode = *self.Config.DevMode
	}
	return info, nil
}

// read runs one read request bounded by c.timeout+extra. A transport error (not an HTTP
// answer) is retried once after a short jittered pause, within the same bound.
func (c *Client) read(ctx context.Context, op, key string, extra time.Duration, f func(context.Context) error) error {
	rctx, cancel := context.WithTimeout(ctx, c.timeout+extra)
	defer cancel()
	start := time.Now()
	err := f(rctx)
	if err != nil && isTransport(err) && rctx.Err() == nil {
		pause := time.NewTimer(rand.N(readRetryPause) + time.Millisecond)
		defer pause.Stop()
		select {
		case <-pause.C:
			c.debug(rctx, op+".retry", key, start, err)
			err = f(rctx)
		case <-rctx.Done():
		}
	}
	c.debug(rctx, op, key, start, err)
	return err
}

// write runs one write request bounded by c.timeout. Writes are never retried: one that
// failed in transit may still have been applied, so the caller reads again and decides again.
func (c *Client) write(ctx context.Context, op, key string, f func(context.Context) error) error {
	wctx, cancel := context.WithTimeout(ctx, c.timeout)
	defer cancel()
	start := time.Now()
	err := f(wctx)
	c.debug(wctx, op, key, start, err)
	return err
}

// debug logs one request at Debug level.
func (c *Client) debug(ctx context.Context, op, key string, start time.Time, err error) {
	c.observe(ctx, op, key, start, err) // metrics and spans (observe.go)
	if !c.log.Enabled(ctx, slog.LevelDebug) {
		return
	}
	attrs := []slog.Attr{slog.String("op", op), slog.Duration("duration", time.Since(start))}
	if key != "" {
		attrs = append(attrs, slog.String("key", key))
	}
	if err != nil {
		attrs = append(attrs, slog.Any("err", err))
	}
	c.log.LogAttrs(ctx, slog.LevelDebug, "consul request", attrs...)
}

// queryOpts returns read options bound to ctx.
func queryOpts(ctx context.Context) *api.QueryOptions {
	return (&api.QueryOptions{}).WithContext(ctx)
}

// writeOpts returns write options bound to ctx.
func writeOpts(ctx context.Context) *api.WriteOptions {
	return (&api.WriteOptions{}).WithContext(ctx)
}
