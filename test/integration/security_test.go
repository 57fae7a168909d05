package integration

import (
	"context"
	cryptorand "crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/user"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/hashicorp/consul/api"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/ramd-project/ramd/daemon/pg"
	"github.com/ramd-project/ramd/routing"
	"github.com/ramd-project/ramd/test/harness"
	"github.com/ramd-project/ramd/test/testenv"
)

// getBody fetches url and returns its body ("" on error).
func getBody(t *testing.T, url string) string {
	t.Helper()
	resp, err := (&http.Client{Timeout: 10 * time.Second}).Get(url)
	if err != nil {
		t.Logf("GET %s: %v", url, err)
		return ""
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return string(b)
}

// checkHBA asserts that a member's pg_hba.conf accepts no connection without a password
// except the peer lines of the unix socket, and asks for scram-sha-256 on every TCP line.
func checkHBA(t *testing.T, n *harness.Node) {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(n.DataDir, "pg_hba.conf"))
	if err != nil {
		t.Fatalf("%s: %v", n.Name, err)
	}
	tcp := 0
	for _, l := range strings.Split(string(b), "\n") {
		f := strings.Fields(l)
		if len(f) == 0 || strings.HasPrefix(f[0], "#") {
			continue
		}
		switch {
		case strings.Contains(l, "trust"):
			t.Errorf("%s: pg_hba.conf line %q trusts", n.Name, l)
		case strings.HasPrefix(f[0], "host"):
			tcp++
			if f[len(f)-1] != "scram-sha-256" {
				t.Errorf("%s: TCP line %q does not ask for scram-sha-256", n.Name, l)
			}
		case f[0] == "local" && strings.HasPrefix(f[len(f)-2], "peer") && f[2] != "postgres":
			t.Errorf("%s: peer line %q for another role than the superuser", n.Name, l)
		}
	}
	if tcp == 0 {
		t.Errorf("%s: pg_hba.conf has no TCP line:\n%s", n.Name, b)
	}
}

