package harness

import (
	"context"
	"fmt"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

// Writer inserts rows with unique ids into whichever node accepts them and records the ids
// PostgreSQL acknowledged. Throughout, every tick it also tries a write on every node: if two
// nodes accept a write in the same tick, that is a split brain, recorded as a violation.
type Writer struct {
	c      *Cluster
	cancel context.CancelFunc
	done   chan struct{}

	mu         sync.Mutex // guards the fields below
	acked      []int64
	violations []string
	writable   map[string]int // successful probe writes per node
	lastAckAt  time.Time
	gaps       []time.Duration // spans without any acknowledged write longer than 2 ticks
	log        []Ack
}

// Ack is one acknowledged write.
type Ack struct {
	At   time.Time
	Node string
	ID   int64
}

// Tick is the writer's interval.
const Tick = 20 * time.Millisecond

// StartWriter creates the tables on the primary and starts writing. Stop it before reading
// the results.
func (c *Cluster) StartWriter(t testing.TB) *Writer {
	t.Helper()
	p := c.WaitPrimary(60 * time.Second)
	if err := p.Exec(context.Background(), "CREATE TABLE IF NOT EXISTS ramd_writes (id bigint PRIMARY KEY, node text, at timestamptz DEFAULT now())"); err != nil {
		t.Fatalf("create table: %v", err)
	}
	c.WaitReplicas(60 * time.Second)
	ctx, cancel := context.WithCancel(context.Background())
	w := &Writer{c: c, cancel: cancel, done: make(chan struct{}), writable: map[string]int{}}
	go w.run(ctx)
	t.Cleanup(w.Stop)
	return w
}

type nodeConn struct {
	conn *pgx.Conn
}

func (w *Writer) run(ctx context.Context) {
	defer close(w.done)
	conns := map[string]*nodeConn{}
	defer func() {
		for _, nc := range conns {
			if nc.conn != nil {
				_ = nc.conn.Close(context.Background())
			}
		}
	}()
	var next int64 = 1
	tk := time.NewTicker(Tick)
	defer tk.Stop()
	for i := 0; i < 10_000_000; i++ {
		select {
		case <-ctx.Done():
			return
		case <-tk.C:
		}
		var accepted []string
		for _, n := range w.c.Nodes {
			nc := conns[n.Name]
			if nc == nil {
				nc = &nodeConn{}
				conns[n.Name] = nc
			}
			if nc.conn == nil || nc.conn.IsClosed() {
				cctx, cancel := context.WithTimeout(ctx, 300*time.Millisecond)
				c, err := n.Conn(cctx)
				cancel()
				if err != nil {
					continue
				}
				nc.conn = c
			}
			qctx, cancel := context.WithTimeout(ctx, 500*time.Millisecond)
			// Every attempt uses a fresh id: a commit whose acknowledgement was lost must not
			// block later inserts with a duplicate key.
			id := next
			next++
			_, err := nc.conn.Exec(qctx, "INSERT INTO ramd_writes(id, node) VALUES ($1, $2)", id, n.Name)
			cancel()
			if err != nil {
				if nc.conn.IsClosed() || ctx.Err() == nil && isConnErr(err) {
					_ = nc.conn.Close(context.Background())
					nc.conn = nil
				}
				continue
			}
			accepted = append(accepted, n.Name)
			w.mu.Lock()
			w.acked = append(w.acked, id)
			w.log = append(w.log, Ack{At: time.Now(), Node: n.Name, ID: id})
			w.writable[n.Name]++
			now := time.Now()
			if !w.lastAckAt.IsZero() && now.Sub(w.lastAckAt) > 3*Tick {
				w.gaps = append(w.gaps, now.Sub(w.lastAckAt))
			}
			w.lastAckAt = now
			w.mu.Unlock()
		}
		if len(accepted) > 1 {
			w.mu.Lock()
			w.violations = append(w.violations, fmt.Sprintf("%s: %s accepted writes in the same tick", time.Now().Format("15:04:05.000"), strings.Join(accepted, ",")))
			w.mu.Unlock()
		}
	}
}

func isConnErr(err error) bool {
	s := err.Error()
	return strings.Contains(s, "conn") || strings.Contains(s, "EOF") || strings.Contains(s, "timeout") ||
		strings.Contains(s, "shutdown") || strings.Contains(s, "terminat") || strings.Contains(s, "read-only") || strings.Contains(s, "recovery")
}

// Stop stops the writer (idempotent).
func (w *Writer) Stop() {
	w.cancel()
	<-w.done
}

// FirstAckAfter returns the first acknowledged write after t on a node other than exclude.
func (w *Writer) FirstAckAfter(t time.Time, exclude string) (Ack, bool) {
	w.mu.Lock()
	defer w.mu.Unlock()
	for _, a := range w.log {
		if a.At.After(t) && a.Node != exclude {
			return a, true
		}
	}
	return Ack{}, false
}

// AckOf returns the acknowledgement of id.
func (w *Writer) AckOf(id int64) (Ack, bool) {
	w.mu.Lock()
	defer w.mu.Unlock()
	for _, a := range w.log {
		if a.ID == id {
			return a, true
		}
	}
	return Ack{}, false
}

// LastAckBefore returns the last acknowledged write before t.
func (w *Writer) LastAckBefore(t time.Time) (Ack, bool) {
	w.mu.Lock()
	defer w.mu.Unlock()
	for i := len(w.log) - 1; i >= 0; i-- {
		if w.log[i].At.Before(t) {
			return w.log[i], true
		}
	}
	return Ack{}, false
}

// Acked returns the acknowledged ids.
func (w *Writer) Acked() []int64 {
	w.mu.Lock()
	defer w.mu.Unlock()
	return append([]int64(nil), w.acked...)
}

// Violations returns the split-brain observations.
func (w *Writer) Violations() []string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return append([]string(nil), w.violations...)
}

// LongestGap is the longest time without an acknowledged write.
func (w *Writer) LongestGap() time.Duration {
	w.mu.Lock()
	defer w.mu.Unlock()
	var g time.Duration
	for _, d := range w.gaps {
		g = max(g, d)
	}
	return g
}

// WaitAcked waits until at least n more writes were acknowledged after the call.
func (w *Writer) WaitAcked(t testing.TB, n int, timeout time.Duration) {
	t.Helper()
	start := len(w.Acked())
	deadline := time.Now().Add(timeout)
	for len(w.Acked()) < start+n {
		if time.Now().After(deadline) {
			t.Fatalf("only %d of %d writes acknowledged within %s", len(w.Acked())-start, n, timeout)
		}
		time.Sleep(Tick)
	}
}

// Missing returns the ids acknowledged before the call that are absent from node's table.
// The acknowledged list is taken first: a row acknowledged while the table is read is not
// in that read, and must not count as missing.
func (w *Writer) Missing(ctx context.Context, n *Node) ([]int64, error) {
	acked := w.Acked()
	conn, err := n.Conn(ctx)
	if err != nil {
		return nil, err
	}
	defer conn.Close(context.Background())
	rows, err := conn.Query(ctx, "SELECT id FROM ramd_writes")
	if err != nil {
		return nil, err
	}
	have := map[int64]bool{}
	for rows.Next() {
		var id int64
		if err := rows.Scan(&id); err != nil {
			return nil, err
		}
		have[id] = true
	}
	if err := rows.Err(); err != nil {
		return nil, err
	}
	var missing []int64
	for _, id := range acked {
		if !have[id] {
			missing = append(missing, id)
		}
	}
	sort.Slice(missing, func(i, j int) bool { return missing[i] < missing[j] })
	return missing, nil
}
