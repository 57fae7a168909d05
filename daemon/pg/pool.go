package pg

import (
	"context"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
)

// The local pool's limits. The loop holds one connection at a time and the API a few more
// for short reads; idle connections close within half a minute, so a quiet node keeps one
// backend open at most (two while the API is read).
const (
	localPoolMaxConns    = 4
	localPoolIdleTime    = 30 * time.Second
	localPoolLifetime    = 30 * time.Minute
	localPoolHealthCheck = 10 * time.Second
	localPoolPingAfter   = 5 * time.Second
)

// querier is what the helpers that read or change the server need from a connection: a
// pooled local one (*pgxpool.Conn) or one to another member (*pgx.Conn).
type querier interface {
	Exec(ctx context.Context, sql string, args ...any) (pgconn.CommandTag, error)
	Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error)
	QueryRow(ctx context.Context, sql string, args ...any) pgx.Row
	Begin(ctx context.Context) (pgx.Tx, error)
}

// localPool returns the pool of ramd's connections to its own server, made on first use.
// Keeping them open between cycles spares the server a backend per read and both sides a
// SCRAM exchange (4096 PBKDF2 rounds each): before the pool, opening connections was a
// third of an idle ramd's CPU.
func (i *Instance) localPool(ctx context.Context) (*pgxpool.Pool, error) {
	i.poolMu.Lock()
	defer i.poolMu.Unlock()
	if i.pool != nil {
		return i.pool, nil
	}
	p := i.LocalConn()
	pc, err := pgxpool.ParseConfig(p.DSN())
	if err != nil {
		return nil, fmt.Errorf("parse connection config for %s: %w", p, err)
	}
	pc.MaxConns = localPoolMaxConns
	pc.MinConns = 0
	pc.MaxConnIdleTime = localPoolIdleTime
	pc.MaxConnLifetime = localPoolLifetime
	pc.HealthCheckPeriod = localPoolHealthCheck
	pc.ConnConfig.ConnectTimeout = connectTimeout
	pc.ConnConfig.RuntimeParams["application_name"] = "ramd"
	pc.ConnConfig.DefaultQueryExecMode = pgx.QueryExecModeExec
	// The superuser's password changes at rotation: every new connection takes the current one.
	pc.BeforeConnect = func(_ context.Context, cc *pgx.ConnConfig) error {
		cc.Password = i.passwords().Superuser
		return nil
	}
	// A connection idle for more than localPoolPingAfter is checked before use. The loop's
	// reads, a second or less apart, go unchecked (a ping would be a round trip per cycle,
	// most of the pool's traffic on an idle node): Status, the cycle's first read, instead
	// reads again over a new connection when it finds its connection closed (a server
	// that crashed or restarted between two cycles).
	pc.ShouldPing = func(_ context.Context, p pgxpool.ShouldPingParams) bool { return p.IdleDuration > localPoolPingAfter }
	// The pool outlives the call that made it: only the caller's values, not its deadline.
	pool, err := pgxpool.NewWithConfig(context.WithoutCancel(ctx), pc)
	if err != nil {
		return nil, fmt.Errorf("local connection pool for %s: %w", p, err)
	}
	i.pool = pool
	return pool, nil
}

// connect takes a connection to the local server as the superuser from the pool; the caller
// releases it (Release). Errors are those of a new connection: ErrNotReady while the server
// starts, stops or is not yet consistent.
func (i *Instance) connect(ctx context.Context) (*pgxpool.Conn, error) {
	pool, err := i.localPool(ctx)
	if err != nil {
		return nil, err
	}
	conn, err := pool.Acquire(ctx)
	if err != nil {
		if isNotReady(err) {
			return nil, fmt.Errorf("connect to %s: %w: %w", i.LocalConn(), ErrNotReady, err)
		}
		return nil, fmt.Errorf("connect to %s: %w", i.LocalConn(), err)
	}
	return conn, nil
}

// resetPool closes the pooled connections (those in use as they are released): the
// postmaster they reached is stopping or gone. A smart shutdown would otherwise wait for
// them.
func (i *Instance) resetPool() {
	i.poolMu.Lock()
	defer i.poolMu.Unlock()
	if i.pool != nil {
		i.pool.Reset()
	}
}

// Close closes the local connection pool. The Instance may be used again (a new pool is made).
func (i *Instance) Close() {
	i.poolMu.Lock()
	defer i.poolMu.Unlock()
	if i.pool != nil {
		i.pool.Close()
		i.pool = nil
	}
}
