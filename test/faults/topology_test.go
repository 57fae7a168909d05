package faults

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"testing"
	"time"

	"github.com/ramd-project/ramd/test/harness"
	"github.com/ramd-project/ramd/test/history"
	"github.com/ramd-project/ramd/test/testenv"
)

// topology is the production shape in namespaces: servers s1..s3 run only Consul; hosts
// h1..h3 each run a Consul client agent, ramd and PostgreSQL, as on real machines. The
// servers are on hosts of their own so that losing a database host never costs a Consul
// server (the layout Consul recommends and most production deployments use), and so that
// a Consul server can be killed or cut without touching a database host.
type topology struct {
	net     *testenv.Net
	servers []*testenv.Host
	hosts   map[string]*testenv.Host // by node name
	consul  *testenv.ConsulNet
	cluster *harness.Cluster
	sync    bool
}

const (
	// password is the superuser's and replicator's password on the test network; the
	// hosts talk over addresses that are not loopback, which requires passwords.
	password = "faults-test-password"
	// The bounded waits of the scenarios: a cluster's first start (initdb and two clones)
	// takes 10-40 s on a loaded two-core machine.
	startTimeout = 180 * time.Second
)

// newTopology builds the network, the Consul datacenter and a three-node ramd cluster
// with default timings, synchronous or not.
func newTopology(t *testing.T, syncMode bool) *topology {
	t.Helper()
	n := testenv.NewNet(t)
	testenv.PGBinDir(t)
	tp := &topology{net: n, hosts: map[string]*testenv.Host{}, sync: syncMode}
	for i := 1; i <= 3; i++ {
		tp.servers = append(tp.servers, n.AddHost(fmt.Sprintf("s%d", i)))
	}
	var hosts []*testenv.Host
	for i := 1; i <= 3; i++ {
		h := n.AddHost(fmt.Sprintf("h%d", i))
		tp.hosts[fmt.Sprintf("n%d", i)] = h
		hosts = append(hosts, h)
	}
	tp.consul = testenv.StartConsulNet(t, tp.servers, hosts)
	mode := "off"
	if syncMode {
		mode = "on"
	}
	tp.cluster = harness.New(t, ramdBin, "127.0.0.1:8500", 3, harness.Options{
		Env: map[string]string{
			// Each host's ramd talks to its own client agent on the namespace's loopback.
			"CONSUL_HTTP_ADDR":             "127.0.0.1:8500",
			"RAMD_PG_HBA_ALLOW":            "127.0.0.1/32," + n.Subnet,
			"RAMD_PG_SUPERUSER_PASSWORD":   password,
			"RAMD_PG_REPLICATION_PASSWORD": password,
			"RAMD_SYNCHRONOUS_MODE":        mode,
			// A stalled primary is replaced after stallLimit (stall_test.go), not the
			// default 30 s, to keep the suite short.
			"RAMD_POSTGRES_UNRESPONSIVE_TIMEOUT": stallLimit.String(),
			// RAMD_FAULTS_TTL and its companions try other timings than the defaults on the
			// whole suite (the defaults when unset).
			"RAMD_TTL":           os.Getenv("RAMD_FAULTS_TTL"),
			"RAMD_LOOP_WAIT":     os.Getenv("RAMD_FAULTS_LOOP_WAIT"),
			"RAMD_RETRY_TIMEOUT": os.Getenv("RAMD_FAULTS_RETRY_TIMEOUT"),
			"RAMD_FENCE_MARGIN":  os.Getenv("RAMD_FAULTS_FENCE_MARGIN"),
		},
		NodeHost: tp.hosts,
	})
	tp.cluster.Node("n1").Start()
	tp.cluster.WaitPrimary(startTimeout)
	tp.cluster.Node("n2").Start()
	tp.cluster.Node("n3").Start()
	tp.cluster.WaitReplicas(startTimeout)
	p := tp.cluster.WaitPrimary(startTimeout)
	if err := p.Exec(t.Context(), "CREATE TABLE IF NOT EXISTS fault_writes (id bigint PRIMARY KEY, node text)"); err != nil {
		t.Fatalf("create table: %v", err)
	}
	return tp
}

// hostOf returns the host a node runs on.
func (tp *topology) hostOf(n *harness.Node) *testenv.Host { return tp.hosts[n.Name] }

// present reads every id in the table of node n.
func present(ctx context.Context, n *harness.Node) (map[int64]bool, error) {
	ctx, cancel := context.WithTimeout(ctx, 20*time.Second)
	defer cancel()
	conn, err := n.Conn(ctx)
	if err != nil {
		return nil, fmt.Errorf("connect to %s: %w", n.Name, err)
	}
	defer func() { _ = conn.Close(context.Background()) }()
	rows, err := conn.Query(ctx, "SELECT id FROM fault_writes")
	if err != nil {
		return nil, fmt.Errorf("read writes on %s: %w", n.Name, err)
	}
	defer rows.Close()
	have := map[int64]bool{}
	for rows.Next() {
		var id int64
		if err := rows.Scan(&id); err != nil {
			return nil, fmt.Errorf("scan on %s: %w", n.Name, err)
		}
		have[id] = true
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("read writes on %s: %w", n.Name, err)
	}
	return have, nil
}

// historyKey reads the cluster's history key from a Consul server.
func (tp *topology) historyKey(ctx context.Context) ([]history.HistoryEntry, error) {
	var srv *testenv.Consul
	for _, s := range tp.consul.Servers {
		if s.PID() != 0 {
			srv = s
			break
		}
	}
	if srv == nil {
		return nil, fmt.Errorf("no consul server running")
	}
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	url := fmt.Sprintf("http://%s/v1/kv/service/%s/history?raw", srv.HTTPAddr, tp.cluster.Scope)
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return nil, fmt.Errorf("history key request: %w", err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, fmt.Errorf("read history key: %w", err)
	}
	defer func() { _ = resp.Body.Close() }()
	if resp.StatusCode == http.StatusNotFound {
		return []history.HistoryEntry{}, nil
	}
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("read history key: status %d", resp.StatusCode)
	}
	var raw [][]any
	if err := json.NewDecoder(resp.Body).Decode(&raw); err != nil {
		return nil, fmt.Errorf("decode history key: %w", err)
	}
	out := []history.HistoryEntry{}
	for _, e := range raw {
		var h history.HistoryEntry
		if len(e) > 0 {
			if f, ok := e[0].(float64); ok {
				h.Timeline = int(f)
			}
		}
		if len(e) > 4 {
			h.NewLeader, _ = e[4].(string)
		}
		out = append(out, h)
	}
	return out, nil
}
