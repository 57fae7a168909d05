package routing

import (
	"fmt"
	"regexp"
	"slices"
	"strings"
	"time"
)

// maxServiceName is the longest service name: the prepared query "<svc>-replica" and the mesh
// resolver of the same name must still fit one DNS label (63 bytes).
const maxServiceName = 63 - len("-replica")

// Config is how a node's PostgreSQL endpoint is published.
type Config struct {
	// ServiceName defaults to the cluster scope, sanitised for Consul DNS.
	ServiceName string `env:"RAMD_SERVICE_NAME"`
	// ServiceTags are extra tags added to every registration.
	ServiceTags []string `env:"RAMD_SERVICE_TAGS"`
	// DeregisterAfter removes a registration whose check stayed critical this long (a node
	// that vanished without deregistering).
	DeregisterAfter time.Duration `env:"RAMD_SERVICE_DEREGISTER_AFTER, default=10m"`
	// ReplicaMaxLag is the replay lag in bytes above which a replica leaves the read pool
	// (the "replica" tag and name); 0 means no limit.
	ReplicaMaxLag uint64 `env:"RAMD_REPLICA_MAX_LAG, default=1048576"`
	// FailoverDatacenters are the datacenters the prepared queries try, in order, when the
	// local one has no healthy instance.
	FailoverDatacenters []string `env:"RAMD_PREPARED_QUERY_FAILOVER_DCS"`
	// Mesh adds a Connect sidecar to every registration, and has the leader keep the
	// service-defaults and service-resolver config entries current.
	Mesh bool `env:"RAMD_MESH, default=false"`
}

// reservedTags are set by ramd from the node's state; a user tag of the same name would make a
// DNS name lie (a replica answering primary.<svc>).
var reservedTags = []string{TagPrimary, TagMaster, TagReplica, TagStandbyLeader, TagSync, TagQuorum,
	TagAsync, TagLagging, TagNoLoadBalance}

var validDC = regexp.MustCompile(`^[a-zA-Z0-9_-]+$`)

// Validate checks the routing settings.
func (c Config) Validate() error {
	if c.ServiceName != "" && SanitizeName(c.ServiceName) != c.ServiceName {
		return fmt.Errorf("RAMD_SERVICE_NAME=%q: must be lowercase letters, digits and dashes (a DNS label of at most %d bytes), e.g. %q",
			c.ServiceName, maxServiceName, SanitizeName(c.ServiceName))
	}
	for _, t := range c.ServiceTags {
		switch {
		case strings.TrimSpace(t) == "":
			return fmt.Errorf("RAMD_SERVICE_TAGS=%q: empty tag", strings.Join(c.ServiceTags, ","))
		case slices.Contains(reservedTags, t):
			return fmt.Errorf("RAMD_SERVICE_TAGS: tag %q is set by ramd from the node's role and state (reserved: %s)",
				t, strings.Join(reservedTags, ", "))
		}
	}
	if c.DeregisterAfter < time.Minute {
		return fmt.Errorf("RAMD_SERVICE_DEREGISTER_AFTER=%s: must be at least 1m (Consul's floor)", c.DeregisterAfter)
	}
	for _, dc := range c.FailoverDatacenters {
		if !validDC.MatchString(dc) {
			return fmt.Errorf("RAMD_PREPARED_QUERY_FAILOVER_DCS: datacenter %q: must be letters, digits, '_' and '-'", dc)
		}
	}
	return nil
}

// Service returns the Consul service name of cluster scope: ServiceName, or the scope
// sanitised for DNS.
func (c Config) Service(scope string) string {
	if c.ServiceName != "" {
		return c.ServiceName
	}
	return SanitizeName(scope)
}

var nonDNS = regexp.MustCompile(`[^a-z0-9-]+`)

// SanitizeName turns a scope into a valid Consul DNS service name: lowercase letters, digits
// and dashes, at most 55 bytes so that "<name>-replica" is still one DNS label.
func SanitizeName(s string) string {
	s = nonDNS.ReplaceAllString(strings.ToLower(s), "-")
	s = strings.Trim(s, "-")
	if len(s) > maxServiceName {
		s = strings.TrimRight(s[:maxServiceName], "-")
	}
	return s
}