// TestSecretsNeverWritten runs a cluster whose passwords and API token come from files
// (RAMD_*_FILE), with a network beyond loopback allowed, through a switchover (the old
// primary rejoins with pg_rewind as the superuser), authenticated API calls and refused
// ones; then it greps everything ramd wrote or published for the secrets: the ramd and
// PostgreSQL logs, every Consul key of the cluster, the agent's services and checks, and the
// API's documents. None may appear. Every member's pg_hba.conf has scram-sha-256 on every
// TCP line, and PostgreSQL refuses a wrong or missing password.
func TestSecretsNeverWritten(t *testing.T) {
	t.Parallel()
	addr := needReal(t)
	dir := t.TempDir()
	secrets := map[string]string{}
	env := map[string]string{
		"RAMD_API_USERNAME": "admin",
		"RAMD_PG_HBA_ALLOW": "127.0.0.0/8,10.255.255.0/24",
		"RAMD_LOG_LEVEL":    "debug",
	}
	for _, v := range []string{"RAMD_PG_SUPERUSER_PASSWORD", "RAMD_PG_REPLICATION_PASSWORD", "RAMD_API_PASSWORD", "RAMD_API_TOKEN"} {
		s := "S3cr3t" + cryptorand.Text()
		p := filepath.Join(dir, strings.ToLower(v))
		if err := os.WriteFile(p, []byte(s+"\n"), 0o600); err != nil {
			t.Fatal(err)
		}
		secrets[v], env[v+"_FILE"] = s, p
	}
	c := harness.New(t, ramdBin, addr, 2, harness.Options{Env: env})
	c.StartAll()
	p := c.WaitPrimary(120 * time.Second)
	c.WaitReplicas(120 * time.Second)
	r := c.Other(p)

	// The API: a wrong password and no credentials are refused, the token works.
	body := fmt.Sprintf(`{"leader":%q,"candidate":%q}`, p.Name, r.Name)
	if code, _ := request(t, http.MethodPost, p.APIURL()+"/switchover", body); code != http.StatusUnauthorized {
		t.Fatalf("switchover without credentials: %d, want 401", code)
	}
	if code, _ := request(t, http.MethodPost, p.APIURL()+"/switchover", body, "Authorization", "Bearer wrong"); code != http.StatusUnauthorized {
		t.Fatalf("switchover with a wrong token: %d, want 401", code)
	}
	if code, b := request(t, http.MethodPost, p.APIURL()+"/switchover", body, "Authorization", "Bearer "+secrets["RAMD_API_TOKEN"]); code != http.StatusOK {
		t.Fatalf("switchover with the token: %d %s", code, b)
	}
	if now := c.WaitPrimary(60 * time.Second); now != r {
		t.Fatalf("primary is %s after a switchover to %s", now.Name, r.Name)
	}
	c.WaitReplicas(120 * time.Second)

	// PostgreSQL: the superuser with a wrong password, and the replication role without
	// one, are refused over TCP.
	for name, dsn := range map[string]string{
		"wrong superuser password": harness.SuperuserDSN(r.PGPort, "wrong"),
		"no replication password":  fmt.Sprintf("host=127.0.0.1 port=%d user=replicator dbname=postgres sslmode=disable connect_timeout=2", r.PGPort),
	} {
		ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
		conn, err := pgx.Connect(ctx, dsn)
		cancel()
		if err == nil {
			_ = conn.Close(context.Background())
		}
		var pgErr *pgconn.PgError
		if !errors.As(err, &pgErr) || pgErr.Code != "28P01" {
			t.Errorf("%s: %v; want SQLSTATE 28P01", name, err)
		}
	}

	// What ramd published and answers.
	var published strings.Builder
	for _, n := range c.Nodes {
		checkHBA(t, n)
		for _, path := range []string{"/patroni", "/cluster", "/config", "/api/v1/cluster", "/history", "/api/v1/jobs"} {
			published.WriteString(getBody(t, n.APIURL()+path))
		}
		published.WriteString(getBody(t, fmt.Sprintf("%s/metrics", n.APIURL())))
	}
	published.WriteString(getBody(t, "http://"+addr+"/v1/kv/service/"+c.Scope+"/?recurse"))
	published.WriteString(getBody(t, "http://"+addr+"/v1/agent/services"))
	published.WriteString(getBody(t, "http://"+addr+"/v1/agent/checks"))
	published.WriteString(getBody(t, "http://"+addr+"/v1/catalog/service/"+c.Scope))
	// The KV values are base64: decode them too.
	var kvs []struct {
		Key   string
		Value []byte
	}
	if err := json.Unmarshal([]byte(getBody(t, "http://"+addr+"/v1/kv/service/"+c.Scope+"/?recurse")), &kvs); err != nil || len(kvs) < 4 {
		t.Fatalf("cluster keys: %d, %v", len(kvs), err)
	}
	for _, kv := range kvs {
		published.Write(kv.Value)
	}

	// Stop the nodes so their logs are complete, then read every log.
	for _, n := range c.Nodes {
		if err := n.Stop(); err != nil {
			t.Error(err)
		}
	}
	var logs strings.Builder
	for _, n := range c.Nodes {
		for _, f := range []string{n.LogPath, n.DataDir + ".log"} {
			b, err := os.ReadFile(f)
			if err != nil {
				t.Fatalf("%s: %v", n.Name, err)
			}
			logs.Write(b)
		}
	}
	if logs.Len() < 10000 || !strings.Contains(logs.String(), "switchover") {
		t.Fatalf("only %d bytes of logs, or no switchover in them", logs.Len())
	}
	for v, s := range secrets {
		if strings.Contains(logs.String(), s) {
			t.Errorf("the value of %s appears in the logs", v)
		}
		if strings.Contains(published.String(), s) {
			t.Errorf("the value of %s appears in Consul or in the API's answers", v)
		}
	}
	// The one place the replication password must be: the standby's primary_conninfo, in
	// ramd.conf, readable by PostgreSQL's account only (this also shows the grep finds a
	// secret where one is).
	conf := filepath.Join(p.DataDir, "ramd.conf")
	b, err := os.ReadFile(conf)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(b), secrets["RAMD_PG_REPLICATION_PASSWORD"]) {
		t.Errorf("%s's primary_conninfo lacks the replication password", p.Name)
	}
	if st, err := os.Stat(conf); err != nil || st.Mode().Perm() != 0o600 {
		t.Errorf("%s: mode %v (%v), want 0600", conf, st.Mode(), err)
	}
	t.Logf("grepped %d bytes of logs and %d bytes of Consul records and API answers for %d secrets", logs.Len(), published.Len(), len(secrets))
}

