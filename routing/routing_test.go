package routing

import (
	"encoding/json"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/hashicorp/consul/api"
)

var update = flag.Bool("update", false, "update golden files")

func defaultConfig() Config {
	return Config{DeregisterAfter: 10 * time.Minute, ReplicaMaxLag: 1 << 20}
}

func primary(mods ...func(*Want)) Want {
	w := Want{Scope: "pg_main", Node: "n1", Address: "10.0.0.1", Port: 5432, Role: RolePrimary, Healthy: true,
		Leader: true, Timeline: 3, LSN: 1000, Output: "heartbeat"}
	for _, m := range mods {
		m(&w)
	}
	return w
}

func replica(mods ...func(*Want)) Want {
	w := Want{Scope: "pg_main", Node: "n2", Address: "10.0.0.2", Port: 5432, Role: RoleReplica, Healthy: true,
		SyncState: SyncAsync, Timeline: 3, LSN: 900, LagBytes: 100, Output: "streaming"}
	for _, m := range mods {
		m(&w)
	}
	return w
}

func lag(n uint64) func(*Want)        { return func(w *Want) { w.LagBytes = n } }
func sync(s SyncState) func(*Want)    { return func(w *Want) { w.SyncState = s } }
func noLoadBalance() func(*Want)      { return func(w *Want) { w.NoLoadBalance = true } }
func unhealthy() func(*Want)          { return func(w *Want) { w.Healthy = false } }
func role(r Role) func(*Want)         { return func(w *Want) { w.Role = r } }
func withCfg(f func(*Config)) *Config { c := defaultConfig(); f(&c); return &c }

