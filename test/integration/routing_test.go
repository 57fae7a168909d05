package integration

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"regexp"
	"slices"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hashicorp/consul/api"
	"github.com/miekg/dns"

	"github.com/ramd-project/ramd/consul"
	"github.com/ramd-project/ramd/routing"
	"github.com/ramd-project/ramd/test/harness"
	"github.com/ramd-project/ramd/test/testenv"
)

// routingLag is the RAMD_REPLICA_MAX_LAG of the routing tests: small, so a paused replay
// crosses it with one statement on the primary.
const routingLag = "65536"

// dnsNames resolves name (SRV, with the A records in the additional section) on agent
// dnsAddr and returns the names of the nodes whose PostgreSQL port it answers, sorted. It
// fails when an A record is not loopback.
func dnsNames(c *harness.Cluster, dnsAddr, name string) ([]string, error) {
	srv, ips, err := dnsSRV(dnsAddr, name)
	if err != nil {
		return nil, err
	}
	for _, ip := range ips {
		if !ip.Equal(net.ParseIP("127.0.0.1")) {
			return nil, fmt.Errorf("%s: A record %s, want 127.0.0.1", name, ip)
		}
	}
	if len(srv) > 0 && len(ips) == 0 {
		return nil, fmt.Errorf("%s: SRV answers without A records", name)
	}
	var out []string
	for _, s := range srv {
		found := ""
		for _, n := range c.Nodes {
			if int(s.Port) == n.PGPort {
				found = n.Name
			}
		}
		if found == "" {
			return nil, fmt.Errorf("%s: SRV port %d is no node's", name, s.Port)
		}
		out = append(out, found)
	}
	sort.Strings(out)
	return out, nil
}

// dnsA asks the agent's DNS port for name's A records.
func dnsA(dnsAddr, name string) ([]net.IP, error) {
	m := new(dns.Msg)
	m.SetQuestion(dns.Fqdn(name), dns.TypeA)
	r, _, err := (&dns.Client{Timeout: 2 * time.Second}).Exchange(m, dnsAddr)
	if err != nil {
		return nil, err
	}
	var ips []net.IP
	for _, rr := range r.Answer {
		if a, ok := rr.(*dns.A); ok {
			ips = append(ips, a.A)
		}
	}
	return ips, nil
}

// waitNames waits until every name resolves to exactly the nodes given (SRV), and has A
// records (all loopback) exactly when it names a node.
func waitNames(t *testing.T, c *harness.Cluster, timeout time.Duration, want map[string][]*harness.Node) {
	t.Helper()
	testenv.Eventually(t, timeout, 100*time.Millisecond, func() error {
		for name, nodes := range want {
			exp := []string{}
			for _, n := range nodes {
				exp = append(exp, n.Name)
			}
			sort.Strings(exp)
			got, err := dnsNames(c, shared.DNSAddr, name)
			if err != nil {
				return err
			}
			if got == nil {
				got = []string{}
			}
			if !slices.Equal(got, exp) {
				return fmt.Errorf("%s names %v, want %v", name, got, exp)
			}
			ips, err := dnsA(shared.DNSAddr, name)
			if err != nil {
				return err
			}
			if (len(ips) > 0) != (len(exp) > 0) {
				return fmt.Errorf("%s: A records %v for nodes %v", name, ips, exp)
			}
			for _, ip := range ips {
				if !ip.Equal(net.ParseIP("127.0.0.1")) {
					return fmt.Errorf("%s: A record %s, want 127.0.0.1", name, ip)
				}
			}
		}
		return nil
	})
}

// names lists the DNS names of service svc for the primary p and the replicas.
func names(svc string, p *harness.Node, readPool, async []*harness.Node) map[string][]*harness.Node {
	return map[string][]*harness.Node{
		"primary." + svc + ".service.consul":        {p},
		"master." + svc + ".service.consul":         {p},
		"replica." + svc + ".service.consul":        readPool,
		"async." + svc + ".service.consul":          async,
		"sync." + svc + ".service.consul":           nil,
		svc + "-primary.query.consul":               {p},
		svc + "-replica.query.consul":               readPool,
		"standby-leader." + svc + ".service.consul": nil,
	}
}