// TestCorruptedRecordsIgnored writes garbage into every Consul record ramd reads but the
// leader key (sync, failover, history, status, initialize, a member record, a stranger's
// member record, a job, the backup queue and schedules): no ramd crashes, the primary stays
// primary on its timeline and keeps taking writes, and the members publish valid records
// again.
func TestCorruptedRecordsIgnored(t *testing.T) {
	t.Parallel()
	addr := needReal(t)
	c := harness.New(t, ramdBin, addr, 2, harness.Options{})
	c.StartAll()
	p := c.WaitPrimary(120 * time.Second)
	c.WaitReplicas(120 * time.Second)
	tl := timeline(t, p)
	r := c.Other(p)
	prefix := "service/" + c.Scope + "/"
	sysID := getBody(t, "http://"+addr+"/v1/kv/"+prefix+"initialize?raw")
	if _, err := strconv.ParseUint(sysID, 10, 64); err != nil {
		t.Fatalf("initialize = %q: %v", sysID, err)
	}
	garbage := []string{`{"`, `[[1,"x"`, "\x00\xff", `{"optime":"high","ttl_ms":-5}`, `[]`, `null`, `{"jobs":"x"}`, `{"fired":{"full":1}}`}
	keys := []string{"sync", "failover", "history", "status", "initialize", "members/" + r.Name, "members/ghost",
		"ramd/jobs/junk", "ramd/backup/queue", "ramd/backup/schedules"}
	for i, k := range keys {
		for j := range 3 {
			putKV(t, addr, prefix+k, garbage[(i+j)%len(garbage)])
		}
	}
	// The replica publishes a valid record again (it rewrites it every cycle)...
	testenv.Eventually(t, 30*time.Second, 200*time.Millisecond, func() error {
		var m map[string]any
		if err := json.Unmarshal([]byte(getBody(t, "http://"+addr+"/v1/kv/"+prefix+"members/"+r.Name+"?raw")), &m); err != nil {
			return fmt.Errorf("member record of %s: %w", r.Name, err)
		}
		if m["state"] != "running" {
			return fmt.Errorf("member record of %s: state %v", r.Name, m["state"])
		}
		// ...and the leader writes the cluster's system identifier over the garbage.
		if v := getBody(t, "http://"+addr+"/v1/kv/"+prefix+"initialize?raw"); v != sysID {
			return fmt.Errorf("initialize holds %q, want %s", v, sysID)
		}
		return nil
	})
	// Each corrupted record was reported, without its content.
	testenv.Eventually(t, 30*time.Second, 200*time.Millisecond, func() error {
		if ev := c.LogEvents("does not decode"); len(ev) < 2 {
			return fmt.Errorf("%d reports of corrupted records", len(ev))
		}
		return nil
	})
	for _, l := range c.LogEvents("does not decode") {
		// The field a decode failed at may be named; the values written ("high", the bytes)
		// must not appear.
		if strings.Contains(l, "high") || strings.Contains(l, `\x00`) || strings.Contains(l, `\xff`) {
			t.Errorf("a report shows the record: %s", l)
		}
	}
	// ...and after those cycles nothing moved.
	for _, n := range c.Nodes {
		if !n.Running() {
			t.Fatalf("%s exited (code %d)", n.Name, n.ExitCode())
		}
	}
	if now := c.WaitPrimary(30 * time.Second); now != p {
		t.Fatalf("primary moved from %s to %s", p.Name, now.Name)
	}
	if got := timeline(t, p); got != tl {
		t.Fatalf("timeline %d, was %d", got, tl)
	}
	c.WaitReplicas(60 * time.Second)
}

