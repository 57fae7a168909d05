package consul

import (
	"context"
	"fmt"

	"github.com/hashicorp/consul/api"
)

// PreparedQuery returns the prepared query named name, or ErrNotFound. Consul looks queries
// up by ID only, so this lists the queries the token may read and picks the one by name.
func (c *Client) PreparedQuery(ctx context.Context, name string) (*api.PreparedQueryDefinition, error) {
	var list []*api.PreparedQueryDefinition
	err := c.read(ctx, "query.list", name, 0, func(ctx context.Context) error {
		var err error
		list, _, err = c.api.PreparedQuery().List(queryOpts(ctx))
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("read prepared query %s: %w", name, c.translate(ctx, err))
	}
	for _, q := range list {
		if q != nil && q.Name == name {
			return q, nil
		}
	}
	return nil, fmt.Errorf("read prepared query %s: %w", name, ErrNotFound)
}

// PutPreparedQuery creates def when def.ID is "" and updates the query def.ID otherwise. It
// returns the query's ID. Creating a name that exists returns ErrConflict (someone created it
// meanwhile), updating an ID that is gone ErrNotFound: read again and decide again.
func (c *Client) PutPreparedQuery(ctx context.Context, def *api.PreparedQueryDefinition) (string, error) {
	if def == nil {
		return "", fmt.Errorf("put prepared query: nil definition")
	}
	if def.ID == "" {
		var id string
		err := c.write(ctx, "query.create", def.Name, func(ctx context.Context) error {
			var err error
			id, _, err = c.api.PreparedQuery().Create(def, writeOpts(ctx))
			return err
		})
		switch {
		case err != nil && bodyContains(err, "aliases an existing query"):
			// Consul's 500 here refuses a duplicate name: someone created it meanwhile.
			return "", fmt.Errorf("create prepared query %s: %w: %w", def.Name, ErrConflict, err)
		case err != nil:
			return "", fmt.Errorf("create prepared query %s: %w", def.Name, c.translate(ctx, err))
		}
		return id, nil
	}
	err := c.write(ctx, "query.update", def.Name, func(ctx context.Context) error {
		_, err := c.api.PreparedQuery().Update(def, writeOpts(ctx))
		return err
	})
	switch {
	case err != nil && bodyContains(err, "non-existent prepared query"):
		return "", fmt.Errorf("update prepared query %s (%s): %w", def.Name, def.ID, ErrNotFound)
	case err != nil:
		return "", fmt.Errorf("update prepared query %s (%s): %w", def.Name, def.ID, c.translate(ctx, err))
	}
	return def.ID, nil
}

// DeletePreparedQuery removes the prepared query id; removing one that is gone succeeds.
func (c *Client) DeletePreparedQuery(ctx context.Context, id string) error {
	err := c.write(ctx, "query.delete", id, func(ctx context.Context) error {
		_, err := c.api.PreparedQuery().Delete(id, writeOpts(ctx))
		return err
	})
	// Consul answers 500 "non-existent prepared query" for an unknown ID.
	if err != nil && !isNotFound(err) && !bodyContains(err, "non-existent prepared query") {
		return fmt.Errorf("delete prepared query %s: %w", id, c.translate(ctx, err))
	}
	return nil
}