// getJSON decodes GET url (on the agent, with token when not "") into v; 404 is ErrNotFound.
func getJSON(addr, path, token string, v any) error {
	req, err := http.NewRequest(http.MethodGet, "http://"+addr+path, nil)
	if err != nil {
		return err
	}
	if token != "" {
		req.Header.Set("X-Consul-Token", token)
	}
	resp, err := (&http.Client{Timeout: 5 * time.Second}).Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	switch {
	case resp.StatusCode == http.StatusNotFound:
		return consul.ErrNotFound
	case resp.StatusCode != http.StatusOK:
		return fmt.Errorf("GET %s: %d %s", path, resp.StatusCode, b)
	}
	return json.Unmarshal(b, v)
}

// filtered returns the nodes (meta "node") of the passing instances of svc matching filter,
// through the health API's ?filter= (what a resolver subset selects).
func filtered(addr, token, svc, filter string) ([]string, error) {
	var entries []api.ServiceEntry
	if err := getJSON(addr, "/v1/health/service/"+svc+"?passing=true&filter="+url.QueryEscape(filter), token, &entries); err != nil {
		return nil, err
	}
	var out []string
	for _, e := range entries {
		out = append(out, e.Service.Meta["node"])
	}
	sort.Strings(out)
	return out, nil
}

// primarySampler asks DNS for primary.<svc> every 20 ms and records every answer naming more
// than one node: the invariant that a demoted or dead primary is never announced together
// with the new one.
type primarySampler struct {
	stop    chan struct{}
	done    chan struct{}
	mu      sync.Mutex // guards doubles
	doubles []string
}

func samplePrimary(c *harness.Cluster, svc string) *primarySampler {
	s := &primarySampler{stop: make(chan struct{}), done: make(chan struct{})}
	go func() {
		defer close(s.done)
		for {
			select {
			case <-s.stop:
				return
			case <-time.After(20 * time.Millisecond):
			}
			got, err := dnsNames(c, shared.DNSAddr, "primary."+svc+".service.consul")
			if err == nil && len(got) > 1 {
				s.mu.Lock()
				s.doubles = append(s.doubles, time.Now().Format("15:04:05.000")+" "+strings.Join(got, ","))
				s.mu.Unlock()
			}
		}
	}()
	return s
}

func (s *primarySampler) check(t *testing.T) {
	t.Helper()
	close(s.stop)
	<-s.done
	if len(s.doubles) > 0 {
		t.Errorf("primary.<svc> named two nodes at once: %v", s.doubles)
	}
}

var consulOp = regexp.MustCompile(`msg="consul request" op=(\S+)`)

// consulWrites counts the Consul write requests in a node's debug log from byte offset
// from, by op (reads, renewals and check updates are not counted: they change nothing in
// the catalog or the KV store).
func consulWrites(t *testing.T, n *harness.Node, from int64) map[string]int {
	t.Helper()
	b, err := os.ReadFile(n.LogPath)
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]int{}
	for _, line := range strings.Split(string(b[min(from, int64(len(b))):]), "\n") {
		m := consulOp.FindStringSubmatch(line)
		if m == nil {
			continue
		}
		switch op := m[1]; {
		case strings.HasPrefix(op, "kv.") && op != "kv.get" && op != "kv.list" && op != "kv.watch",
			op == "agent.service_register", op == "agent.service_deregister",
			op == "session.create", op == "session.destroy",
			strings.HasPrefix(op, "query.") && op != "query.list",
			strings.HasPrefix(op, "config_entry.") && op != "config_entry.get":
			out[op]++
		}
	}
	return out
}

func logSize(n *harness.Node) int64 {
	fi, err := os.Stat(n.LogPath)
	if err != nil {
		return 0
	}
	return fi.Size()
}

// waitStreaming waits until every running node but the primary runs as a replica and the
// primary streams to each (harness.WaitReplicas asks /replica, which a noloadbalance node
// answers 503).
func waitStreaming(t *testing.T, c *harness.Cluster, timeout time.Duration) {
	t.Helper()
	testenv.Eventually(t, timeout, 200*time.Millisecond, func() error {
		p, err := c.Primary()
		if err != nil {
			return err
		}
		want := 0
		for _, n := range c.Nodes {
			if n == p || n.PID() == 0 {
				continue
			}
			want++
			d, err := n.Patroni()
			if err != nil {
				return err
			}
			if d.Role != "replica" || d.State != "running" {
				return fmt.Errorf("%s is %s/%s", n.Name, d.Role, d.State)
			}
		}
		got, err := p.QueryInt(context.Background(), "SELECT count(*) FROM pg_stat_replication WHERE state = 'streaming'")
		if err != nil {
			return err
		}
		if int(got) < want {
			return fmt.Errorf("%d of %d replicas streaming", got, want)
		}
		return nil
	})
}