func TestBuild(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name       string
		cfg        *Config // nil: defaultConfig
		want       Want
		tags       []string
		status     string
		syncState  string
		sidecarID  string
		wantMaster bool
	}{
		{name: "primary", want: primary(), tags: []string{"master", "primary"}, status: api.HealthPassing},
		{name: "primary with user tags", cfg: withCfg(func(c *Config) { c.ServiceTags = []string{"zone-a", "pg15"} }),
			want: primary(), tags: []string{"master", "pg15", "primary", "zone-a"}, status: api.HealthPassing},
		{name: "async replica in the read pool", want: replica(), tags: []string{"async", "replica"},
			status: api.HealthPassing, syncState: "async"},
		{name: "sync replica", want: replica(sync(SyncSync)), tags: []string{"replica", "sync"},
			status: api.HealthPassing, syncState: "sync"},
		{name: "quorum replica", want: replica(sync(SyncQuorum)), tags: []string{"quorum", "replica"},
			status: api.HealthPassing, syncState: "quorum"},
		{name: "replica at the lag limit stays", want: replica(lag(1 << 20)), tags: []string{"async", "replica"},
			status: api.HealthPassing, syncState: "async"},
		{name: "lagging replica leaves the read pool, keeps its sync state and a passing check",
			want: replica(lag(1<<20 + 1)), tags: []string{"async", "lagging"}, status: api.HealthPassing, syncState: "async"},
		{name: "lagging sync replica is still sync", want: replica(sync(SyncSync), lag(8<<20)),
			tags: []string{"lagging", "sync"}, status: api.HealthPassing, syncState: "sync"},
		{name: "lagging replica stays out until under half the limit", want: replica(lag(1<<20), func(w *Want) { w.WasLagging = true }),
			tags: []string{"async", "lagging"}, status: api.HealthPassing, syncState: "async"},
		{name: "lagging replica under half the limit returns", want: replica(lag(1<<19), func(w *Want) { w.WasLagging = true }),
			tags: []string{"async", "replica"}, status: api.HealthPassing, syncState: "async"},
		{name: "no lag limit", cfg: withCfg(func(c *Config) { c.ReplicaMaxLag = 0 }), want: replica(lag(1 << 40)),
			tags: []string{"async", "replica"}, status: api.HealthPassing, syncState: "async"},
		{name: "noloadbalance replica is never in the read pool", want: replica(noLoadBalance()),
			tags: []string{"async", "noloadbalance"}, status: api.HealthPassing, syncState: "async"},
		{name: "replica not streaming fails its check", want: replica(unhealthy()), tags: []string{"async", "replica"},
			status: api.HealthCritical, syncState: "async"},
		{name: "standby leader", want: replica(role(RoleStandbyLeader), sync(SyncNone)), tags: []string{"standby-leader"},
			status: api.HealthPassing},
		{name: "no role: no role tag, critical", want: replica(role(RoleNone), sync(SyncNone), noLoadBalance()),
			tags: nil, status: api.HealthCritical},
		{name: "no role keeps user tags", cfg: withCfg(func(c *Config) { c.ServiceTags = []string{"x"} }),
			want: replica(role(RoleNone), sync(SyncNone)), tags: []string{"x"}, status: api.HealthCritical},
		{name: "api url in the meta", want: replica(func(w *Want) { w.APIURL = "https://10.0.0.2:8008" }),
			tags: []string{"async", "replica"}, status: api.HealthPassing, syncState: "async"},
		{name: "tls required in the meta", want: primary(func(w *Want) { w.TLS = true }),
			tags: []string{"master", "primary"}, status: api.HealthPassing},
		{name: "mesh adds a sidecar", cfg: withCfg(func(c *Config) { c.Mesh = true }), want: primary(),
			tags: []string{"master", "primary"}, status: api.HealthPassing, sidecarID: "pg-main-n1-sidecar-proxy"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			cfg := defaultConfig()
			if tt.cfg != nil {
				cfg = *tt.cfg
			}
			reg := Build(cfg, tt.want)
			svc := reg.Service
			if diff := cmp.Diff(tt.tags, svc.Tags); diff != "" {
				t.Errorf("tags (-want +got):\n%s", diff)
			}
			if reg.CheckStatus != tt.status || svc.Check.Status != tt.status {
				t.Errorf("check status %q (registered %q), want %q", reg.CheckStatus, svc.Check.Status, tt.status)
			}
			if svc.Name != "pg-main" || svc.ID != "pg-main-"+tt.want.Node {
				t.Errorf("name %q id %q", svc.Name, svc.ID)
			}
			if svc.Meta[MetaRole] != string(tt.want.Role) || svc.Meta[MetaNode] != tt.want.Node {
				t.Errorf("meta %v", svc.Meta)
			}
			if svc.Meta[MetaSyncState] != tt.syncState {
				t.Errorf("meta sync_state %q, want %q", svc.Meta[MetaSyncState], tt.syncState)
			}
			if got, ok := svc.Meta[MetaAPIURL]; got != tt.want.APIURL || ok != (tt.want.APIURL != "") {
				t.Errorf("meta api_url %q, want %q", got, tt.want.APIURL)
			}
			if got, ok := svc.Meta[MetaTLS]; (got == TLSRequired) != tt.want.TLS || ok != tt.want.TLS {
				t.Errorf("meta tls %q (set %v), want set %v", got, ok, tt.want.TLS)
			}
			if reg.SidecarID != tt.sidecarID || (tt.sidecarID != "") != (svc.Connect != nil) {
				t.Errorf("sidecar %q connect %v, want %q", reg.SidecarID, svc.Connect, tt.sidecarID)
			}
			if svc.Check.TTL != "3s" || svc.Check.CheckID != reg.CheckID || reg.CheckOutput != tt.want.Output {
				t.Errorf("check %+v output %q", svc.Check, reg.CheckOutput)
			}
		})
	}
}

