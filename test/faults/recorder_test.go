package faults

import (
	"context"
	"errors"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/ramd-project/ramd/test/harness"
	"github.com/ramd-project/ramd/test/history"
)

const (
	// writeEvery is each node's pause between write attempts: small, so a split brain
	// shows as interleaved acknowledgements, large enough for two cores.
	writeEvery = 10 * time.Millisecond
	// connectTimeout and writeTimeout bound one attempt; an isolated host's packets vanish,
	// so without them an attempt would wait for TCP's retransmission timeouts.
	connectTimeout = 500 * time.Millisecond
	writeTimeout   = time.Second
	// probeEvery is the prober's sampling period of every node's /patroni.
	probeEvery = 100 * time.Millisecond
)

// nextID numbers write attempts across every run of a test process.
var nextID atomic.Int64

// recorder writes to every node and probes every node until stopped, recording each
// attempt and sample.
type recorder struct {
	cancel context.CancelFunc
	wg     sync.WaitGroup

	mu  sync.Mutex // guards ops and obs
	ops []history.Op
	obs []history.Observation
}

func record(ctx context.Context, c *harness.Cluster) *recorder {
	ctx, cancel := context.WithCancel(ctx)
	r := &recorder{cancel: cancel}
	for _, n := range c.Nodes {
		r.wg.Add(2)
		go func() { defer r.wg.Done(); r.write(ctx, n) }()
		go func() { defer r.wg.Done(); r.probe(ctx, n) }()
	}
	return r
}

// stop ends the writers and probers and waits for them.
func (r *recorder) stop() {
	r.cancel()
	r.wg.Wait()
}

func (r *recorder) history() ([]history.Op, []history.Observation) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.ops), slices.Clone(r.obs)
}

// write tries one insert at a time on node n, each with a fresh id.
func (r *recorder) write(ctx context.Context, n *harness.Node) {
	var conn *pgx.Conn
	defer func() {
		if conn != nil {
			_ = conn.Close(context.Background())
		}
	}()
	t := time.NewTicker(writeEvery)
	defer t.Stop()
	for ctx.Err() == nil {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		id := nextID.Add(1)
		start := time.Now()
		if conn == nil || conn.IsClosed() {
			cctx, cancel := context.WithTimeout(ctx, connectTimeout)
			c, err := n.Conn(cctx)
			cancel()
			if err != nil {
				// Nothing was sent: certainly not committed.
				r.add(history.Op{ID: id, Node: n.Name, Start: start, End: time.Now(), Outcome: history.Fail})
				continue
			}
			conn = c
			start = time.Now()
		}
		wctx, cancel := context.WithTimeout(ctx, writeTimeout)
		_, err := conn.Exec(wctx, "INSERT INTO fault_writes (id, node) VALUES ($1, $2)", id, n.Name)
		cancel()
		end := time.Now()
		if err != nil && ctx.Err() != nil {
			return // stopping: the last attempt's outcome is not recorded
		}
		out := outcome(err)
		if out != history.OK && !refused(err) {
			_ = conn.Close(context.Background())
			conn = nil
		}
		r.add(history.Op{ID: id, Node: n.Name, Start: start, End: end, Outcome: out})
	}
}

// outcome sorts an insert's error: only a refusal before anything ran is a certain
// failure; a lost connection, a timeout or a server shutting down during the commit
// leaves it unknown (a synchronous commit cancelled while waiting has committed locally).
func outcome(err error) history.Outcome {
	switch {
	case err == nil:
		return history.OK
	case refused(err):
		return history.Fail
	default:
		return history.Unknown
	}
}

// SQLSTATEs of a statement refused before it could commit.
const (
	readOnlyTransaction = "25006" // a standby, or a demoted primary
	cannotConnectNow    = "57P03"
)

func refused(err error) bool {
	var pgErr *pgconn.PgError
	return errors.As(err, &pgErr) && (pgErr.Code == readOnlyTransaction || pgErr.Code == cannotConnectNow)
}

func (r *recorder) add(op history.Op) {
	r.mu.Lock()
	r.ops = append(r.ops, op)
	r.mu.Unlock()
}

// probe samples node n's role and timeline.
func (r *recorder) probe(ctx context.Context, n *harness.Node) {
	t := time.NewTicker(probeEvery)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		asked := time.Now()
		doc, err := n.Patroni()
		if err != nil {
			continue
		}
		o := history.Observation{Start: asked, At: time.Now(), Node: n.Name, Timeline: doc.Timeline, Primary: doc.Role == "primary" || doc.Role == "master"}
		r.mu.Lock()
		r.obs = append(r.obs, o)
		r.mu.Unlock()
	}
}

// acks returns the acknowledged writes sorted by start.
func acks(ops []history.Op) []history.Op {
	var out []history.Op
	for _, op := range ops {
		if op.Outcome == history.OK {
			out = append(out, op)
		}
	}
	slices.SortFunc(out, func(a, b history.Op) int { return a.Start.Compare(b.Start) })
	return out
}

// longestGap is the longest time between two consecutive acknowledgements (by end), and
// the end of the acknowledgement that opened it.
func longestGap(ops []history.Op) (time.Duration, time.Time) {
	a := acks(ops)
	slices.SortFunc(a, func(x, y history.Op) int { return x.End.Compare(y.End) })
	var g time.Duration
	var from time.Time
	for i := 1; i < len(a); i++ {
		if d := a[i].End.Sub(a[i-1].End); d > g {
			g, from = d, a[i-1].End
		}
	}
	return g, from
}
