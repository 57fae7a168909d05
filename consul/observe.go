package consul

import (
	"context"
	"strings"
	"time"
)

// observers are the hooks a Client reports its requests to.
type observers struct {
	request func(op string, d time.Duration, err error)
	span    func(ctx context.Context, op, key string, start time.Time, err error)
}

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
	next := &observers{}
	if cur := c.obs.Load(); cur != nil {
		*next = *cur
	}
	change(next)
	if next.request == nil && next.span == nil {
		next = nil
	}
	c.obs.Store(next)
}

// observe reports one request attempt to the Client's hooks. It is called where each
// request is logged, with the request's own context.
func (c *Client) observe(ctx context.Context, op, key string, start time.Time, err error) {
	o := c.obs.Load()
	if o == nil {
		return
	}
	op = strings.TrimSuffix(op, ".retry")
	err = c.translate(ctx, err)
	if o.request != nil {
		o.request(op, time.Since(start), err)
	}
	if o.span != nil {
		o.span(ctx, op, key, start, err)
	}
}