func TestBuildCheckTTL(t *testing.T) {
	t.Parallel()
	w := primary()
	if reg := Build(defaultConfig(), w); reg.Service.Check.TTL != "3s" || reg.CheckTTL != 3*time.Second {
		t.Errorf("default check ttl %q (%s)", reg.Service.Check.TTL, reg.CheckTTL)
	}
	w.CheckTTL = 2 * time.Second // the loop's fencing deadline
	if reg := Build(defaultConfig(), w); reg.Service.Check.TTL != "2s" || reg.CheckTTL != 2*time.Second {
		t.Errorf("overridden check ttl %q (%s)", reg.Service.Check.TTL, reg.CheckTTL)
	}
}

// TestBuildGolden pins the rendered registrations, prepared queries and config entries.
func TestBuildGolden(t *testing.T) {
	t.Parallel()
	cfg := defaultConfig()
	cfg.Mesh = true
	cfg.FailoverDatacenters = []string{"dc2", "dc3"}
	got := map[string]any{
		"primary":  Build(cfg, primary()),
		"replica":  Build(cfg, replica(sync(SyncSync))),
		"lagging":  Build(cfg, replica(lag(2<<20))),
		"queries":  BuildQueries(cfg, cfg.Service("pg_main")),
		"entries":  BuildConfigEntries(cfg.Service("pg_main")),
		"stopped":  Build(defaultConfig(), replica(role(RoleNone), sync(SyncNone))),
		"services": []string{cfg.Service("pg_main"), QueryName("pg-main", TagReplica)},
	}
	b, err := json.MarshalIndent(got, "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join("testdata", "build.golden")
	if *update {
		if err := os.WriteFile(path, append(b, '\n'), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test ./routing -update)", err)
	}
	if diff := cmp.Diff(strings.TrimSpace(string(want)), strings.TrimSpace(string(b))); diff != "" {
		t.Errorf("rendered definitions changed (-golden +got); run with -update if intended:\n%s", diff)
	}
}

func TestSameService(t *testing.T) {
	t.Parallel()
	cfg := defaultConfig()
	base := Build(cfg, replica()).Service
	registered := func(mod func(*api.AgentService)) *api.AgentService {
		s := &api.AgentService{ID: base.ID, Service: base.Name, Address: base.Address, Port: base.Port,
			Tags: []string{"replica", "async"}, Meta: map[string]string{}}
		for k, v := range base.Meta {
			s.Meta[k] = v
		}
		if mod != nil {
			mod(s)
		}
		return s
	}
	tests := []struct {
		name      string
		have      *api.AgentService
		same      bool
		positions bool
	}{
		{name: "equal, tags in another order", have: registered(nil), same: true, positions: true},
		{name: "missing", have: nil, same: false},
		{name: "lsn moved: same service, positions differ", have: registered(func(s *api.AgentService) { s.Meta[MetaLSN] = "1" }),
			same: true, positions: false},
		{name: "lag moved", have: registered(func(s *api.AgentService) { s.Meta[MetaLagBytes] = "7" }), same: true},
		{name: "role tag differs", have: registered(func(s *api.AgentService) { s.Tags = []string{"async"} }), same: false, positions: true},
		{name: "extra tag", have: registered(func(s *api.AgentService) { s.Tags = append(s.Tags, "x") }), same: false, positions: true},
		{name: "role meta differs", have: registered(func(s *api.AgentService) { s.Meta[MetaRole] = "primary" }), same: false, positions: true},
		{name: "timeline differs", have: registered(func(s *api.AgentService) { s.Meta[MetaTimeline] = "2" }), same: false, positions: true},
		{name: "stale meta key", have: registered(func(s *api.AgentService) { s.Meta["old"] = "x" }), same: false, positions: true},
		{name: "sync state gone", have: registered(func(s *api.AgentService) { delete(s.Meta, MetaSyncState) }), same: false, positions: true},
		{name: "port differs", have: registered(func(s *api.AgentService) { s.Port = 5433 }), same: false, positions: true},
		{name: "address differs", have: registered(func(s *api.AgentService) { s.Address = "10.0.0.9" }), same: false, positions: true},
		{name: "name differs", have: registered(func(s *api.AgentService) { s.Service = "other" }), same: false, positions: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			if got := SameService(tt.have, base); got != tt.same {
				t.Errorf("SameService = %v, want %v", got, tt.same)
			}
			if tt.have != nil && tt.name != "lag moved" {
				if got := SamePositions(tt.have, base); got != tt.positions {
					t.Errorf("SamePositions = %v, want %v", got, tt.positions)
				}
			}
		})
	}
}

