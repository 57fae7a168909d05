package consul

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/hashicorp/consul/api"

	"github.com/ramd-project/ramd/test/testenv"
)

func TestConfigEntry(t *testing.T) {
	t.Parallel()
	c := newClient(t, nil, 0)
	ctx := t.Context()
	name := testenv.KeyPrefix(t)
	t.Cleanup(func() {
		_ = c.DeleteConfigEntry(context.Background(), api.ServiceResolver, name)
		_ = c.DeleteConfigEntry(context.Background(), api.ServiceDefaults, name)
	})

	_, err := c.ConfigEntry(ctx, api.ServiceDefaults, name)
	wantErr(t, err, ErrNotFound)

	defaults := &api.ServiceConfigEntry{Kind: api.ServiceDefaults, Name: name, Protocol: "tcp"}
	if err := c.CASConfigEntry(ctx, defaults, 0); err != nil {
		t.Fatal(err)
	}
	if err := c.CASConfigEntry(ctx, defaults, 0); err != nil {
		t.Fatalf("an unchanged entry at index 0: %v (Consul skips no-op writes)", err)
	}
	changed := *defaults
	changed.Protocol = "grpc"
	wantErr(t, c.CASConfigEntry(ctx, &changed, 0), ErrConflict) // index 0: create only

	got, err := c.ConfigEntry(ctx, api.ServiceDefaults, name)
	if err != nil {
		t.Fatal(err)
	}
	if d, ok := got.(*api.ServiceConfigEntry); !ok || d.Protocol != "tcp" || d.GetModifyIndex() == 0 {
		t.Fatalf("stored entry %#v", got)
	}
	stale := got.GetModifyIndex()
	resolver := &api.ServiceResolverConfigEntry{Kind: api.ServiceResolver, Name: name, DefaultSubset: "primary",
		Subsets: map[string]api.ServiceResolverSubset{"primary": {Filter: `Service.Meta.role == "primary"`, OnlyPassing: true}}}
	if err := c.CASConfigEntry(ctx, resolver, 0); err != nil {
		t.Fatal(err)
	}
	defaults.Protocol = "http"
	if err := c.CASConfigEntry(ctx, defaults, stale); err != nil {
		t.Fatalf("cas at the index read: %v", err)
	}
	defaults.Protocol = "http2"
	wantErr(t, c.CASConfigEntry(ctx, defaults, stale), ErrConflict)

	// Consul refuses an entry it cannot compile (with a 500, like an outage): the error is
	// not a conflict and carries Consul's reason.
	bad := &api.ServiceResolverConfigEntry{Kind: api.ServiceResolver, Name: name + "-bad",
		Subsets: map[string]api.ServiceResolverSubset{"x": {Filter: "Service.Meta.role =="}}}
	err = c.CASConfigEntry(ctx, bad, 0)
	if err == nil || errors.Is(err, ErrConflict) || !strings.Contains(err.Error(), "not a valid expression") {
		t.Fatalf("invalid filter: err = %v, want Consul's refusal with its reason", err)
	}

	if err := c.DeleteConfigEntry(ctx, api.ServiceResolver, name); err != nil {
		t.Fatal(err)
	}
	if err := c.DeleteConfigEntry(ctx, api.ServiceResolver, name); err != nil {
		t.Fatalf("deleting twice: %v", err)
	}
	_, err = c.ConfigEntry(ctx, api.ServiceResolver, name)
	wantErr(t, err, ErrNotFound)
}