// TestRoutingDNS runs one three-node cluster (n3 tagged noloadbalance, a 64 KiB lag limit,
// the mesh on) through the routing contract with real DNS queries to the agent: names per
// role and the prepared queries; the mesh entries and the catalog's answers per subset; no
// writes in a steady cluster; a registration and a prepared query deleted by hand come back;
// a replica whose replay is paused leaves replica. (not async.) and comes back after
// resume; the names follow a switchover and a failover, never naming two primaries.
func TestRoutingDNS(t *testing.T) {
	t.Parallel()
	addr := needReal(t)
	c := harness.New(t, ramdBin, addr, 3, harness.Options{
		Env:     map[string]string{"RAMD_REPLICA_MAX_LAG": routingLag, "RAMD_MESH": "true", "RAMD_LOG_LEVEL": "debug"},
		NodeEnv: map[string]map[string]string{"n3": {"RAMD_TAGS": "noloadbalance:true"}},
	})
	svc := routing.SanitizeName(c.Scope)
	n3 := c.Node("n3")
	c.StartAll()
	p := c.WaitPrimary(120 * time.Second)
	waitStreaming(t, c, 120*time.Second)
	others := func(p *harness.Node) (readPool, all []*harness.Node) {
		for _, n := range c.Nodes {
			if n != p && n.PID() > 0 {
				all = append(all, n)
				if n != n3 {
					readPool = append(readPool, n)
				}
			}
		}
		return readPool, all
	}
	pool, replicas := others(p)
	waitNames(t, c, 30*time.Second, names(svc, p, pool, replicas))

	t.Run("mesh", func(t *testing.T) {
		var defaults api.ServiceConfigEntry
		testenv.Eventually(t, 15*time.Second, 200*time.Millisecond, func() error {
			return getJSON(addr, "/v1/config/service-defaults/"+svc, "", &defaults)
		})
		if defaults.Protocol != "tcp" {
			t.Errorf("service-defaults protocol %q, want tcp", defaults.Protocol)
		}
		var resolver api.ServiceResolverConfigEntry
		if err := getJSON(addr, "/v1/config/service-resolver/"+svc, "", &resolver); err != nil {
			t.Fatal(err)
		}
		if resolver.DefaultSubset != "primary" || resolver.Subsets["primary"].Filter != routing.FilterPrimary ||
			resolver.Subsets["replica"].Filter != routing.FilterReplica {
			t.Errorf("resolver %+v", resolver)
		}
		// The redirect compiles to the primary subset of the service.
		var chain struct {
			Chain struct {
				Targets map[string]struct{ Service, ServiceSubset string }
			}
		}
		if err := getJSON(addr, "/v1/discovery-chain/"+svc+"-primary", "", &chain); err != nil {
			t.Fatal(err)
		}
		if len(chain.Chain.Targets) != 1 {
			t.Fatalf("chain of %s-primary: %+v", svc, chain)
		}
		for _, tg := range chain.Chain.Targets {
			if tg.Service != svc || tg.ServiceSubset != "primary" {
				t.Errorf("chain target %+v", tg)
			}
		}
		// The subsets' filters select the right instances in the catalog.
		testenv.Eventually(t, 10*time.Second, 200*time.Millisecond, func() error {
			for filter, want := range map[string][]*harness.Node{
				"Service.Meta.role==primary": {p}, routing.FilterPrimary: {p}, routing.FilterReplica: pool,
			} {
				got, err := filtered(addr, "", svc, filter)
				if err != nil {
					return err
				}
				exp := []string{}
				for _, n := range want {
					exp = append(exp, n.Name)
				}
				sort.Strings(exp)
				if !slices.Equal(got, exp) && !(len(got) == 0 && len(exp) == 0) {
					return fmt.Errorf("filter %s: %v, want %v", filter, got, exp)
				}
			}
			return nil
		})
		var services map[string]api.AgentService
		if err := getJSON(addr, "/v1/agent/services", "", &services); err != nil {
			t.Fatal(err)
		}
		for _, n := range c.Nodes {
			id := routing.SidecarID(routing.ServiceID(svc, n.Name))
			if sc, ok := services[id]; !ok || sc.Kind != api.ServiceKindConnectProxy || sc.Proxy.DestinationServiceName != svc {
				t.Errorf("sidecar %s: %+v", id, sc)
			}
		}
	})

	t.Run("steady cluster writes nothing but the heartbeat", func(t *testing.T) {
		// A window counts only if PostgreSQL wrote no WAL meanwhile (a checkpoint or
		// autovacuum moves every node's positions, and publishing those is a real change).
		// Let the start settle first (checkpoints, catching up).
		time.Sleep(3 * time.Second)
		const window = 8 * time.Second
		walPos := func() string {
			var pos string
			conn, err := p.Conn(context.Background())
			if err == nil {
				defer conn.Close(context.Background())
				err = conn.QueryRow(context.Background(), "SELECT pg_current_wal_lsn()::text").Scan(&pos)
			}
			if err != nil {
				t.Fatal(err)
			}
			return pos
		}
		for attempt := 1; ; attempt++ {
			from := map[*harness.Node]int64{}
			for _, n := range c.Nodes {
				from[n] = logSize(n)
			}
			before := walPos()
			time.Sleep(window)
			if after := walPos(); after != before && attempt < 4 {
				t.Logf("PostgreSQL wrote WAL during window %d (%s to %s); counting again", attempt, before, after)
				continue
			}
			for _, n := range c.Nodes {
				w := consulWrites(t, n, from[n])
				if testing.Verbose() {
					t.Logf("%s wrote in %s: %v", n.Name, window, w)
				}
				if n == p {
					// One heartbeat transaction per cycle.
					if w["kv.txn"] < 4 {
						t.Errorf("%s (leader): %d heartbeats in %s", n.Name, w["kv.txn"], window)
					}
					delete(w, "kv.txn")
				}
				// The member key is refreshed every 30 s: at most once in the window.
				if w["kv.acquire"] <= 1 {
					delete(w, "kv.acquire")
				}
				if len(w) > 0 {
					t.Errorf("%s wrote to Consul in a steady cluster: %v", n.Name, w)
				}
			}
			return
		}
	})

	t.Run("registration and query deleted by hand come back", func(t *testing.T) {
		victim := pool[0]
		id := routing.ServiceID(svc, victim.Name)
		req, _ := http.NewRequest(http.MethodPut, "http://"+addr+"/v1/agent/service/deregister/"+id, nil)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		var q []api.PreparedQueryDefinition
		if err := getJSON(addr, "/v1/query", "", &q); err != nil {
			t.Fatal(err)
		}
		for _, d := range q {
			if d.Name == svc+"-replica" {
				req, _ := http.NewRequest(http.MethodDelete, "http://"+addr+"/v1/query/"+d.ID, nil)
				resp, err := http.DefaultClient.Do(req)
				if err != nil {
					t.Fatal(err)
				}
				resp.Body.Close()
			}
		}
		// Back within a few cycles (the registration), within the leader's resync (queries).
		waitNames(t, c, 20*time.Second, names(svc, p, pool, replicas))
		testenv.Eventually(t, 10*time.Second, 100*time.Millisecond, func() error {
			var s api.AgentService
			return getJSON(addr, "/v1/agent/service/"+routing.SidecarID(id), "", &s)
		})
	})

	t.Run("lag over the limit leaves replica. and comes back", func(t *testing.T) {
		ctx := context.Background()
		r := pool[0]
		if err := r.Exec(ctx, "SELECT pg_wal_replay_pause()"); err != nil {
			t.Fatal(err)
		}
		resumed := false
		defer func() {
			if !resumed {
				_ = r.Exec(ctx, "SELECT pg_wal_replay_resume()")
			}
		}()
		if err := p.Exec(ctx, "CREATE TABLE routing_big AS SELECT generate_series(1, 100000) AS v"); err != nil {
			t.Fatal(err)
		}
		lagPool := slices.DeleteFunc(slices.Clone(pool), func(n *harness.Node) bool { return n == r })
		// Out of the read pool; still an async replica with a passing check, tagged lagging.
		waitNames(t, c, 20*time.Second, names(svc, p, lagPool, replicas))
		var tagged []api.CatalogService
		if err := getJSON(addr, "/v1/catalog/service/"+svc+"?tag=lagging", "", &tagged); err != nil {
			t.Fatal(err)
		}
		if len(tagged) != 1 || tagged[0].ServiceMeta["node"] != r.Name {
			t.Errorf("lagging instances %+v, want %s only", tagged, r.Name)
		}
		if err := r.Exec(ctx, "SELECT pg_wal_replay_resume()"); err != nil {
			t.Fatal(err)
		}
		resumed = true
		waitNames(t, c, 20*time.Second, names(svc, p, pool, replicas))
	})

	t.Run("names follow a switchover", func(t *testing.T) {
		target := pool[0]
		s := samplePrimary(c, svc)
		code, body := post(t, p.APIURL()+"/switchover", fmt.Sprintf(`{"leader":%q,"candidate":%q}`, p.Name, target.Name))
		if code != http.StatusOK {
			s.check(t)
			t.Fatalf("switchover: %d %s", code, body)
		}
		if now := c.WaitPrimary(60 * time.Second); now != target {
			t.Fatalf("primary is %s after a switchover to %s", now.Name, target.Name)
		}
		waitStreaming(t, c, 120*time.Second)
		p = target
		pool, replicas = others(p)
		waitNames(t, c, 30*time.Second, names(svc, p, pool, replicas))
		s.check(t)
	})

	t.Run("names follow a failover", func(t *testing.T) {
		old := p
		s := samplePrimary(c, svc)
		old.Kill()
		testenv.Eventually(t, 60*time.Second, 100*time.Millisecond, func() error {
			n, err := c.Primary()
			if err != nil {
				return err
			}
			p = n
			return nil
		})
		pool, replicas = others(p)
		// The killed node drops out of every name (its check expires); the survivors follow.
		waitNames(t, c, 30*time.Second, names(svc, p, pool, replicas))
		s.check(t)
		if p == old {
			t.Fatal("the killed node is primary")
		}
	})
}

