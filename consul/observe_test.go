package consul

import (
	"context"
	"errors"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/ramd-project/ramd/test/testenv"
)

// observedRequest is one request as a hook saw it.
type observedRequest struct {
	Op     string
	Result string
	Key    string
	Marked bool // the span hook got the caller's context
}

type recorder struct {
	mu   sync.Mutex
	reqs []observedRequest
	span []observedRequest
}

type markKey struct{}

func result(err error) string {
	switch {
	case err == nil:
		return "ok"
	case errors.Is(err, ErrUnavailable):
		return "unavailable"
	default:
		return "error"
	}
}

func (r *recorder) install(c *Client) {
	c.SetObserver(func(op string, d time.Duration, err error) {
		r.mu.Lock()
		defer r.mu.Unlock()
		if d <= 0 {
			op += " (no duration)"
		}
		r.reqs = append(r.reqs, observedRequest{Op: op, Result: result(err)})
	})
	c.SetSpanObserver(func(ctx context.Context, op, key string, start time.Time, err error) {
		r.mu.Lock()
		defer r.mu.Unlock()
		r.span = append(r.span, observedRequest{Op: op, Result: result(err), Key: key, Marked: ctx.Value(markKey{}) != nil})
	})
}

func (r *recorder) take() ([]observedRequest, []observedRequest) {
	r.mu.Lock()
	defer r.mu.Unlock()
	reqs, span := r.reqs, r.span
	r.reqs, r.span = nil, nil
	return reqs, span
}

// TestObserver checks that every request reaches both hooks with its operation, result and
// the caller's context, and that removing the hooks stops them.
func TestObserver(t *testing.T) {
	t.Parallel()
	c, s := newStore(t)
	var r recorder
	r.install(c)
	ctx := context.WithValue(t.Context(), markKey{}, true)

	if err := s.Put(ctx, "a", []byte("1")); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Get(ctx, "a", true); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Get(ctx, "missing", false); !errors.Is(err, ErrNotFound) {
		t.Fatalf("get missing: %v", err)
	}
	if err := s.CAS(ctx, "a", []byte("2"), 1); !errors.Is(err, ErrConflict) {
		t.Fatalf("cas at a stale index: %v", err)
	}
	reqs, spans := r.take()
	wantReqs := []observedRequest{
		{Op: "kv.put", Result: "ok"}, {Op: "kv.get", Result: "ok"}, {Op: "kv.get", Result: "ok"}, {Op: "kv.cas", Result: "ok"},
	}
	if diff := cmp.Diff(wantReqs, reqs); diff != "" {
		t.Errorf("observed requests (-want +got):\n%s", diff)
	}
	prefix := s.prefix
	wantSpans := []observedRequest{
		{Op: "kv.put", Result: "ok", Key: prefix + "a", Marked: true},
		{Op: "kv.get", Result: "ok", Key: prefix + "a", Marked: true},
		{Op: "kv.get", Result: "ok", Key: prefix + "missing", Marked: true},
		{Op: "kv.cas", Result: "ok", Key: prefix + "a", Marked: true},
	}
	if diff := cmp.Diff(wantSpans, spans); diff != "" {
		t.Errorf("span hook calls (-want +got):\n%s", diff)
	}

	c.SetObserver(nil)
	c.SetSpanObserver(nil)
	if _, err := s.Get(ctx, "a", false); err != nil {
		t.Fatal(err)
	}
	if reqs, spans := r.take(); len(reqs)+len(spans) != 0 {
		t.Errorf("hooks called after removal: %v %v", reqs, spans)
	}
}

// TestObserverUnavailable checks an agent that does not answer: a read is reported once
// per attempt (the retry under the read's own name), as unavailable.
func TestObserverUnavailable(t *testing.T) {
	t.Parallel()
	c, err := New(Config{Addr: "127.0.0.1:" + strconv.Itoa(testenv.FreePort(t)), Timeout: time.Second}, nil)
	if err != nil {
		t.Fatal(err)
	}
	var r recorder
	r.install(c)
	if _, err := c.Store("x", "pg").Get(t.Context(), "a", false); !errors.Is(err, ErrUnavailable) {
		t.Fatalf("get from a closed port: %v", err)
	}
	reqs, _ := r.take()
	want := []observedRequest{{Op: "kv.get", Result: "unavailable"}, {Op: "kv.get", Result: "unavailable"}}
	if diff := cmp.Diff(want, reqs); diff != "" {
		t.Errorf("observed requests (-want +got):\n%s", diff)
	}
}
