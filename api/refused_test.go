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

	"github.com/ramd-project/ramd/api/client"
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

// refusalRig is a router backed by a real node agent on a real Consul agent, seeded as a
// two-member cluster led by n1, with a raw Consul client to compare the keys.
type refusalRig struct {
	ctx          context.Context
	r            http.Handler
	kv           *capi.KV
	prefix       string
	good, wrong  string
	seededConfig string
}

func newRefusalRig(t *testing.T) refusalRig {
	t.Helper()
	agent := testenv.SharedConsul(t, sharedConsul)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	t.Cleanup(cancel)
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
	seeded := `{"ttl":3,"loop_wait":1}`
	if err := store.Put(ctx, consul.KeyConfig, []byte(seeded)); err != nil {
		t.Fatal(err)
	}
	inst, err := pg.New(pg.Config{DataDir: t.TempDir(), BinDir: testenv.PGBinDir(t)}, logger)
	if err != nil {
		t.Fatal(err)
	}
	node := daemon.New(daemon.Config{Scope: scope, Namespace: ns, Name: "n2", TTL: 3 * time.Second, LoopWait: time.Second,
		RetryTimeout: time.Second, FenceMargin: time.Second}, daemon.Deps{PG: inst, Consul: client, Logger: logger})
	raw, err := capi.NewClient(&capi.Config{Address: agent.HTTPAddr, Token: agent.Token})
	if err != nil {
		t.Fatal(err)
	}
	return refusalRig{
		ctx: ctx, r: NewRouter(routesOf(node), nil, nil, nil, WithAuth(Auth{Username: "admin", Password: "secret"})),
		kv: raw.KV(), prefix: store.Prefix(), seededConfig: seeded,
		good:  "Basic " + base64.StdEncoding.EncodeToString([]byte("admin:secret")),
		wrong: "Basic " + base64.StdEncoding.EncodeToString([]byte("admin:guess")),
	}
}

// TestRefusedRequestsChangeNothing sends every kind of bad request to the rig and checks the
// documented 4xx/5xx answer and that no key under the cluster's prefix changed.
func TestRefusedRequestsChangeNothing(t *testing.T) {
	t.Parallel()
	rig := newRefusalRig(t)
	ctx, r, good, wrong, prefix := rig.ctx, rig.r, rig.good, rig.wrong, rig.prefix
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
		{"restore without confirmation", "POST", "/api/v1/restore", good, `{}`, [2]string{}, 400},
		{"restore of another cluster", "POST", "/api/v1/backup/restore", good, `{"confirm":"prod"}`, [2]string{}, 400},
		{"restore to the future", "POST", "/api/v1/restore", good, `{"target":{"type":"time","value":"2999-01-01T00:00:00Z"},"confirm":"pg"}`, [2]string{}, 400},
		{"restore without a tool", "POST", "/api/v1/restore", good, `{"confirm":"pg"}`, [2]string{}, 409},
		{"restore unauthenticated", "POST", "/api/v1/restore", "", `{"confirm":"pg"}`, [2]string{}, 401},
		{"backup status unknown", "GET", "/api/v1/backup/status/nope", "", ``, [2]string{}, 404},
		{"job unknown", "GET", "/api/v1/jobs/nope", "", ``, [2]string{}, 404},
		{"job bad wait", "GET", "/api/v1/jobs/nope?wait=maybe", "", ``, [2]string{}, 400},
	}
	before := kvSnapshot(t, rig.kv, prefix)
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
		if d := diffKV(before, kvSnapshot(t, rig.kv, prefix)); len(d) > 0 {
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
	d := diffKV(before, kvSnapshot(t, rig.kv, prefix))
	if len(d) != 2 {
		t.Fatalf("a valid switchover should add the failover key and a job, changes: %v", d)
	}
	// A second request while it is pending is refused and changes nothing more.
	mid := kvSnapshot(t, rig.kv, prefix)
	req = httptest.NewRequest("POST", "/api/v1/switchover", strings.NewReader(`{"leader":"n1","candidate":"n2"}`)).WithContext(ctx)
	req.Header.Set("Authorization", good)
	rec = httptest.NewRecorder()
	r.ServeHTTP(rec, req)
	if rec.Code != http.StatusConflict {
		t.Fatalf("second switchover: %d %s, want 409", rec.Code, rec.Body)
	}
	if d := diffKV(mid, kvSnapshot(t, rig.kv, prefix)); len(d) > 0 {
		t.Fatalf("the refused second switchover changed Consul: %v", d)
	}
}

