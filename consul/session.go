package consul

import (
	"context"
	"errors"
	"fmt"
	"math"
	"time"

	"github.com/hashicorp/consul/api"
)

// MinSessionTTL is Consul's floor for a session TTL. A shorter TTL is refused by Consul;
// CreateSession then retries once with this value.
const MinSessionTTL = 10 * time.Second

// sessionCreateRequest is the body of /v1/session/create. Checks and NodeChecks are sent as
// explicit empty lists: left out, Consul attaches serfHealth, and the session (with the
// leader key) would die whenever gossip flaps. The api package's Session.Create omits empty
// lists, so the body is built here.
type sessionCreateRequest struct {
	Name          string             `json:"Name,omitempty"`
	Behavior      string             `json:"Behavior"`
	TTL           string             `json:"TTL"`
	LockDelay     string             `json:"LockDelay,omitempty"`
	Checks        []string           `json:"Checks"`
	NodeChecks    []string           `json:"NodeChecks"`
	ServiceChecks []api.ServiceCheck `json:"ServiceChecks"`
}

// CreateSession creates a session with Behavior "delete" (keys it holds are deleted when it
// ends), no health checks at all, the TTL of opts in whole seconds (rounded up) and the lock
// delay of opts (0 leaves Consul's default of 15 s). When Consul refuses a TTL below its
// 10 s floor, it retries once with MinSessionTTL. It returns the session ID.
func (c *Client) CreateSession(ctx context.Context, opts SessionOptions) (string, error) {
	if opts.TTL <= 0 {
		// A session with neither checks nor TTL would never end, nor release what it holds.
		return "", fmt.Errorf("create session %q: ttl %s must be positive", opts.Name, opts.TTL)
	}
	id, err := c.createSession(ctx, opts)
	if err != nil && opts.TTL < MinSessionTTL && bodyContains(err, "invalid session ttl") {
		c.log.DebugContext(ctx, "session ttl below consul's floor, retrying",
			"ttl", opts.TTL, "min_ttl", MinSessionTTL)
		opts.TTL = MinSessionTTL
		id, err = c.createSession(ctx, opts)
	}
	switch {
	case err != nil && bodyContains(err, "invalid session ttl"):
		// Consul's 500 here is a refusal of the request, not an outage.
		return "", fmt.Errorf("create session %q with ttl %s: %w", opts.Name, opts.TTL, err)
	case err != nil:
		return "", fmt.Errorf("create session %q: %w", opts.Name, c.translate(ctx, err))
	}
	return id, nil
}

func (c *Client) createSession(ctx context.Context, opts SessionOptions) (string, error) {
	body := sessionCreateRequest{
		Name:          opts.Name,
		Behavior:      string(api.SessionBehaviorDelete),
		TTL:           fmt.Sprintf("%ds", int64(math.Ceil(opts.TTL.Seconds()))),
		Checks:        []string{},
		NodeChecks:    []string{},
		ServiceChecks: []api.ServiceCheck{},
	}
	if opts.LockDelay > 0 {
		// Milliseconds, at least 1: Consul reads a bare number below 1000 as seconds, and
		// the string form with a unit is unambiguous.
		body.LockDelay = fmt.Sprintf("%dms", max(opts.LockDelay.Milliseconds(), 1))
	}
	var out struct{ ID string }
	err := c.write(ctx, "session.create", opts.Name, func(ctx context.Context) error {
		_, err := c.api.Raw().Write("/v1/session/create", body, &out, writeOpts(ctx))
		return err
	})
	if err != nil {
		return "", err
	}
	if out.ID == "" {
		return "", errors.New("consul answered without a session id")
	}
	return out.ID, nil
}

// RenewSession resets the TTL of session id. It returns ErrSessionLost when the session no
// longer exists (Consul answers 404 or renews nothing).
func (c *Client) RenewSession(ctx context.Context, id string) error {
	var entries []*api.SessionEntry
	err := c.write(ctx, "session.renew", id, func(ctx context.Context) error {
		_, err := c.api.Raw().Write("/v1/session/renew/"+id, nil, &entries, writeOpts(ctx))
		return err
	})
	switch {
	case isNotFound(err):
		return fmt.Errorf("renew session %s: %w", id, ErrSessionLost)
	case err != nil:
		return fmt.Errorf("renew session %s: %w", id, c.translate(ctx, err))
	case len(entries) == 0 || entries[0] == nil:
		return fmt.Errorf("renew session %s: %w", id, ErrSessionLost)
	}
	return nil
}

// DestroySession ends session id; with Behavior "delete" Consul deletes the keys it held.
// Destroying a session that is already gone succeeds.
func (c *Client) DestroySession(ctx context.Context, id string) error {
	err := c.write(ctx, "session.destroy", id, func(ctx context.Context) error {
		_, err := c.api.Session().Destroy(id, writeOpts(ctx))
		return err
	})
	if err != nil && !isNotFound(err) {
		return fmt.Errorf("destroy session %s: %w", id, c.translate(ctx, err))
	}
	return nil
}

// SessionExists reports whether session id still exists, by a consistent read.
func (c *Client) SessionExists(ctx context.Context, id string) (bool, error) {
	var entry *api.SessionEntry
	err := c.read(ctx, "session.info", id, 0, func(ctx context.Context) error {
		q := queryOpts(ctx)
		q.RequireConsistent = true
		var err error
		entry, _, err = c.api.Session().Info(id, q)
		return err
	})
	if err != nil {
		return false, fmt.Errorf("read session %s: %w", id, c.translate(ctx, err))
	}
	return entry != nil, nil
}
