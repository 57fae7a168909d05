package api

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"testing"
	"time"

	capi "github.com/hashicorp/consul/api"

	"github.com/ramd-project/ramd/consul"
	"github.com/ramd-project/ramd/daemon"
	"github.com/ramd-project/ramd/daemon/pg"
	"github.com/ramd-project/ramd/test/testenv"
)

// sharedConsul is the one agent of this package's tests that need Consul; each test keeps to
// its own testenv.KeyPrefix namespace.
var sharedConsul *testenv.Consul

func TestMain(m *testing.M) {
	c, stop, err := testenv.StartConsulMain(testenv.ConsulOptions{})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	sharedConsul = c
	code := m.Run()
	stop()
	os.Exit(code)
}

// kvSnapshot is every key under prefix with its value and modify index.
func kvSnapshot(t *testing.T, kv *capi.KV, prefix string) map[string]string {
	t.Helper()
	pairs, _, err := kv.List(prefix, &capi.QueryOptions{RequireConsistent: true})
	if err != nil {
		t.Fatalf("list %s: %v", prefix, err)
	}
	out := map[string]string{}
	for _, p := range pairs {
		out[p.Key] = fmt.Sprintf("%d %s", p.ModifyIndex, p.Value)
	}
	return out
}

func diffKV(before, after map[string]string) []string {
	var d []string
	for k, v := range before {
		if w, ok := after[k]; !ok {
			d = append(d, "removed "+k)
		} else if w != v {
			d = append(d, "changed "+k)
		}
	}
	for k := range after {
		if _, ok := before[k]; !ok {
			d = append(d, "added "+k)
		}
	}
	return d
}

