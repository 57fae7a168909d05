package routing

import (
	"slices"

	"github.com/hashicorp/consul/api"
)

// NearAgent sorts a prepared query's answers by round-trip time from the agent that runs it
// (the client's local agent for DNS), nearest first.
const NearAgent = "_agent"

// QueryName is the name of the prepared query for tag (primary or replica) of service; it
// resolves as <service>-<tag>.query.consul.
func QueryName(service, tag string) string { return service + "-" + tag }

// BuildQueries returns the prepared queries the leader keeps for service:
// "<service>-primary" (instances tagged primary) and "<service>-replica" (the read pool),
// healthy only, nearest first, then the failover datacenters in order. Pure.
func BuildQueries(cfg Config, service string) []*api.PreparedQueryDefinition {
	out := make([]*api.PreparedQueryDefinition, 0, 2)
	for _, tag := range []string{TagPrimary, TagReplica} {
		out = append(out, &api.PreparedQueryDefinition{
			Name: QueryName(service, tag),
			Service: api.ServiceQuery{
				Service:     service,
				Tags:        []string{tag},
				OnlyPassing: true,
				Near:        NearAgent,
				Failover:    api.QueryFailoverOptions{Datacenters: slices.Clone(cfg.FailoverDatacenters)},
			},
		})
	}
	return out
}

// SameQuery reports whether the stored query have answers exactly as want does: same
// service, tags, health filter, sorting, failover, and no extra constraint (meta filters,
// ignored checks, a session, a template, a DNS TTL) that someone added by hand.
func SameQuery(have, want *api.PreparedQueryDefinition) bool {
	if have == nil || want == nil {
		return false
	}
	hs, ws := have.Service, want.Service
	return have.Name == want.Name &&
		have.Session == want.Session &&
		have.Template == want.Template &&
		have.DNS == want.DNS &&
		hs.Service == ws.Service &&
		slices.Equal(hs.Tags, ws.Tags) &&
		hs.OnlyPassing == ws.OnlyPassing &&
		hs.Near == ws.Near &&
		hs.Connect == ws.Connect &&
		hs.Failover.NearestN == ws.Failover.NearestN &&
		slices.Equal(hs.Failover.Datacenters, ws.Failover.Datacenters) &&
		len(hs.Failover.Targets) == len(ws.Failover.Targets) &&
		len(hs.IgnoreCheckIDs) == 0 && len(hs.NodeMeta) == 0 && len(hs.ServiceMeta) == 0
}