func TestQueries(t *testing.T) {
	t.Parallel()
	cfg := defaultConfig()
	cfg.FailoverDatacenters = []string{"dc2"}
	qs := BuildQueries(cfg, "pg")
	if len(qs) != 2 || qs[0].Name != "pg-primary" || qs[1].Name != "pg-replica" {
		t.Fatalf("queries %v", qs)
	}
	for _, q := range qs {
		if q.Service.Near != "_agent" || !q.Service.OnlyPassing || q.Service.Service != "pg" ||
			!cmp.Equal(q.Service.Failover.Datacenters, []string{"dc2"}) {
			t.Errorf("query %s: %+v", q.Name, q.Service)
		}
	}
	if got := qs[1].Service.Tags; !cmp.Equal(got, []string{"replica"}) {
		t.Errorf("replica query tags %v", got)
	}
	stored := func(mod func(*api.PreparedQueryDefinition)) *api.PreparedQueryDefinition {
		q := *qs[0]
		q.ID = "8f2c-id"
		q.Service.Tags = []string{"primary"}
		q.Service.Failover.Datacenters = []string{"dc2"}
		if mod != nil {
			mod(&q)
		}
		return &q
	}
	tests := []struct {
		name string
		have *api.PreparedQueryDefinition
		same bool
	}{
		{name: "equal (ID aside)", have: stored(nil), same: true},
		{name: "missing", have: nil, same: false},
		{name: "failover changed", have: stored(func(q *api.PreparedQueryDefinition) { q.Service.Failover.Datacenters = nil }), same: false},
		{name: "tag changed", have: stored(func(q *api.PreparedQueryDefinition) { q.Service.Tags = []string{"replica"} }), same: false},
		{name: "near removed", have: stored(func(q *api.PreparedQueryDefinition) { q.Service.Near = "" }), same: false},
		{name: "unhealthy allowed", have: stored(func(q *api.PreparedQueryDefinition) { q.Service.OnlyPassing = false }), same: false},
		{name: "meta filter added by hand", have: stored(func(q *api.PreparedQueryDefinition) { q.Service.ServiceMeta = map[string]string{"a": "b"} }), same: false},
		{name: "dns ttl added by hand", have: stored(func(q *api.PreparedQueryDefinition) { q.DNS.TTL = "10s" }), same: false},
		{name: "service renamed", have: stored(func(q *api.PreparedQueryDefinition) { q.Service.Service = "other" }), same: false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			if got := SameQuery(tt.have, qs[0]); got != tt.same {
				t.Errorf("SameQuery = %v, want %v", got, tt.same)
			}
		})
	}
}