// TestPasswordRotation rotates both database passwords of a running cluster the documented
// way (docs/SECURITY.md): new password files on every member, SIGHUP to the leader's ramd,
// then to the replica's. The leader's roles take the new passwords, the old ones are
// refused, the replica rewrites primary_conninfo and, after its walsender is killed, streams
// again with the new replication password; ramd on both keeps reaching its own server.
func TestPasswordRotation(t *testing.T) {
	t.Parallel()
	addr := needReal(t)
	dir := t.TempDir()
	write := func(name, s string) string {
		t.Helper()
		p := filepath.Join(dir, name)
		// Replace atomically, as an operator's tooling should.
		if err := os.WriteFile(p+".new", []byte(s+"\n"), 0o600); err != nil {
			t.Fatal(err)
		}
		if err := os.Rename(p+".new", p); err != nil {
			t.Fatal(err)
		}
		return p
	}
	oldSU, oldRep := "su-"+cryptorand.Text(), "rep-"+cryptorand.Text()
	env := map[string]string{
		"RAMD_PG_SUPERUSER_PASSWORD_FILE":   write("su", oldSU),
		"RAMD_PG_REPLICATION_PASSWORD_FILE": write("rep", oldRep),
	}
	c := harness.New(t, ramdBin, addr, 2, harness.Options{Env: env})
	c.StartAll()
	p := c.WaitPrimary(120 * time.Second)
	c.WaitReplicas(120 * time.Second)
	r := c.Other(p)
	connects := func(port int, user, password string) error {
		ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
		defer cancel()
		conn, err := pgx.Connect(ctx, fmt.Sprintf("host=127.0.0.1 port=%d user=%s password='%s' dbname=postgres sslmode=disable connect_timeout=2", port, user, password))
		if err != nil {
			return err
		}
		return conn.Close(ctx)
	}

	newSU, newRep := "su2-"+cryptorand.Text(), "rep2-"+cryptorand.Text()
	write("su", newSU)
	write("rep", newRep)
	p.Signal(syscall.SIGHUP)
	testenv.Eventually(t, 30*time.Second, 200*time.Millisecond, func() error {
		if err := connects(p.PGPort, "postgres", newSU); err != nil {
			return fmt.Errorf("new superuser password on %s: %w", p.Name, err)
		}
		return connects(p.PGPort, "replicator", newRep)
	})
	for name, pw := range map[string][2]string{"old superuser password": {"postgres", oldSU}, "old replication password": {"replicator", oldRep}} {
		var pgErr *pgconn.PgError
		if err := connects(p.PGPort, pw[0], pw[1]); !errors.As(err, &pgErr) || pgErr.Code != "28P01" {
			t.Errorf("%s: %v; want 28P01", name, err)
		}
	}
	if !p.Running() || p.Health("/primary") != http.StatusOK {
		t.Fatalf("%s is no longer a running primary after the rotation", p.Name)
	}

	r.Signal(syscall.SIGHUP)
	testenv.Eventually(t, 30*time.Second, 200*time.Millisecond, func() error {
		b, err := os.ReadFile(filepath.Join(r.DataDir, "ramd.conf"))
		if err != nil {
			return err
		}
		if !strings.Contains(string(b), newRep) {
			return errors.New("primary_conninfo still has the old replication password")
		}
		return nil
	})
	// Force a reconnection: the walsender serving the replica is terminated; the replica
	// must stream again, authenticated with the new password.
	var killedAt time.Time
	testenv.Eventually(t, 30*time.Second, 200*time.Millisecond, func() error {
		killedAt = time.Now()
		n, err := p.QueryInt(t.Context(), "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_replication")
		if err != nil {
			return err
		}
		if n == 0 {
			return errors.New("no walsender to terminate")
		}
		return nil
	})
	testenv.Eventually(t, 60*time.Second, 200*time.Millisecond, func() error {
		n, err := p.QueryInt(t.Context(), "SELECT count(*) FROM pg_stat_replication WHERE state = 'streaming' AND backend_start > $1", killedAt.Add(-time.Second))
		if err != nil {
			return err
		}
		if n != 1 {
			return fmt.Errorf("%d walsenders started after the termination stream", n)
		}
		return nil
	})
	// The row written now reaches the replica, and ramd on the replica still reads its own
	// server (the superuser's new password came to it through replication).
	if err := p.Exec(t.Context(), "CREATE TABLE IF NOT EXISTS rotated (x int); INSERT INTO rotated VALUES (1)"); err != nil {
		t.Fatal(err)
	}
	testenv.Eventually(t, 30*time.Second, 200*time.Millisecond, func() error {
		n, err := r.QueryInt(t.Context(), "SELECT count(*) FROM rotated")
		if err != nil || n != 1 {
			return fmt.Errorf("rows on %s: %d, %w", r.Name, n, err)
		}
		return nil
	})
	c.WaitReplicas(60 * time.Second)
	if now, err := c.Primary(); err != nil || now != p {
		t.Fatalf("primary after the rotation: %v, %v", now, err)
	}
}

