package integration

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/miekg/dns"

	"github.com/ramd-project/ramd/test/harness"
	"github.com/ramd-project/ramd/test/testenv"
)

// kv reads the cluster's keys from the agent with plain HTTP: key -> (value, session).
func kv(t *testing.T, addr, prefix string) map[string][2]string {
	t.Helper()
	resp, err := http.Get("http://" + addr + "/v1/kv/" + prefix + "?recurse")
	if err != nil {
		t.Fatalf("read kv: %v", err)
	}
	defer resp.Body.Close()
	out := map[string][2]string{}
	if resp.StatusCode == http.StatusNotFound {
		return out
	}
	var entries []struct {
		Key     string
		Value   string
		Session string
	}
	if err := json.NewDecoder(resp.Body).Decode(&entries); err != nil {
		t.Fatalf("decode kv: %v", err)
	}
	for _, e := range entries {
		v, _ := base64.StdEncoding.DecodeString(e.Value)
		out[strings.TrimPrefix(e.Key, prefix)] = [2]string{string(v), e.Session}
	}
	return out
}

func catalog(t *testing.T, addr, service string) []map[string]any {
	t.Helper()
	resp, err := http.Get("http://" + addr + "/v1/health/service/" + service)
	if err != nil {
		t.Fatalf("read catalog: %v", err)
	}
	defer resp.Body.Close()
	var out []map[string]any
	if err := json.NewDecoder(resp.Body).Decode(&out); err != nil {
		t.Fatalf("decode catalog: %v", err)
	}
	return out
}

func sessions(t *testing.T, addr string) []map[string]any {
	t.Helper()
	resp, err := http.Get("http://" + addr + "/v1/session/list")
	if err != nil {
		t.Fatalf("list sessions: %v", err)
	}
	defer resp.Body.Close()
	var out []map[string]any
	_ = json.NewDecoder(resp.Body).Decode(&out)
	return out
}

// dnsSRV asks the agent's DNS port for name's SRV records with a real DNS client.
func dnsSRV(dnsAddr, name string) ([]*dns.SRV, []net.IP, error) {
	m := new(dns.Msg)
	m.SetQuestion(dns.Fqdn(name), dns.TypeSRV)
	c := &dns.Client{Timeout: 2 * time.Second}
	r, _, err := c.Exchange(m, dnsAddr)
	if err != nil {
		return nil, nil, err
	}
	var srv []*dns.SRV
	var ips []net.IP
	for _, rr := range r.Answer {
		if s, ok := rr.(*dns.SRV); ok {
			srv = append(srv, s)
		}
	}
	for _, rr := range r.Extra {
		if a, ok := rr.(*dns.A); ok {
			ips = append(ips, a.A)
		}
	}
	return srv, ips, nil
}