func TestMergeConfigEntry(t *testing.T) {
	t.Parallel()
	entries := BuildConfigEntries("pg")
	defaults, resolver, redirect := entries[0], entries[1], entries[2]
	if len(entries) != 4 || defaults.GetKind() != api.ServiceDefaults || resolver.GetName() != "pg" ||
		redirect.GetName() != "pg-primary" || entries[3].GetName() != "pg-replica" {
		t.Fatalf("entries %v", entries)
	}
	r := resolver.(*api.ServiceResolverConfigEntry)
	if r.DefaultSubset != "primary" || r.Subsets["primary"].Filter != `Service.Meta.role == "primary"` ||
		r.Subsets["replica"].Filter != `"replica" in Service.Tags` || !r.Subsets["primary"].OnlyPassing {
		t.Fatalf("resolver %+v", r)
	}
	storedResolver := func(mod func(*api.ServiceResolverConfigEntry)) api.ConfigEntry {
		c := *r
		c.Subsets = map[string]api.ServiceResolverSubset{}
		for k, v := range r.Subsets {
			c.Subsets[k] = v
		}
		c.ModifyIndex = 42
		if mod != nil {
			mod(&c)
		}
		return &c
	}
	tests := []struct {
		name    string
		have    api.ConfigEntry
		want    api.ConfigEntry
		changed bool
		check   func(t *testing.T, next api.ConfigEntry)
	}{
		{name: "defaults absent", have: nil, want: defaults, changed: true},
		{name: "defaults equal", have: &api.ServiceConfigEntry{Kind: api.ServiceDefaults, Name: "pg", Protocol: "tcp"},
			want: defaults, changed: false},
		{name: "defaults protocol wrong, other fields kept",
			have: &api.ServiceConfigEntry{Kind: api.ServiceDefaults, Name: "pg", Protocol: "http", MaxInboundConnections: 7},
			want: defaults, changed: true,
			check: func(t *testing.T, next api.ConfigEntry) {
				t.Helper()
				n := next.(*api.ServiceConfigEntry)
				if n.Protocol != "tcp" || n.MaxInboundConnections != 7 || n.Meta["managed-by"] != "ramd" {
					t.Errorf("merged %+v", n)
				}
			}},
		{name: "resolver absent", have: nil, want: resolver, changed: true},
		{name: "resolver equal", have: storedResolver(nil), want: resolver, changed: false},
		{name: "resolver with an operator's timeout and extra subset is still equal",
			have: storedResolver(func(c *api.ServiceResolverConfigEntry) {
				c.ConnectTimeout = 5 * time.Second
				c.Subsets["canary"] = api.ServiceResolverSubset{Filter: "Service.Meta.canary == true"}
			}), want: resolver, changed: false},
		{name: "resolver filter edited: restored, extras kept",
			have: storedResolver(func(c *api.ServiceResolverConfigEntry) {
				c.ConnectTimeout = 5 * time.Second
				c.Subsets["primary"] = api.ServiceResolverSubset{Filter: "Service.Meta.role == replica"}
			}), want: resolver, changed: true,
			check: func(t *testing.T, next api.ConfigEntry) {
				t.Helper()
				n := next.(*api.ServiceResolverConfigEntry)
				if n.Subsets["primary"].Filter != FilterPrimary || n.ConnectTimeout != 5*time.Second || n.ModifyIndex != 42 {
					t.Errorf("merged %+v", n)
				}
			}},
		{name: "resolver default subset removed", have: storedResolver(func(c *api.ServiceResolverConfigEntry) { c.DefaultSubset = "" }),
			want: resolver, changed: true},
		{name: "redirect equal", have: redirect, want: redirect, changed: false},
		{name: "redirect changed", have: &api.ServiceResolverConfigEntry{Kind: api.ServiceResolver, Name: "pg-primary",
			Redirect: &api.ServiceResolverRedirect{Service: "pg", ServiceSubset: "replica"}}, want: redirect, changed: true,
			check: func(t *testing.T, next api.ConfigEntry) {
				t.Helper()
				n := next.(*api.ServiceResolverConfigEntry)
				if n.Redirect.ServiceSubset != "primary" || n.Subsets != nil {
					t.Errorf("merged %+v", n)
				}
			}},
		{name: "redirect where subsets were", have: &api.ServiceResolverConfigEntry{Kind: api.ServiceResolver, Name: "pg-primary",
			Subsets: map[string]api.ServiceResolverSubset{"x": {Filter: "a == b"}}}, want: redirect, changed: true,
			check: func(t *testing.T, next api.ConfigEntry) {
				t.Helper()
				if n := next.(*api.ServiceResolverConfigEntry); n.Subsets != nil || n.Redirect == nil {
					t.Errorf("merged %+v", n)
				}
			}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			next, changed := MergeConfigEntry(tt.have, tt.want)
			if changed != tt.changed {
				t.Fatalf("changed = %v, want %v", changed, tt.changed)
			}
			if tt.check != nil {
				tt.check(t, next)
			}
			if again, changed := MergeConfigEntry(next, tt.want); changed {
				t.Errorf("merging the result again changes it: %+v", again)
			}
		})
	}
}