// TestConfigRefusalsChangeNothing sends, for every key of the dynamic configuration, values of
// the wrong type and out of range, plus unknown and unsupported keys and parameters ramd owns,
// through PATCH and PUT on /config and /api/v1/config: each is refused with 400 naming the
// field and the value, and no key under the cluster's prefix changes.
func TestConfigRefusalsChangeNothing(t *testing.T) {
	t.Parallel()
	rig := newRefusalRig(t)
	bad := []struct {
		field string
		body  string // the document (PUT) or patch (PATCH)
	}{
		{"ttl", `{"ttl":"banana"}`},
		{"ttl", `{"ttl":0.5}`},
		{"ttl", `{"ttl":true}`},
		{"ttl", `{"ttl":601}`},
		{"ttl", `{"ttl":2,"loop_wait":1,"retry_timeout":1}`}, // fencing inequality
		{"loop_wait", `{"loop_wait":0}`},
		{"loop_wait", `{"loop_wait":"1 second"}`},
		{"loop_wait", `{"loop_wait":11}`},
		{"retry_timeout", `{"retry_timeout":[]}`},
		{"retry_timeout", `{"retry_timeout":0.01}`},
		{"fence_margin", `{"fence_margin":0.2}`},
		{"fence_margin", `{"fence_margin":"x"}`},
		{"maximum_lag_on_failover", `{"maximum_lag_on_failover":-5}`},
		{"maximum_lag_on_failover", `{"maximum_lag_on_failover":"1MB"}`},
		{"failsafe_mode", `{"failsafe_mode":"on"}`},
		{"pause", `{"pause":1}`},
		{"synchronous_mode", `{"synchronous_mode":"always"}`},
		{"synchronous_mode", `{"synchronous_mode":2}`},
		{"synchronous_node_count", `{"synchronous_node_count":0}`},
		{"synchronous_node_count", `{"synchronous_node_count":1.5}`},
		{"synchronous_node_count", `{"synchronous_node_count":"two"}`},
		{"synchronous_mode_strict", `{"synchronous_mode_strict":"true"}`},
		{"synchronous_commit", `{"synchronous_commit":"off"}`},
		{"synchronous_commit", `{"synchronous_commit":true}`},
		{"max_timelines_history", `{"max_timelines_history":-1}`},
		{"max_timelines_history", `{"max_timelines_history":"all"}`},
		{"member_slots_ttl", `{"member_slots_ttl":"forever"}`},
		{"member_slots_ttl", `{"member_slots_ttl":"8d"}`},
		{"postgresql", `{"postgresql":"on"}`},
		{"postgresql.parameters", `{"postgresql":{"parameters":"work_mem=8MB"}}`},
		{"postgresql.parameters.port", `{"postgresql":{"parameters":{"port":5433}}}`},
		{"postgresql.parameters.archive_command", `{"postgresql":{"parameters":{"archive_command":"cp %p /x"}}}`},
		{"postgresql.parameters.work_mem", `{"postgresql":{"parameters":{"work_mem":["8MB"]}}}`},
		{"postgresql.use_pg_rewind", `{"postgresql":{"use_pg_rewind":false}}`},
		{"postgresql.use_slots", `{"postgresql":{"use_slots":"yes"}}`},
		{"postgresql.pg_hba", `{"postgresql":{"pg_hba":["host all all 0.0.0.0/0 trust"]}}`},
		{"primary_start_timeout", `{"primary_start_timeout":300}`},
		{"standby_cluster", `{"standby_cluster":{"host":"x"}}`},
		{"no_such_key", `{"no_such_key":1}`},
	}
	routes := []struct{ method, path string }{
		{"PATCH", "/config"}, {"PUT", "/config"}, {"PATCH", "/api/v1/config"}, {"PUT", "/api/v1/config"},
	}
	before := kvSnapshot(t, rig.kv, rig.prefix)
	for _, b := range bad {
		for _, rt := range routes {
			req := httptest.NewRequest(rt.method, rt.path, strings.NewReader(b.body)).WithContext(rig.ctx)
			req.Header.Set("Authorization", rig.good)
			rec := httptest.NewRecorder()
			rig.r.ServeHTTP(rec, req)
			if rec.Code != http.StatusBadRequest {
				t.Errorf("%s %s %s answered %d, want 400: %s", rt.method, rt.path, b.body, rec.Code, rec.Body)
				continue
			}
			var body client.ErrorBody
			if err := json.Unmarshal(rec.Body.Bytes(), &body); err != nil {
				t.Fatalf("%s %s %s: body %s: %v", rt.method, rt.path, b.body, rec.Body, err)
			}
			named := false
			for _, e := range body.Errors {
				named = named || e.Field == b.field
			}
			if !named || body.Field == "" || body.Detail == "" {
				t.Errorf("%s %s %s: refusal %+v does not name %s", rt.method, rt.path, b.body, body, b.field)
			}
			if d := diffKV(before, kvSnapshot(t, rig.kv, rig.prefix)); len(d) > 0 {
				t.Fatalf("%s %s %s: the refused request changed Consul: %v", rt.method, rt.path, b.body, d)
			}
		}
	}
	// Every refusal of one document is listed at once.
	req := httptest.NewRequest("PUT", "/config", strings.NewReader(`{"ttl":"banana","loop_wait":0,"no_such_key":1}`)).WithContext(rig.ctx)
	req.Header.Set("Authorization", rig.good)
	rec := httptest.NewRecorder()
	rig.r.ServeHTTP(rec, req)
	var body client.ErrorBody
	_ = json.Unmarshal(rec.Body.Bytes(), &body)
	if len(body.Errors) != 3 || body.Value == nil {
		t.Errorf("want three refusals with the first value, got %d %s", rec.Code, rec.Body)
	}
	// A valid change goes through and changes exactly the config key.
	req = httptest.NewRequest("PATCH", "/config", strings.NewReader(`{"ttl":4,"maximum_lag_on_failover":2097152}`)).WithContext(rig.ctx)
	req.Header.Set("Authorization", rig.good)
	rec = httptest.NewRecorder()
	rig.r.ServeHTTP(rec, req)
	if rec.Code != http.StatusOK {
		t.Fatalf("valid patch: %d %s", rec.Code, rec.Body)
	}
	if d := diffKV(before, kvSnapshot(t, rig.kv, rig.prefix)); len(d) != 1 || !strings.HasSuffix(d[0], "/config") {
		t.Fatalf("a valid patch should change only the config key, changes: %v", d)
	}
}
