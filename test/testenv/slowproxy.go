package testenv

import (
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"sync/atomic"
	"testing"
	"time"
)

// SlowProxy is an HTTP proxy in front of a Consul agent's API that holds every request for
// a delay the test sets and changes at will: a slow Consul, for one node only when each
// node talks to its own proxy. A request whose client gives up meanwhile is dropped.
type SlowProxy struct {
	// Addr is the proxy's host:port, for CONSUL_HTTP_ADDR.
	Addr  string
	delay atomic.Int64
}

// NewSlowProxy starts a SlowProxy to the agent at target (host:port) for the rest of the
// test, with no delay.
func NewSlowProxy(t testing.TB, target string) *SlowProxy {
	t.Helper()
	u, err := url.Parse("http://" + target)
	if err != nil {
		t.Fatalf("SlowProxy: %v", err)
	}
	p := &SlowProxy{}
	rp := httputil.NewSingleHostReverseProxy(u)
	rp.ErrorLog = nil
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if d := time.Duration(p.delay.Load()); d > 0 {
			tm := time.NewTimer(d)
			select {
			case <-tm.C:
			case <-r.Context().Done():
				tm.Stop()
				return
			}
		}
		rp.ServeHTTP(w, r)
	}))
	t.Cleanup(srv.Close)
	p.Addr = srv.Listener.Addr().String()
	return p
}

// SetDelay sets how long each request is held before it goes on to the agent, from the
// next request on (0: none).
func (p *SlowProxy) SetDelay(d time.Duration) { p.delay.Store(int64(d)) }