func TestConfig(t *testing.T) {
	t.Parallel()
	names := []struct{ scope, want string }{
		{"pg", "pg"},
		{"PG_Main.prod", "pg-main-prod"},
		{"__x__", "x"},
		{strings.Repeat("a", 70), strings.Repeat("a", 55)},
		{strings.Repeat("a", 54) + "_b", strings.Repeat("a", 54)},
	}
	for _, n := range names {
		if got := SanitizeName(n.scope); got != n.want {
			t.Errorf("SanitizeName(%q) = %q, want %q", n.scope, got, n.want)
		}
		if got := QueryName(SanitizeName(n.scope), "replica"); len(got) > 63 {
			t.Errorf("query name %q is longer than a DNS label", got)
		}
	}
	if got := (Config{ServiceName: "db"}).Service("pg"); got != "db" {
		t.Errorf("Service = %q", got)
	}
	tests := []struct {
		name string
		mod  func(*Config)
		want string // "" accepts; else a fragment of the error
	}{
		{name: "defaults", mod: func(*Config) {}},
		{name: "service name", mod: func(c *Config) { c.ServiceName = "pg-main" }},
		{name: "service name not a DNS label", mod: func(c *Config) { c.ServiceName = "Pg_Main" }, want: "RAMD_SERVICE_NAME"},
		{name: "service name too long", mod: func(c *Config) { c.ServiceName = strings.Repeat("a", 56) }, want: "RAMD_SERVICE_NAME"},
		{name: "user tag", mod: func(c *Config) { c.ServiceTags = []string{"zone-a"} }},
		{name: "reserved tag", mod: func(c *Config) { c.ServiceTags = []string{"primary"} }, want: `tag "primary" is set by ramd`},
		{name: "empty tag", mod: func(c *Config) { c.ServiceTags = []string{" "} }, want: "empty tag"},
		{name: "deregister floor", mod: func(c *Config) { c.DeregisterAfter = time.Second }, want: "RAMD_SERVICE_DEREGISTER_AFTER"},
		{name: "failover dcs", mod: func(c *Config) { c.FailoverDatacenters = []string{"dc2", "eu_west-1"} }},
		{name: "bad failover dc", mod: func(c *Config) { c.FailoverDatacenters = []string{"dc 2"} }, want: "RAMD_PREPARED_QUERY_FAILOVER_DCS"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			c := defaultConfig()
			tt.mod(&c)
			err := c.Validate()
			switch {
			case tt.want == "" && err != nil:
				t.Fatalf("refused: %v", err)
			case tt.want != "" && (err == nil || !strings.Contains(err.Error(), tt.want)):
				t.Fatalf("error %v, want one containing %q", err, tt.want)
			}
		})
	}
}

// TestACLPolicyDocumented keeps the policy in docs/ROUTING.md equal to ACLPolicy.
func TestACLPolicyDocumented(t *testing.T) {
	t.Parallel()
	b, err := os.ReadFile(filepath.Join("..", "docs", "ROUTING.md"))
	if err != nil {
		t.Fatal(err)
	}
	want := "```hcl\n" + ACLPolicy("service/pg-main/", "pg-main") + "```"
	if !strings.Contains(string(b), want) {
		t.Errorf("docs/ROUTING.md does not show the policy ACLPolicy renders:\n%s", want)
	}
	if got := ACLPolicy("/service/pg-main", "pg-main"); got != ACLPolicy("service/pg-main/", "pg-main") {
		t.Errorf("slashes not normalised:\n%s", got)
	}
}
