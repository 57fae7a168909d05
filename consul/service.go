package consul

import (
	"context"
	"fmt"

	"github.com/hashicorp/consul/api"
)

// RegisterService registers (or replaces) a service and its checks with the local agent.
func (c *Client) RegisterService(ctx context.Context, reg *api.AgentServiceRegistration) error {
	if reg == nil {
		return fmt.Errorf("register service: nil registration")
	}
	err := c.write(ctx, "agent.service_register", reg.ID, func(ctx context.Context) error {
		return c.api.Agent().ServiceRegisterOpts(reg, api.ServiceRegisterOpts{}.WithContext(ctx))
	})
	if err != nil {
		return fmt.Errorf("register service %s: %w", serviceLabel(reg), c.translate(ctx, err))
	}
	return nil
}

// DeregisterService removes service id and its checks from the local agent. Removing a
// service the agent does not know succeeds.
func (c *Client) DeregisterService(ctx context.Context, id string) error {
	err := c.write(ctx, "agent.service_deregister", id, func(ctx context.Context) error {
		return c.api.Agent().ServiceDeregisterOpts(id, queryOpts(ctx))
	})
	if err != nil && !isNotFound(err) {
		return fmt.Errorf("deregister service %s: %w", id, c.translate(ctx, err))
	}
	return nil
}

// LocalService returns service id as registered with the local agent, or ErrNotFound.
func (c *Client) LocalService(ctx context.Context, id string) (*api.AgentService, error) {
	var svc *api.AgentService
	err := c.read(ctx, "agent.service", id, 0, func(ctx context.Context) error {
		var err error
		svc, _, err = c.api.Agent().Service(id, queryOpts(ctx))
		return err
	})
	switch {
	case isNotFound(err):
		return nil, fmt.Errorf("read local service %s: %w", id, ErrNotFound)
	case err != nil:
		return nil, fmt.Errorf("read local service %s: %w", id, c.translate(ctx, err))
	case svc == nil:
		return nil, fmt.Errorf("read local service %s: %w", id, ErrNotFound)
	}
	return svc, nil
}

// UpdateTTL sets the status (api.HealthPassing, api.HealthWarning or api.HealthCritical) and
// output of the local TTL check checkID. It returns ErrNotFound when the agent has no such
// check.
func (c *Client) UpdateTTL(ctx context.Context, checkID, output, status string) error {
	switch status {
	case api.HealthPassing, api.HealthWarning, api.HealthCritical:
	default:
		return fmt.Errorf("update ttl check %s: invalid status %q", checkID, status)
	}
	err := c.write(ctx, "agent.check_update", checkID, func(ctx context.Context) error {
		return c.api.Agent().UpdateTTLOpts(checkID, output, status, queryOpts(ctx))
	})
	switch {
	case isNotFound(err):
		return fmt.Errorf("update ttl check %s: %w", checkID, ErrNotFound)
	case err != nil:
		return fmt.Errorf("update ttl check %s: %w", checkID, c.translate(ctx, err))
	}
	return nil
}

// HealthyService returns the instances of service whose checks all pass, across the
// catalog, filtered by tag when tag is not "".
func (c *Client) HealthyService(ctx context.Context, service, tag string) ([]*api.ServiceEntry, error) {
	var entries []*api.ServiceEntry
	err := c.read(ctx, "health.service", service, 0, func(ctx context.Context) error {
		var err error
		entries, _, err = c.api.Health().Service(service, tag, true, queryOpts(ctx))
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("read healthy %s: %w", serviceTag(service, tag), c.translate(ctx, err))
	}
	return entries, nil
}

// CatalogService returns every catalog instance of service whatever its health, filtered
// by tag when tag is not "".
func (c *Client) CatalogService(ctx context.Context, service, tag string) ([]*api.CatalogService, error) {
	var entries []*api.CatalogService
	err := c.read(ctx, "catalog.service", service, 0, func(ctx context.Context) error {
		var err error
		entries, _, err = c.api.Catalog().Service(service, tag, queryOpts(ctx))
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("read catalog %s: %w", serviceTag(service, tag), c.translate(ctx, err))
	}
	return entries, nil
}

func serviceLabel(reg *api.AgentServiceRegistration) string {
	if reg.ID != "" {
		return reg.ID
	}
	return reg.Name
}

func serviceTag(service, tag string) string {
	if tag == "" {
		return service
	}
	return service + " tag " + tag
}