// TestRoutingACL runs against an agent whose ACL default policy is deny. Each rule of the
// documented policy (routing.ACLPolicy) is needed: without it, the call ramd makes with it
// is refused. A node with a token of that policy (and the mesh on, which needs no other rule)
// bootstraps, registers, and writes the prepared queries and config entries. A node without
// a token says clearly that Consul's ACLs refuse it, and touches nothing.
func TestRoutingACL(t *testing.T) {
	t.Parallel()
	needReal(t)
	a := testenv.StartConsul(t, testenv.ConsulOptions{ACLDefaultDeny: true})
	mgmt, err := api.NewClient(&api.Config{Address: a.HTTPAddr, Token: a.Token})
	if err != nil {
		t.Fatal(err)
	}
	env := map[string]string{"RAMD_MESH": "true"}
	c := harness.New(t, ramdBin, a.HTTPAddr, 1, harness.Options{Env: env})
	svc := routing.SanitizeName(c.Scope)
	policy := routing.ACLPolicy("service/"+c.Scope+"/", svc)
	token := func(name, rules string) string {
		t.Helper()
		pol, _, err := mgmt.ACL().PolicyCreate(&api.ACLPolicy{Name: name, Rules: rules}, nil)
		if err != nil {
			t.Fatalf("create policy %s: %v\n%s", name, err, rules)
		}
		tok, _, err := mgmt.ACL().TokenCreate(&api.ACLToken{Policies: []*api.ACLTokenPolicyLink{{ID: pol.ID}}}, nil)
		if err != nil {
			t.Fatal(err)
		}
		return tok.SecretID
	}
	env["CONSUL_HTTP_TOKEN"] = token("ramd-"+svc, policy)
	n := c.Nodes[0]
	n.Start()
	c.WaitPrimary(120 * time.Second)

	t.Run("node with the policy's token", func(t *testing.T) {
		testenv.Eventually(t, 20*time.Second, 200*time.Millisecond, func() error {
			got, err := filtered(a.HTTPAddr, a.Token, svc, routing.FilterPrimary)
			if err != nil {
				return err
			}
			if !slices.Equal(got, []string{n.Name}) {
				return fmt.Errorf("passing primary instances %v", got)
			}
			var q []api.PreparedQueryDefinition
			if err := getJSON(a.HTTPAddr, "/v1/query", a.Token, &q); err != nil {
				return err
			}
			if len(q) != 2 {
				return fmt.Errorf("%d prepared queries, want 2", len(q))
			}
			for _, kind := range []string{"service-defaults/" + svc, "service-resolver/" + svc, "service-resolver/" + svc + "-replica"} {
				var e map[string]any
				if err := getJSON(a.HTTPAddr, "/v1/config/"+kind, a.Token, &e); err != nil {
					return fmt.Errorf("config entry %s: %w", kind, err)
				}
			}
			return nil
		})
		b, _ := os.ReadFile(n.LogPath)
		if strings.Contains(string(b), "permission denied") {
			t.Errorf("a node with the documented policy was refused something:\n%s", grepLines(string(b), "permission denied"))
		}
	})

	t.Run("each rule is needed", func(t *testing.T) {
		ctx := t.Context()
		var rules []string
		for _, r := range strings.SplitAfter(policy, "\n}") {
			if r = strings.TrimSpace(r); r != "" {
				rules = append(rules, r)
			}
		}
		type need struct {
			rule string
			call func(c *consul.Client) error
		}
		needs := []need{
			{"key_prefix", func(cl *consul.Client) error { return cl.Store("service", c.Scope).Put(ctx, "probe", []byte("x")) }},
			{"session_prefix", func(c *consul.Client) error {
				id, err := c.CreateSession(ctx, consul.SessionOptions{TTL: 10 * time.Second, LockDelay: time.Millisecond})
				if err == nil {
					_ = c.DestroySession(ctx, id)
				}
				return err
			}},
			{"service_prefix", func(c *consul.Client) error {
				_, err := c.LocalService(ctx, routing.ServiceID(svc, n.Name))
				return err
			}},
			{"query_prefix", func(cl *consul.Client) error {
				id, err := cl.PutPreparedQuery(ctx, &api.PreparedQueryDefinition{Name: svc + "-probe", Service: api.ServiceQuery{Service: svc}})
				if err == nil {
					err = cl.DeletePreparedQuery(ctx, id)
				}
				return err
			}},
			{"agent_prefix", func(c *consul.Client) error { _, err := c.Agent(ctx); return err }},
			{"node_prefix", func(c *consul.Client) error {
				entries, err := c.HealthyService(ctx, svc, routing.TagPrimary)
				if err == nil && len(entries) == 0 {
					// Without node:read the catalog hides the instances rather than refusing.
					return fmt.Errorf("no instance visible: %w", consul.ErrPermissionDenied)
				}
				return err
			}},
		}
		if len(needs) != len(rules) {
			t.Fatalf("%d rules in the policy, %d checked:\n%s", len(rules), len(needs), policy)
		}
		for _, nd := range needs {
			var without []string
			for _, r := range rules {
				if !strings.HasPrefix(strings.TrimSpace(r), nd.rule+" ") {
					without = append(without, r)
				}
			}
			if len(without) != len(rules)-1 {
				t.Fatalf("rule %s not found in the policy", nd.rule)
			}
			for _, tc := range []struct {
				label, rules string
				allowed      bool
			}{{"full policy", policy, true}, {"without " + nd.rule, strings.Join(without, "\n"), false}} {
				cl, err := consul.New(consul.Config{Addr: a.HTTPAddr, Token: token(svc+"-"+strings.ReplaceAll(tc.label, " ", "-")+"-"+nd.rule, tc.rules)}, nil)
				if err != nil {
					t.Fatal(err)
				}
				err = nd.call(cl)
				switch {
				case tc.allowed && err != nil:
					t.Errorf("%s (%s): %v", nd.rule, tc.label, err)
				case !tc.allowed && !errors.Is(err, consul.ErrPermissionDenied):
					t.Errorf("%s (%s): err = %v, want permission denied", nd.rule, tc.label, err)
				}
			}
		}
	})

	t.Run("node without a token says why", func(t *testing.T) {
		bare := harness.New(t, ramdBin, a.HTTPAddr, 1, harness.Options{})
		b := bare.Nodes[0]
		b.Start()
		testenv.Eventually(t, 30*time.Second, 200*time.Millisecond, func() error {
			log, _ := os.ReadFile(b.LogPath)
			if !strings.Contains(string(log), "permission denied by ACL") || !strings.Contains(string(log), "CONSUL_HTTP_TOKEN") {
				return errors.New("no clear ACL message in the log yet")
			}
			return nil
		})
		if b.PostmasterPID() != 0 {
			t.Error("a node refused by Consul's ACLs started PostgreSQL")
		}
		var initialize []any
		if err := getJSON(a.HTTPAddr, "/v1/kv/service/"+bare.Scope+"/initialize", a.Token, &initialize); !errors.Is(err, consul.ErrNotFound) {
			t.Errorf("initialize key of the refused node: %v", err)
		}
		if testing.Verbose() {
			log, _ := os.ReadFile(b.LogPath)
			t.Logf("refused node's log:\n%s", grepLines(string(log), "permission denied"))
		}
	})
}

// grepLines returns the lines of s containing sub (at most 5).
func grepLines(s, sub string) string {
	var out []string
	for _, l := range strings.Split(s, "\n") {
		if strings.Contains(l, sub) && len(out) < 5 {
			out = append(out, l)
		}
	}
	return strings.Join(out, "\n")
}