// writeTLSFiles makes a CA, a server certificate for 127.0.0.1 and localhost, and a client
// certificate for the replication role (common name "replicator") with crypto/x509, and
// writes ca.pem, server.pem, server.key, replicator.pem and replicator.key (0600, owned by
// the account PostgreSQL runs as) into a directory that account can reach.
func writeTLSFiles(t *testing.T) (dir string) {
	t.Helper()
	base := testenv.DataDir(t, "tls") // a parent PostgreSQL's account can traverse
	dir = filepath.Dir(base)
	ca := testenv.NewCA(t)
	serverCert, serverKey := ca.Server(t, "127.0.0.1")
	replCert, replKey := ca.Client(t, "replicator")
	writeOwnedFiles(t, dir, map[string][]byte{
		"ca.pem":         ca.PEM,
		"server.pem":     serverCert,
		"server.key":     serverKey,
		"replicator.pem": replCert,
		"replicator.key": replKey,
	})
	return dir
}

// checkTLSPublished checks that every member says TLS is required where clients look: the
// conn_url of its member record and the tls meta of its Consul service instance.
func checkTLSPublished(t *testing.T, addr string, c *harness.Cluster) {
	t.Helper()
	prefix := "service/" + c.Scope + "/"
	testenv.Eventually(t, 30*time.Second, 200*time.Millisecond, func() error {
		for _, n := range c.Nodes {
			var m struct {
				ConnURL string `json:"conn_url"`
			}
			if err := json.Unmarshal([]byte(getBody(t, "http://"+addr+"/v1/kv/"+prefix+"members/"+n.Name+"?raw")), &m); err != nil {
				return fmt.Errorf("member record of %s: %w", n.Name, err)
			}
			if want := fmt.Sprintf("postgres://127.0.0.1:%d/postgres?sslmode=require", n.PGPort); m.ConnURL != want {
				return fmt.Errorf("conn_url of %s: %q, want %q", n.Name, m.ConnURL, want)
			}
		}
		var entries []api.ServiceEntry
		if err := getJSON(addr, "/v1/health/service/"+routing.SanitizeName(c.Scope), "", &entries); err != nil {
			return err
		}
		if len(entries) != len(c.Nodes) {
			return fmt.Errorf("%d service instances, want %d", len(entries), len(c.Nodes))
		}
		for _, e := range entries {
			if got := e.Service.Meta[routing.MetaTLS]; got != routing.TLSRequired {
				return fmt.Errorf("service meta tls of %s: %q, want %q", e.Service.ID, got, routing.TLSRequired)
			}
		}
		return nil
	})
}

// switchover asks p to hand over to r and waits until r is primary and the replicas stream.
func switchover(t *testing.T, c *harness.Cluster, p, r *harness.Node) {
	t.Helper()
	code, body := request(t, http.MethodPost, p.APIURL()+"/switchover", fmt.Sprintf(`{"leader":%q,"candidate":%q}`, p.Name, r.Name))
	if code != http.StatusOK {
		t.Fatalf("switchover: %d %s", code, body)
	}
	if now := c.WaitPrimary(60 * time.Second); now != r {
		t.Fatalf("primary is %s after a switchover to %s", now.Name, r.Name)
	}
	c.WaitReplicas(120 * time.Second)
}

// waitStreamingByCert waits until primary p has one replica streaming as the replication
// role over TLS, authenticated by its client certificate (common name "replicator").
func waitStreamingByCert(t *testing.T, p *harness.Node) {
	t.Helper()
	testenv.Eventually(t, 30*time.Second, 200*time.Millisecond, func() error {
		n, err := p.QueryInt(t.Context(), `SELECT count(*) FROM pg_stat_replication r JOIN pg_stat_ssl s USING (pid)
			WHERE r.state = 'streaming' AND r.usename = 'replicator' AND s.ssl AND s.client_dn = '/CN=replicator'`)
		if err != nil || n != 1 {
			return fmt.Errorf("replicas of %s streaming with the replication certificate: %d, %w", p.Name, n, err)
		}
		return nil
	})
}

