package routing

import (
	"maps"

	"github.com/hashicorp/consul/api"
)

// Subsets of the service-resolver, and the filters that select them. The primary subset is
// the instance whose role is primary; the replica subset is the read pool, the same
// instances replica.<svc> names. Both take passing instances only, so a node whose check
// failed (fenced, frozen, demoted) leaves the subset as it leaves DNS.
const (
	SubsetPrimary = "primary"
	SubsetReplica = "replica"

	FilterPrimary = `Service.Meta.role == "primary"`
	FilterReplica = `"replica" in Service.Tags`
)

// ManagedBy is the meta ramd puts on the config entries it writes.
const ManagedBy = "ramd"

// BuildConfigEntries returns the mesh config entries the leader keeps for service, in the
// order they must be written (defaults before the resolvers that use them). Pure.
//
//   - service-defaults <svc>: protocol tcp (PostgreSQL's wire protocol is not HTTP);
//   - service-resolver <svc>: subsets primary and replica, default subset primary, so an
//     upstream naming <svc> reaches the primary only;
//   - service-resolver <svc>-primary and <svc>-replica: redirects to the subsets, so a TCP
//     upstream can name a subset (service-routers need an HTTP protocol).
func BuildConfigEntries(service string) []api.ConfigEntry {
	meta := func() map[string]string { return map[string]string{"managed-by": ManagedBy} }
	redirect := func(subset string) api.ConfigEntry {
		return &api.ServiceResolverConfigEntry{
			Kind:     api.ServiceResolver,
			Name:     QueryName(service, subset),
			Redirect: &api.ServiceResolverRedirect{Service: service, ServiceSubset: subset},
			Meta:     meta(),
		}
	}
	return []api.ConfigEntry{
		&api.ServiceConfigEntry{Kind: api.ServiceDefaults, Name: service, Protocol: "tcp", Meta: meta()},
		&api.ServiceResolverConfigEntry{
			Kind:          api.ServiceResolver,
			Name:          service,
			DefaultSubset: SubsetPrimary,
			Subsets: map[string]api.ServiceResolverSubset{
				SubsetPrimary: {Filter: FilterPrimary, OnlyPassing: true},
				SubsetReplica: {Filter: FilterReplica, OnlyPassing: true},
			},
			Meta: meta(),
		},
		redirect(SubsetPrimary),
		redirect(SubsetReplica),
	}
}

// MergeConfigEntry returns the entry to write so that the stored entry have (nil when
// absent) says what want says, and whether a write is needed. Fields ramd does not manage
// (timeouts, load balancing, extra subsets, meta) are kept from have, so an operator's
// additions survive. Pure; have is not modified.
func MergeConfigEntry(have, want api.ConfigEntry) (api.ConfigEntry, bool) {
	switch w := want.(type) {
	case *api.ServiceConfigEntry:
		h, ok := have.(*api.ServiceConfigEntry)
		if !ok || h == nil {
			return w, true
		}
		if h.Protocol == w.Protocol {
			return h, false
		}
		next := *h
		next.Protocol = w.Protocol
		next.Meta = mergeMeta(h.Meta, w.Meta)
		return &next, true
	case *api.ServiceResolverConfigEntry:
		h, ok := have.(*api.ServiceResolverConfigEntry)
		if !ok || h == nil {
			return w, true
		}
		return mergeResolver(h, w)
	default:
		return want, have == nil
	}
}

func mergeResolver(h, w *api.ServiceResolverConfigEntry) (api.ConfigEntry, bool) {
	next := *h
	changed := false
	if h.DefaultSubset != w.DefaultSubset {
		next.DefaultSubset, changed = w.DefaultSubset, true
	}
	subsets := maps.Clone(h.Subsets)
	for name, ws := range w.Subsets {
		if hs, ok := subsets[name]; !ok || hs != ws {
			if subsets == nil {
				subsets = map[string]api.ServiceResolverSubset{}
			}
			subsets[name], changed = ws, true
		}
	}
	next.Subsets = subsets
	if !sameRedirect(h.Redirect, w.Redirect) {
		next.Redirect, changed = w.Redirect, true
		if w.Redirect != nil {
			// A redirect excludes subsets and failover on the same entry.
			next.Subsets, next.DefaultSubset, next.Failover = nil, "", nil
		}
	}
	if !changed {
		return h, false
	}
	next.Meta = mergeMeta(h.Meta, w.Meta)
	return &next, true
}

func sameRedirect(a, b *api.ServiceResolverRedirect) bool {
	if a == nil || b == nil {
		return a == b
	}
	return *a == *b
}

func mergeMeta(have, want map[string]string) map[string]string {
	out := maps.Clone(have)
	if out == nil {
		out = map[string]string{}
	}
	maps.Copy(out, want)
	return out
}
