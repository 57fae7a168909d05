package routing

import (
	"fmt"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/hashicorp/consul/api"
)

// Config is how a node's PostgreSQL endpoint is published.
type Config struct {
	// ServiceName defaults to the cluster scope, sanitised for Consul DNS.
	ServiceName string `env:"RAMD_SERVICE_NAME"`
	// ServiceTags are extra tags added to every registration.
	ServiceTags []string `env:"RAMD_SERVICE_TAGS"`
	// DeregisterAfter removes a registration whose check stayed critical this long (a node
	// that vanished without deregistering).
	DeregisterAfter time.Duration `env:"RAMD_SERVICE_DEREGISTER_AFTER, default=10m"`
}

// Validate checks the routing settings.
func (c Config) Validate() error {
	if c.ServiceName != "" && SanitizeName(c.ServiceName) != c.ServiceName {
		return fmt.Errorf("RAMD_SERVICE_NAME=%q: must be lowercase letters, digits and dashes (a DNS label), e.g. %q",
			c.ServiceName, SanitizeName(c.ServiceName))
	}
	if c.DeregisterAfter < time.Minute {
		return fmt.Errorf("RAMD_SERVICE_DEREGISTER_AFTER=%s: must be at least 1m (Consul's floor)", c.DeregisterAfter)
	}
	return nil
}

var nonDNS = regexp.MustCompile(`[^a-z0-9-]+`)

// SanitizeName turns a scope into a valid Consul DNS service name.
func SanitizeName(s string) string {
	s = nonDNS.ReplaceAllString(strings.ToLower(s), "-")
	s = strings.Trim(s, "-")
	if len(s) > 63 {
		s = s[:63]
	}
	return s
}

// Role is the node's role as routing sees it.
type Role string

// Roles that change what clients see.
const (
	RolePrimary Role = "primary"
	RoleReplica Role = "replica"
	RoleNone    Role = "none" // stopped, fencing, bootstrapping: no role tag, check critical
)

// Want is the wanted publication of one node, derived from the loop's status.
type Want struct {
	Scope   string
	Node    string
	Address string
	Port    int
	Role    Role
	// Healthy is true when the role is really true right now (primary holding the lock and
	// accepting writes; replica running and streaming).
	Healthy  bool
	Timeline int
	LSN      uint64
	LagBytes uint64
	// Output is the check's text, saying why it passes or fails.
	Output string
}

// Registration is what a node registers in Consul and the state of its TTL check.
type Registration struct {
	Service     *api.AgentServiceRegistration
	CheckID     string
	CheckStatus string
	CheckOutput string
}

// ServiceID is the node's service instance id.
func ServiceID(service, node string) string { return service + "-" + node }

// Build computes the registration for want. Pure.
func Build(cfg Config, want Want, ttl time.Duration) Registration {
	name := cfg.ServiceName
	if name == "" {
		name = SanitizeName(want.Scope)
	}
	id := ServiceID(name, want.Node)
	tags := append([]string(nil), cfg.ServiceTags...)
	switch want.Role {
	case RolePrimary:
		tags = append(tags, "primary", "master")
	case RoleReplica:
		tags = append(tags, "replica")
	}
	sort.Strings(tags)
	checkID := "service:" + id
	status := api.HealthCritical
	if want.Healthy && want.Role != RoleNone {
		status = api.HealthPassing
	}
	return Registration{
		Service: &api.AgentServiceRegistration{
			ID:      id,
			Name:    name,
			Address: want.Address,
			Port:    want.Port,
			Tags:    tags,
			Meta: map[string]string{
				"node":      want.Node,
				"role":      string(want.Role),
				"timeline":  strconv.Itoa(want.Timeline),
				"lsn":       strconv.FormatUint(want.LSN, 10),
				"lag_bytes": strconv.FormatUint(want.LagBytes, 10),
			},
			Check: &api.AgentServiceCheck{
				CheckID:                        checkID,
				Name:                           "ramd role " + string(want.Role),
				TTL:                            ttl.String(),
				Status:                         status,
				DeregisterCriticalServiceAfter: cfg.DeregisterAfter.String(),
			},
		},
		CheckID:     checkID,
		CheckStatus: status,
		CheckOutput: want.Output,
	}
}

// SameService reports whether the registered service already matches the wanted one (tags,
// address, port, meta), so the reconcile re-registers only on a difference.
func SameService(have *api.AgentService, want *api.AgentServiceRegistration) bool {
	if have == nil {
		return false
	}
	if have.Service != want.Name || have.Address != want.Address || have.Port != want.Port {
		return false
	}
	ht := append([]string(nil), have.Tags...)
	sort.Strings(ht)
	if strings.Join(ht, ",") != strings.Join(want.Tags, ",") {
		return false
	}
	for k, v := range want.Meta {
		if k == "lsn" || k == "lag_bytes" {
			continue // change every cycle; refreshed with the role, not on their own
		}
		if have.Meta[k] != v {
			return false
		}
	}
	return true
}