// TestReplicationClientCertAuth streams with the replication role authenticated by its client
// certificate (pg_hba method cert): the walsender's TLS session carries the certificate, the
// replication role's password alone is refused over TCP, and a new replica clones with it.
func TestReplicationClientCertAuth(t *testing.T) {
	t.Parallel()
	addr := needReal(t)
	dir := writeTLSFiles(t)
	c := harness.New(t, ramdBin, addr, 2, harness.Options{Env: map[string]string{
		"RAMD_PG_TLS_CERTFILE":             filepath.Join(dir, "server.pem"),
		"RAMD_PG_TLS_KEYFILE":              filepath.Join(dir, "server.key"),
		"RAMD_PG_TLS_CAFILE":               filepath.Join(dir, "ca.pem"),
		"RAMD_PG_TLS_REPLICATION_CERTFILE": filepath.Join(dir, "replicator.pem"),
		"RAMD_PG_TLS_REPLICATION_KEYFILE":  filepath.Join(dir, "replicator.key"),
	}})
	c.StartAll()
	p := c.WaitPrimary(120 * time.Second)
	c.WaitReplicas(120 * time.Second)
	waitStreamingByCert(t, p)
	for _, n := range c.Nodes {
		b, err := os.ReadFile(filepath.Join(n.DataDir, "pg_hba.conf"))
		if err != nil {
			t.Fatal(err)
		}
		found := false
		for _, l := range strings.Split(string(b), "\n") {
			f := strings.Fields(l)
			if len(f) == 5 && f[0] == "hostssl" && f[1] == "replication" && f[2] == "replicator" {
				found = true
				if f[4] != "cert" {
					t.Errorf("%s: the replication role's line %q does not ask for the certificate", n.Name, l)
				}
			}
		}
		if !found {
			t.Errorf("%s: no hostssl line for the replication role:\n%s", n.Name, b)
		}
	}
	// A physical replication connection of the replication role with its password but without
	// the certificate is refused (pgconn: no query after the start-up, as a walreceiver).
	_, replPW, err := pg.LoopbackPasswords() // the cluster runs on loopback without configured passwords
	if err != nil {
		t.Fatal(err)
	}
	dsn := fmt.Sprintf("host=127.0.0.1 port=%d user=replicator password='%s' replication=true sslmode=verify-ca sslrootcert='%s' connect_timeout=5",
		p.PGPort, replPW, filepath.Join(dir, "ca.pem"))
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	conn, err := pgconn.Connect(ctx, dsn)
	var pgErr *pgconn.PgError
	if err == nil {
		_ = conn.Close(ctx)
		t.Error("the replication role connected with its password and no certificate")
	} else if !errors.As(err, &pgErr) || pgErr.Code != "28000" {
		t.Errorf("the replication role without its certificate: %v; want SQLSTATE 28000", err)
	}
	// A switchover: the old primary rewinds (superuser, scram) and streams again by certificate.
	r := c.Other(p)
	switchover(t, c, p, r)
	waitStreamingByCert(t, r)
}

// TestPostgresTLS runs a cluster with RAMD_PG_TLS_*: replication runs over TLS 1.2 or later
// with verify-full, a client without TLS is refused even with the right password, one with
// verify-full against the CA is served over TLS, every member's pg_hba.conf has hostssl
// lines only, and a switchover (pg_rewind from the new leader over TLS) completes.
func TestPostgresTLS(t *testing.T) {
	t.Parallel()
	addr := needReal(t)
	dir := writeTLSFiles(t)
	c := harness.New(t, ramdBin, addr, 2, harness.Options{Env: map[string]string{
		"RAMD_PG_TLS_CERTFILE": filepath.Join(dir, "server.pem"),
		"RAMD_PG_TLS_KEYFILE":  filepath.Join(dir, "server.key"),
		"RAMD_PG_TLS_CAFILE":   filepath.Join(dir, "ca.pem"),
	}})
	c.StartAll()
	p := c.WaitPrimary(120 * time.Second)
	c.WaitReplicas(120 * time.Second)
	r := c.Other(p)
	checkTLS := func(primary *harness.Node) {
		t.Helper()
		testenv.Eventually(t, 30*time.Second, 200*time.Millisecond, func() error {
			n, err := primary.QueryInt(t.Context(), `SELECT count(*) FROM pg_stat_replication r JOIN pg_stat_ssl s USING (pid)
				WHERE r.state = 'streaming' AND s.ssl AND s.version IN ('TLSv1.2', 'TLSv1.3')`)
			if err != nil || n != 1 {
				return fmt.Errorf("replicas streaming over TLS from %s: %d, %w", primary.Name, n, err)
			}
			return nil
		})
		conninfo, err := primary.QueryString(t.Context(), "SELECT 1::text")
		if err != nil || conninfo != "1" {
			t.Fatalf("query over TLS: %q %v", conninfo, err)
		}
	}
	checkTLS(p)
	for _, n := range c.Nodes {
		checkHBA(t, n)
		b, _ := os.ReadFile(filepath.Join(n.DataDir, "pg_hba.conf"))
		for _, l := range strings.Split(string(b), "\n") {
			if f := strings.Fields(l); len(f) > 0 && f[0] == "host" {
				t.Errorf("%s: a host line accepts connections without TLS: %q", n.Name, l)
			}
		}
	}
	b, err := os.ReadFile(filepath.Join(r.DataDir, "ramd.conf"))
	if err != nil || !strings.Contains(string(b), "sslmode=''verify-full''") {
		t.Errorf("%s's primary_conninfo does not ask for verify-full: %v\n%s", r.Name, err, b)
	}
	checkTLSPublished(t, addr, c)

	pw, err := p.SuperuserPassword()
	if err != nil {
		t.Fatal(err)
	}
	connect := func(dsn string) (bool, error) {
		ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
		defer cancel()
		conn, err := pgx.Connect(ctx, dsn)
		if err != nil {
			return false, err
		}
		defer conn.Close(ctx)
		var ssl bool
		err = conn.QueryRow(ctx, "SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()").Scan(&ssl)
		return ssl, err
	}
	plain := harness.SuperuserDSN(p.PGPort, pw)
	var pgErr *pgconn.PgError
	if _, err := connect(plain); !errors.As(err, &pgErr) || pgErr.Code != "28000" {
		t.Errorf("a client without TLS: %v; want SQLSTATE 28000 (no pg_hba.conf entry)", err)
	}
	full := strings.Replace(plain, "sslmode=disable", "sslmode=verify-full sslrootcert='"+filepath.Join(dir, "ca.pem")+"'", 1)
	if ssl, err := connect(full); err != nil || !ssl {
		t.Errorf("a client with verify-full: ssl %v, %v", ssl, err)
	}

	switchover(t, c, p, r)
	checkTLS(r)
}

