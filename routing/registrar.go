package routing

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/ramd-project/ramd/consul"
)

// Registrar keeps one node's registration equal to what is wanted (anti-entropy). Loop
// goroutine only.
type Registrar struct {
	cfg    Config
	client *consul.Client
	ttl    time.Duration
	last   Registration
}

// NewRegistrar returns a registrar; ttl is the TTL of the role check: a node whose loop stops
// feeding it drops out of every DNS name within ttl.
func NewRegistrar(cfg Config, client *consul.Client, ttl time.Duration) *Registrar {
	return &Registrar{cfg: cfg, client: client, ttl: ttl}
}

// Reconcile registers or updates the service when it differs from want (or was removed by
// someone), then feeds the TTL check. Idempotent; no churn when nothing changed.
func (r *Registrar) Reconcile(ctx context.Context, want Want) error {
	reg := Build(r.cfg, want, r.ttl)
	have, err := r.client.LocalService(ctx, reg.Service.ID)
	if err != nil && !errors.Is(err, consul.ErrNotFound) {
		return fmt.Errorf("read registration %s: %w", reg.Service.ID, err)
	}
	if !SameService(have, reg.Service) {
		if err := r.client.RegisterService(ctx, reg.Service); err != nil {
			return fmt.Errorf("register %s: %w", reg.Service.ID, err)
		}
	}
	if err := r.client.UpdateTTL(ctx, reg.CheckID, reg.CheckOutput, reg.CheckStatus); err != nil {
		return fmt.Errorf("update check %s: %w", reg.CheckID, err)
	}
	r.last = reg
	return nil
}

// MarkCritical fails the role check at once (before fencing or a switchover), so DNS stops
// naming this node before anyone else is announced.
func (r *Registrar) MarkCritical(ctx context.Context, why string) error {
	if r.last.CheckID == "" {
		return nil
	}
	if err := r.client.UpdateTTL(ctx, r.last.CheckID, why, "critical"); err != nil {
		return fmt.Errorf("fail check %s: %w", r.last.CheckID, err)
	}
	return nil
}

// Deregister removes the node's registration (clean shutdown).
func (r *Registrar) Deregister(ctx context.Context, scope, node string) error {
	name := r.cfg.ServiceName
	if name == "" {
		name = SanitizeName(scope)
	}
	if err := r.client.DeregisterService(ctx, ServiceID(name, node)); err != nil {
		return fmt.Errorf("deregister: %w", err)
	}
	return nil
}