// TestSingleNodeLifecycle: bootstrap writes the keys, registers the primary with a passing
// check, answers DNS, keeps data across a restart, restarts a crashed postmaster, and
// SIGTERM leaves nothing behind.
func TestSingleNodeLifecycle(t *testing.T) {
	t.Parallel()
	addr := needReal(t)
	c := harness.New(t, ramdBin, addr, 1, harness.Options{})
	n := c.Nodes[0]
	n.Start()
	c.WaitPrimary(90 * time.Second)
	prefix := "service/" + c.Scope + "/"

	testenv.Eventually(t, 10*time.Second, 100*time.Millisecond, func() error {
		keys := kv(t, addr, prefix)
		for _, k := range []string{"initialize", "leader", "members/n1"} {
			if _, ok := keys[k]; !ok {
				return fmt.Errorf("key %s missing; have %v", k, keys)
			}
		}
		if keys["leader"][0] != "n1" || keys["leader"][1] == "" {
			return fmt.Errorf("leader = %q session %q", keys["leader"][0], keys["leader"][1])
		}
		if _, err := strconv.ParseUint(keys["initialize"][0], 10, 64); err != nil {
			return fmt.Errorf("initialize %q is not a system identifier", keys["initialize"][0])
		}
		return nil
	})

	testenv.Eventually(t, 15*time.Second, 200*time.Millisecond, func() error {
		entries := catalog(t, addr, c.Scope)
		if len(entries) != 1 {
			return fmt.Errorf("%d catalog entries", len(entries))
		}
		svc := entries[0]["Service"].(map[string]any)
		tags := fmt.Sprint(svc["Tags"])
		if !strings.Contains(tags, "primary") {
			return fmt.Errorf("tags %s lack primary", tags)
		}
		for _, ch := range entries[0]["Checks"].([]any) {
			if st := ch.(map[string]any)["Status"]; st != "passing" {
				return fmt.Errorf("check %v is %v", ch.(map[string]any)["CheckID"], st)
			}
		}
		return nil
	})

	testenv.Eventually(t, 15*time.Second, 200*time.Millisecond, func() error {
		srv, ips, err := dnsSRV(shared.DNSAddr, "primary."+c.Scope+".service.consul")
		if err != nil {
			return err
		}
		if len(srv) != 1 || int(srv[0].Port) != n.PGPort {
			return fmt.Errorf("SRV answers %v, want port %d", srv, n.PGPort)
		}
		if len(ips) != 1 || !ips[0].Equal(net.ParseIP("127.0.0.1")) {
			return fmt.Errorf("A answers %v", ips)
		}
		return nil
	})

	ctx := context.Background()
	if err := n.Exec(ctx, "CREATE TABLE kept (v text); INSERT INTO kept VALUES ('before restart')"); err != nil {
		t.Fatal(err)
	}

	// A crashed postmaster under a live ramd is restarted in place.
	pm := n.PostmasterPID()
	if pm == 0 {
		t.Fatal("no postmaster pid")
	}
	if err := syscall.Kill(pm, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	testenv.Eventually(t, 60*time.Second, 100*time.Millisecond, func() error {
		if p := n.PostmasterPID(); p == 0 || p == pm {
			return fmt.Errorf("postmaster not restarted (pid %d)", p)
		}
		return n.Exec(ctx, "SELECT 1")
	})
	c.WaitPrimary(30 * time.Second)

	// A restart of ramd reuses the data directory.
	if err := n.Stop(); err != nil {
		t.Fatal(err)
	}
	n.Start()
	c.WaitPrimary(60 * time.Second)
	v, err := n.QueryInt(ctx, "SELECT count(*) FROM kept WHERE v = 'before restart'")
	if err != nil || v != 1 {
		t.Fatalf("row written before the restart: count %d, err %v", v, err)
	}

	// SIGTERM: no session, no leader key, no registration, no process.
	pm = n.PostmasterPID()
	if err := n.Stop(); err != nil {
		t.Fatal(err)
	}
	if code := n.ExitCode(); code != 0 {
		t.Errorf("ramd exit code %d after SIGTERM, want 0", code)
	}
	keys := kv(t, addr, prefix)
	if _, ok := keys["leader"]; ok {
		t.Errorf("leader key left behind: %v", keys["leader"])
	}
	if _, ok := keys["members/n1"]; ok {
		t.Errorf("member key left behind")
	}
	for _, s := range sessions(t, addr) {
		if strings.HasPrefix(fmt.Sprint(s["Name"]), c.Scope+"-") {
			t.Errorf("session left behind: %v", s["Name"])
		}
	}
	if entries := catalog(t, addr, c.Scope); len(entries) != 0 {
		t.Errorf("registration left behind: %d entries", len(entries))
	}
	if pm != 0 && syscall.Kill(pm, 0) == nil {
		t.Errorf("postmaster %d still running", pm)
	}
	if n.PostmasterPID() != 0 {
		t.Errorf("a postmaster runs for the data directory")
	}
}

// TestSecondNodeNeverBootstraps: two nodes started at once with empty data directories make
// one cluster: one system identifier, one initdb.
func TestSecondNodeNeverBootstraps(t *testing.T) {
	t.Parallel()
	addr := needReal(t)
	c := harness.New(t, ramdBin, addr, 2, harness.Options{})
	c.StartAll()
	c.WaitPrimary(90 * time.Second)
	c.WaitReplicas(90 * time.Second)
	ids := map[string]bool{}
	for _, n := range c.Nodes {
		d, err := n.Patroni()
		if err != nil {
			t.Fatal(err)
		}
		ids[d.SystemID] = true
	}
	keys := kv(t, addr, "service/"+c.Scope+"/")
	if len(ids) != 1 || !ids[keys["initialize"][0]] {
		t.Fatalf("system identifiers %v, initialize %q: want one cluster", ids, keys["initialize"][0])
	}
	logs := 0
	for _, n := range c.Nodes {
		b, _ := os.ReadFile(n.LogPath)
		if strings.Contains(string(b), "cluster bootstrapped") {
			logs++
		}
	}
	if logs != 1 {
		t.Fatalf("%d nodes bootstrapped a cluster, want 1", logs)
	}
}

// TestForeignDataDirRefused: a data directory of another cluster is refused and untouched.
func TestForeignDataDirRefused(t *testing.T) {
	t.Parallel()
	addr := needReal(t)
	other := harness.New(t, ramdBin, addr, 1, harness.Options{})
	other.Nodes[0].Start()
	other.WaitPrimary(90 * time.Second)
	if err := other.Nodes[0].Stop(); err != nil {
		t.Fatal(err)
	}
	foreign := other.Nodes[0].DataDir

	c := harness.New(t, ramdBin, addr, 2, harness.Options{})
	c.Nodes[0].Start()
	c.WaitPrimary(90 * time.Second)
	n2 := c.Nodes[1]
	n2.DataDir = foreign
	before, err := os.Stat(filepath.Join(foreign, "global", "pg_control"))
	if err != nil {
		t.Fatal(err)
	}
	n2.Start()
	testenv.Eventually(t, 30*time.Second, 200*time.Millisecond, func() error {
		b, _ := os.ReadFile(n2.LogPath)
		if !strings.Contains(string(b), "belongs to another cluster") {
			return fmt.Errorf("no refusal in the log yet")
		}
		return nil
	})
	if n2.PostmasterPID() != 0 {
		t.Fatal("postgres was started on a foreign data directory")
	}
	after, err := os.Stat(filepath.Join(foreign, "global", "pg_control"))
	if err != nil {
		t.Fatal(err)
	}
	if !after.ModTime().Equal(before.ModTime()) {
		t.Fatal("pg_control of the foreign data directory changed")
	}
	if d, err := n2.Patroni(); err == nil && d.Role == "primary" {
		t.Fatal("foreign node reports primary")
	}
}