// TestConsulACLAndTLS runs a cluster against an agent with ACLs denying by default and an
// HTTPS listener that requires client certificates: every member talks to Consul over TLS
// only (CONSUL_HTTP_SSL, CONSUL_CACERT, CONSUL_CLIENT_CERT/KEY), with a token read from a
// file (CONSUL_HTTP_TOKEN_FILE) that holds exactly the documented policy. The cluster
// bootstraps, streams, publishes its services, switches over, and nothing is refused.
func TestConsulACLAndTLS(t *testing.T) {
	t.Parallel()
	needReal(t)
	dir := writeTLSFiles(t)
	ca := filepath.Join(dir, "ca.pem")
	a := testenv.StartConsul(t, testenv.ConsulOptions{ACLDefaultDeny: true, TLS: &testenv.ConsulTLS{
		CAFile: ca, CertFile: filepath.Join(dir, "server.pem"), KeyFile: filepath.Join(dir, "server.key"), VerifyIncoming: true,
	}})
	mgmt, err := api.NewClient(&api.Config{Address: a.HTTPAddr, Token: a.Token})
	if err != nil {
		t.Fatal(err)
	}
	env := map[string]string{ // filled below, read when each node starts
		"CONSUL_HTTP_SSL":    "true",
		"CONSUL_CACERT":      ca,
		"CONSUL_CLIENT_CERT": filepath.Join(dir, "replicator.pem"),
		"CONSUL_CLIENT_KEY":  filepath.Join(dir, "replicator.key"),
	}
	c := harness.New(t, ramdBin, a.HTTPSAddr, 2, harness.Options{Env: env})
	svc := routing.SanitizeName(c.Scope)
	pol, _, err := mgmt.ACL().PolicyCreate(&api.ACLPolicy{Name: "ramd-" + svc, Rules: routing.ACLPolicy("service/"+c.Scope+"/", svc)}, nil)
	if err != nil {
		t.Fatal(err)
	}
	tok, _, err := mgmt.ACL().TokenCreate(&api.ACLToken{Policies: []*api.ACLTokenPolicyLink{{ID: pol.ID}}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	tokenFile := filepath.Join(c.Dir, "consul-token")
	if err := os.WriteFile(tokenFile, []byte(tok.SecretID+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	// The HTTPS listener refuses a client without a certificate: the members' TLS is real.
	hc := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{TLSClientConfig: caOnlyTLS(t, ca)}}
	if resp, err := hc.Get("https://" + a.HTTPSAddr + "/v1/agent/self"); err == nil {
		_ = resp.Body.Close()
		t.Fatalf("the agent's HTTPS listener answered a client without a certificate: %d", resp.StatusCode)
	}
	env["CONSUL_HTTP_TOKEN_FILE"] = tokenFile
	c.StartAll()
	p := c.WaitPrimary(120 * time.Second)
	c.WaitReplicas(120 * time.Second)
	r := c.Other(p)
	switchover(t, c, p, r)
	testenv.Eventually(t, 30*time.Second, 200*time.Millisecond, func() error {
		got, err := filtered(a.HTTPAddr, a.Token, svc, routing.FilterPrimary)
		if err != nil {
			return err
		}
		if !slices.Equal(got, []string{r.Name}) {
			return fmt.Errorf("passing primary instances %v, want [%s]", got, r.Name)
		}
		return nil
	})
	for _, n := range c.Nodes {
		b, _ := os.ReadFile(n.LogPath)
		for _, bad := range []string{"permission denied", "certificate", "tls:"} {
			if strings.Contains(string(b), bad) {
				t.Errorf("%s's log mentions %q:\n%s", n.Name, bad, grepLines(string(b), bad))
			}
		}
		if strings.Contains(string(b), tok.SecretID) {
			t.Errorf("%s's log holds the Consul token", n.Name)
		}
	}
}

// caOnlyTLS trusts the CA file and presents no client certificate.
func caOnlyTLS(t *testing.T, caFile string) *tls.Config {
	t.Helper()
	b, err := os.ReadFile(caFile)
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(b) {
		t.Fatal("no certificate in the CA file")
	}
	return &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}
}

// TestAPITokenReloadOnSIGHUP replaces RAMD_API_TOKEN_FILE under a running ramd: after a
// SIGHUP the old token is refused and the new one accepted, without a restart (same pid).
func TestAPITokenReloadOnSIGHUP(t *testing.T) {
	t.Parallel()
	addr := needReal(t)
	tokenFile := filepath.Join(t.TempDir(), "api-token")
	if err := os.WriteFile(tokenFile, []byte("first-token\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	c := harness.New(t, ramdBin, addr, 1, harness.Options{Env: map[string]string{"RAMD_API_TOKEN_FILE": tokenFile}})
	n := c.Nodes[0]
	n.Start()
	c.WaitPrimary(120 * time.Second)
	pid := n.PID()
	reload := func(token string) int {
		code, _ := request(t, http.MethodPost, n.APIURL()+"/reload", "", "Authorization", "Bearer "+token)
		return code
	}
	if code := reload("first-token"); code != http.StatusOK && code != http.StatusAccepted {
		t.Fatalf("POST /reload with the token: %d", code)
	}
	if err := os.WriteFile(tokenFile+".new", []byte("second-token\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tokenFile+".new", tokenFile); err != nil {
		t.Fatal(err)
	}
	n.Signal(syscall.SIGHUP)
	testenv.Eventually(t, 20*time.Second, 100*time.Millisecond, func() error {
		if code := reload("first-token"); code != http.StatusUnauthorized {
			return fmt.Errorf("old token after SIGHUP: %d, want 401", code)
		}
		return nil
	})
	if code := reload("second-token"); code != http.StatusOK && code != http.StatusAccepted {
		t.Errorf("new token after SIGHUP: %d", code)
	}
	if n.PID() != pid {
		t.Errorf("ramd restarted: pid %d, was %d", n.PID(), pid)
	}
	b, _ := os.ReadFile(n.LogPath)
	if !strings.Contains(string(b), "the API's credentials and TLS files read again") {
		t.Errorf("no reload line in the log:\n%s", grepLines(string(b), "SIGHUP"))
	}
	if strings.Contains(string(b), "second-token") || strings.Contains(string(b), "first-token") {
		t.Error("the log holds an API token")
	}
}

// writeOwnedFiles writes each file into dir (mode 0600), owned by PostgreSQL's account when
// the tests run as root, so the servers ramd starts as that account can read them.
func writeOwnedFiles(t *testing.T, dir string, files map[string][]byte) {
	t.Helper()
	uid, gid := -1, -1
	if os.Geteuid() == 0 {
		u, err := user.Lookup("postgres")
		if err != nil {
			t.Fatal(err)
		}
		uid, _ = strconv.Atoi(u.Uid)
		gid, _ = strconv.Atoi(u.Gid)
	}
	for name, b := range files {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, b, 0o600); err != nil {
			t.Fatal(err)
		}
		if uid >= 0 {
			if err := os.Chown(p, uid, gid); err != nil {
				t.Fatal(err)
			}
		}
	}
}
