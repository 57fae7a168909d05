package consul

import (
	"context"
	"errors"
	"testing"

	"github.com/hashicorp/consul/api"

	"github.com/ramd-project/ramd/test/testenv"
)

func TestPreparedQuery(t *testing.T) {
	t.Parallel()
	c := newClient(t, nil, 0)
	ctx := t.Context()
	name := testenv.KeyPrefix(t) + "-primary"

	_, err := c.PreparedQuery(ctx, name)
	wantErr(t, err, ErrNotFound)

	def := &api.PreparedQueryDefinition{Name: name, Service: api.ServiceQuery{
		Service: "pg", Tags: []string{"primary"}, OnlyPassing: true, Near: "_agent",
		Failover: api.QueryFailoverOptions{Datacenters: []string{"dc2"}},
	}}
	id, err := c.PutPreparedQuery(ctx, def)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.DeletePreparedQuery(context.Background(), id) })
	got, err := c.PreparedQuery(ctx, name)
	if err != nil {
		t.Fatal(err)
	}
	if got.ID != id || got.Service.Near != "_agent" || !got.Service.OnlyPassing || len(got.Service.Failover.Datacenters) != 1 {
		t.Fatalf("stored query %+v", got)
	}

	// A second query of the same name is refused by Consul: a conflict, not an outage.
	_, err = c.PutPreparedQuery(ctx, def)
	if !errors.Is(err, ErrConflict) || errors.Is(err, ErrUnavailable) {
		t.Fatalf("duplicate name: err = %v, want ErrConflict", err)
	}

	next := *got
	next.Service.Tags = []string{"replica"}
	if gotID, err := c.PutPreparedQuery(ctx, &next); err != nil || gotID != id {
		t.Fatalf("update: id %q err %v", gotID, err)
	}
	if got, err = c.PreparedQuery(ctx, name); err != nil || got.Service.Tags[0] != "replica" {
		t.Fatalf("after update: %+v, %v", got, err)
	}

	if err := c.DeletePreparedQuery(ctx, id); err != nil {
		t.Fatal(err)
	}
	if err := c.DeletePreparedQuery(ctx, id); err != nil {
		t.Fatalf("deleting twice: %v", err)
	}
	_, err = c.PreparedQuery(ctx, name)
	wantErr(t, err, ErrNotFound)
	_, err = c.PutPreparedQuery(ctx, &next)
	wantErr(t, err, ErrNotFound)
}
