package consul

import (
	"context"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"time"
	"weak"
)

// observers are the hooks a Client reports its requests to. A value is never changed once
// stored: setting a hook stores a new one.
type observers struct {
	request func(op string, d time.Duration, err error)
	span    func(ctx context.Context, op, key string, start time.Time, err error)
}

// clientObservers maps a Client (held weakly: the entry goes when the Client does) to its
// *observers. It lives beside the Client rather than in it so that observing needs no
// change to the Client's fields.
var (
	clientObservers sync.Map // weak.Pointer[Client] -> *observers
	observersMu     sync.Mutex
	// observed counts the Clients with hooks: while it is 0 a request costs one atomic load.
	observed atomic.Int64
)

// SetObserver makes c call f after every Consul request with the operation (a fixed name
// such as "kv.get", "kv.acquire", "session.renew"; a read retried after a transport error
// reports its failed first attempt, then the whole read), the time taken and the error, as the
// caller sees it (nil, wrapping ErrUnavailable for no answer, a timeout or a 5xx, or
// another error answer). f runs on the requesting goroutine and must be quick and safe for
// concurrent use. nil removes the hook. Set it before the Client is shared.
func (c *Client) SetObserver(f func(op string, d time.Duration, err error)) {
	c.setObservers(func(o *observers) { o.request = f })
}

// SetSpanObserver makes c call f after every Consul request with the request's context
// (whose span, if any, is the caller's), the operation, the key or id the request was about,
// its start time and its translated error: enough to record a child span after the fact.
// The same rules as for SetObserver apply.
func (c *Client) SetSpanObserver(f func(ctx context.Context, op, key string, start time.Time, err error)) {
	c.setObservers(func(o *observers) { o.span = f })
}

func (c *Client) setObservers(change func(*observers)) {
	observersMu.Lock()
	defer observersMu.Unlock()
	key := weak.Make(c)
	next := &observers{}
	v, had := clientObservers.Load(key)
	if had {
		*next = *v.(*observers)
	}
	change(next)
	if next.request == nil && next.span == nil {
		if had {
			clientObservers.Delete(key)
			observed.Add(-1)
		}
		return
	}
	clientObservers.Store(key, next)
	if !had {
		observed.Add(1)
		runtime.AddCleanup(c, forget, key)
	}
}

// forget drops the hooks of a Client that was collected.
func forget(key weak.Pointer[Client]) {
	observersMu.Lock()
	defer observersMu.Unlock()
	if _, ok := clientObservers.LoadAndDelete(key); ok {
		observed.Add(-1)
	}
}

// observe reports one request attempt to the Client's hooks. It is called where each
// request is logged, with the request's own context.
func (c *Client) observe(ctx context.Context, op, key string, start time.Time, err error) {
	if observed.Load() == 0 {
		return
	}
	v, ok := clientObservers.Load(weak.Make(c))
	if !ok {
		return
	}
	o := v.(*observers)
	op = strings.TrimSuffix(op, ".retry")
	err = c.translate(ctx, err)
	if o.request != nil {
		o.request(op, time.Since(start), err)
	}
	if o.span != nil {
		o.span(ctx, op, key, start, err)
	}
}
