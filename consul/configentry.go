package consul

import (
	"context"
	"fmt"

	"github.com/hashicorp/consul/api"
)

// ConfigEntry returns the config entry kind/name (api.ServiceDefaults, api.ServiceResolver,
// ...), or ErrNotFound. The entry's GetModifyIndex is the index to CAS against.
func (c *Client) ConfigEntry(ctx context.Context, kind, name string) (api.ConfigEntry, error) {
	var entry api.ConfigEntry
	err := c.read(ctx, "config_entry.get", kind+"/"+name, 0, func(ctx context.Context) error {
		var err error
		entry, _, err = c.api.ConfigEntries().Get(kind, name, queryOpts(ctx))
		return err
	})
	switch {
	case isNotFound(err):
		return nil, fmt.Errorf("read config entry %s/%s: %w", kind, name, ErrNotFound)
	case err != nil:
		return nil, fmt.Errorf("read config entry %s/%s: %w", kind, name, c.translate(ctx, err))
	case entry == nil:
		return nil, fmt.Errorf("read config entry %s/%s: %w", kind, name, ErrNotFound)
	}
	return entry, nil
}

// CASConfigEntry writes entry only if the stored one still has ModifyIndex index; index 0
// writes it only if it does not exist. Writing an entry equal to the stored one succeeds
// whatever the index (Consul skips no-op writes). It returns ErrConflict when the write did
// not take effect, and the error Consul gave when it refused the entry (an invalid filter, a
// protocol mismatch in the discovery chain).
func (c *Client) CASConfigEntry(ctx context.Context, entry api.ConfigEntry, index uint64) error {
	if entry == nil {
		return fmt.Errorf("write config entry: nil entry")
	}
	label := entry.GetKind() + "/" + entry.GetName()
	var ok bool
	err := c.write(ctx, "config_entry.cas", label, func(ctx context.Context) error {
		var err error
		ok, _, err = c.api.ConfigEntries().CAS(entry, index, writeOpts(ctx))
		return err
	})
	if err != nil {
		return fmt.Errorf("write config entry %s at index %d: %w", label, index, c.translate(ctx, err))
	}
	if !ok {
		return fmt.Errorf("write config entry %s at index %d: %w", label, index, ErrConflict)
	}
	return nil
}

// DeleteConfigEntry removes the config entry kind/name; removing one that is gone succeeds.
func (c *Client) DeleteConfigEntry(ctx context.Context, kind, name string) error {
	err := c.write(ctx, "config_entry.delete", kind+"/"+name, func(ctx context.Context) error {
		_, err := c.api.ConfigEntries().Delete(kind, name, writeOpts(ctx))
		return err
	})
	if err != nil && !isNotFound(err) {
		return fmt.Errorf("delete config entry %s/%s: %w", kind, name, c.translate(ctx, err))
	}
	return nil
}