// TestRefusedRequestsChangeNothing sends every kind of bad request to a router backed by a
// real node agent on a real Consul agent, seeded as a two-member cluster led by n1, and
// checks the documented 4xx/5xx answer and that no key under the cluster's prefix changed.
func TestRefusedRequestsChangeNothing(t *testing.T) {
	t.Parallel()
	agent := testenv.SharedConsul(t, sharedConsul)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	logger := slog.New(slog.DiscardHandler)
	client, err := consul.New(consul.Config{Addr: agent.HTTPAddr, Token: agent.Token, Timeout: 5 * time.Second}, logger)
	if err != nil {
		t.Fatal(err)
	}
	ns, scope := testenv.KeyPrefix(t), "pg"
	store := client.Store(ns, scope)
	session, err := client.CreateSession(ctx, consul.SessionOptions{Name: "test-leader", TTL: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = client.DestroySession(context.Background(), session) })
	if err := store.Acquire(ctx, consul.KeyLeader, []byte("n1"), session); err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"n1", "n2"} {
		b, _ := json.Marshal(consul.Member{ConnURL: "postgres://127.0.0.1:1/postgres", APIURL: "http://127.0.0.1:1", State: "running", Role: "replica"})
		if err := store.Put(ctx, consul.MemberKey(name), b); err != nil {
			t.Fatal(err)
		}
	}
	if err := store.Put(ctx, consul.KeyConfig, []byte(`{"ttl":3,"loop_wait":1}`)); err != nil {
		t.Fatal(err)
	}
	inst, err := pg.New(pg.Config{DataDir: t.TempDir(), BinDir: testenv.PGBinDir(t)}, logger)
	if err != nil {
		t.Fatal(err)
	}
	node := daemon.New(daemon.Config{Scope: scope, Namespace: ns, Name: "n2", TTL: 3 * time.Second, LoopWait: time.Second,
		RetryTimeout: time.Second, FenceMargin: time.Second}, inst, client, nil, nil, logger)
	r := NewRouter(node, nil, nil, nil, WithAuth(Auth{Username: "admin", Password: "secret"}))

	raw, err := capi.NewClient(&capi.Config{Address: agent.HTTPAddr, Token: agent.Token})
	if err != nil {
		t.Fatal(err)
	}
	prefix := store.Prefix()
	good := "Basic " + base64.StdEncoding.EncodeToString([]byte("admin:secret"))
	wrong := "Basic " + base64.StdEncoding.EncodeToString([]byte("admin:guess"))
	past := time.Now().Add(-time.Hour).UTC().Format(time.RFC3339)

	tests := []struct {
		name, method, path, auth, body string
		header                         [2]string
		want                           int
	}{
		{"no credentials", "POST", "/switchover", "", `{"leader":"n1","candidate":"n2"}`, [2]string{}, 401},
		{"wrong password", "POST", "/switchover", wrong, `{"leader":"n1","candidate":"n2"}`, [2]string{}, 401},
		{"wrong token", "POST", "/api/v1/switchover", "Bearer nope", `{"leader":"n1"}`, [2]string{}, 401},
		{"malformed JSON", "POST", "/switchover", good, `{"leader":`, [2]string{}, 400},
		{"switchover to self", "POST", "/switchover", good, `{"leader":"n1","candidate":"n1"}`, [2]string{}, 400},
		{"unknown member", "POST", "/switchover", good, `{"leader":"n1","candidate":"ghost"}`, [2]string{}, 412},
		{"not the leader", "POST", "/switchover", good, `{"leader":"n2","candidate":"n1"}`, [2]string{}, 412},
		{"past schedule", "POST", "/switchover", good, `{"leader":"n1","candidate":"n2","scheduled_at":"` + past + `"}`, [2]string{}, 422},
		{"failover without candidate", "POST", "/failover", good, `{}`, [2]string{}, 400},
		{"v1 unknown field", "POST", "/api/v1/switchover", good, `{"leader":"n1","bogus":1}`, [2]string{}, 400},
		{"v1 wrong type", "POST", "/api/v1/switchover", good, `{"leader":1}`, [2]string{}, 400},
		{"v1 unknown member", "POST", "/api/v1/failover", good, `{"candidate":"ghost"}`, [2]string{}, 412},
		{"v1 past schedule", "POST", "/api/v1/switchover", good, `{"leader":"n1","scheduled_at":"` + past + `"}`, [2]string{}, 422},
		{"config bad value", "PATCH", "/config", good, `{"maximum_lag_on_failover":-1}`, [2]string{}, 400},
		{"config bad type", "PATCH", "/api/v1/config", good, `{"pause":"yes"}`, [2]string{}, 400},
		{"config not an object", "PUT", "/config", good, `[1,2]`, [2]string{}, 400},
		{"config stale If-Match", "PATCH", "/config", good, `{"pause":true}`, [2]string{"If-Match", `"1"`}, 409},
		{"config If-Match of no config", "PUT", "/config", good, `{"pause":true}`, [2]string{"If-Match", `"0"`}, 409},
		{"config bad If-Match", "PATCH", "/config", good, `{"pause":true}`, [2]string{"If-Match", `"abc"`}, 400},
		{"sync bad mode", "PUT", "/api/v1/sync-standbys", good, `{"synchronous_mode":"bogus"}`, [2]string{}, 400},
		{"sync unknown field", "PUT", "/api/v1/sync-standbys", good, `{"synchronous_nodes":2}`, [2]string{}, 400},
		{"restart past schedule", "POST", "/restart", good, `{"schedule":"` + past + `"}`, [2]string{}, 422},
		{"restart unknown filter", "POST", "/restart", good, `{"when":"now"}`, [2]string{}, 400},
		{"reinitialize before status", "POST", "/reinitialize", good, `{}`, [2]string{}, 503},
		{"cancel no switchover", "DELETE", "/switchover", good, ``, [2]string{}, 404},
		{"cancel no restart", "DELETE", "/restart", good, ``, [2]string{}, 404},
		{"rolling unknown field", "POST", "/api/v1/restart", good, `{"order":"random"}`, [2]string{}, 400},
		{"pause unauthenticated", "POST", "/api/v1/pause", "", ``, [2]string{}, 401},
		{"job unknown", "GET", "/api/v1/jobs/nope", "", ``, [2]string{}, 404},
		{"job bad wait", "GET", "/api/v1/jobs/nope?wait=maybe", "", ``, [2]string{}, 400},
	}
	before := kvSnapshot(t, raw.KV(), prefix)
	if len(before) < 4 {
		t.Fatalf("seeded %d keys, want at least 4: %v", len(before), before)
	}
	for _, tt := range tests {
		req := httptest.NewRequest(tt.method, tt.path, strings.NewReader(tt.body)).WithContext(ctx)
		if tt.auth != "" {
			req.Header.Set("Authorization", tt.auth)
		}
		if tt.header[0] != "" {
			req.Header.Set(tt.header[0], tt.header[1])
		}
		rec := httptest.NewRecorder()
		r.ServeHTTP(rec, req)
		if rec.Code != tt.want {
			t.Errorf("%s: %s %s answered %d, want %d: %s", tt.name, tt.method, tt.path, rec.Code, tt.want, rec.Body)
		}
		if d := diffKV(before, kvSnapshot(t, raw.KV(), prefix)); len(d) > 0 {
			t.Fatalf("%s: the refused request changed Consul: %v", tt.name, d)
		}
	}

	// The same check sees an accepted request: a valid switchover records its job and the
	// failover key.
	req := httptest.NewRequest("POST", "/api/v1/switchover", strings.NewReader(`{"leader":"n1","candidate":"n2"}`)).WithContext(ctx)
	req.Header.Set("Authorization", good)
	rec := httptest.NewRecorder()
	r.ServeHTTP(rec, req)
	if rec.Code != http.StatusAccepted {
		t.Fatalf("valid switchover: %d %s", rec.Code, rec.Body)
	}
	d := diffKV(before, kvSnapshot(t, raw.KV(), prefix))
	if len(d) != 2 {
		t.Fatalf("a valid switchover should add the failover key and a job, changes: %v", d)
	}
	// A second request while it is pending is refused and changes nothing more.
	mid := kvSnapshot(t, raw.KV(), prefix)
	req = httptest.NewRequest("POST", "/api/v1/switchover", strings.NewReader(`{"leader":"n1","candidate":"n2"}`)).WithContext(ctx)
	req.Header.Set("Authorization", good)
	rec = httptest.NewRecorder()
	r.ServeHTTP(rec, req)
	if rec.Code != http.StatusConflict {
		t.Fatalf("second switchover: %d %s, want 409", rec.Code, rec.Body)
	}
	if d := diffKV(mid, kvSnapshot(t, raw.KV(), prefix)); len(d) > 0 {
		t.Fatalf("the refused second switchover changed Consul: %v", d)
	}
}
