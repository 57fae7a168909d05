package consul

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/hashicorp/consul/api"

	"github.com/ramd-project/ramd/test/testenv"
)

// shared is the one agent of this package's tests; each test isolates itself with its own
// testenv.KeyPrefix namespace.
var shared *testenv.Consul

func TestMain(m *testing.M) {
	c, stop, err := testenv.StartConsulMain(testenv.ConsulOptions{})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	shared = c
	code := m.Run()
	stop()
	os.Exit(code)
}

// testWriter sends log lines to t.Log.
type testWriter struct{ t testing.TB }

func (w testWriter) Write(b []byte) (int, error) {
	w.t.Helper()
	w.t.Log(strings.TrimRight(string(b), "\n"))
	return len(b), nil
}

// newClient returns a Client of agent a (the shared one when nil) logging at Debug to t.
func newClient(t *testing.T, a *testenv.Consul, timeout time.Duration) *Client {
	t.Helper()
	if a == nil {
		a = testenv.SharedConsul(t, shared)
	}
	log := slog.New(slog.NewTextHandler(testWriter{t}, &slog.HandlerOptions{Level: slog.LevelDebug}))
	c, err := New(Config{Addr: a.HTTPAddr, Token: a.Token, Timeout: timeout}, log)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// newStore returns a client of the shared agent and a store under the test's own namespace.
func newStore(t *testing.T) (*Client, *Store) {
	t.Helper()
	c := newClient(t, nil, 2*time.Second)
	return c, c.Store(testenv.KeyPrefix(t), "pg")
}

// rawAPI returns the api package's client of the shared agent, to check what Consul stored
// independently of the code under test.
func rawAPI(t *testing.T) *api.Client {
	t.Helper()
	a := testenv.SharedConsul(t, shared)
	c, err := api.NewClient(&api.Config{Address: a.HTTPAddr, Token: a.Token})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// newSession creates a session that the test destroys at cleanup.
func newSession(t *testing.T, c *Client, name string) string {
	t.Helper()
	id, err := c.CreateSession(t.Context(), SessionOptions{Name: name, TTL: 15 * time.Second, LockDelay: time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := c.DestroySession(context.Background(), id); err != nil {
			t.Errorf("destroy session at cleanup: %v", err)
		}
	})
	return id
}

func wantErr(t *testing.T, err, want error) {
	t.Helper()
	if !errors.Is(err, want) {
		t.Fatalf("err = %v, want %v", err, want)
	}
}

func TestAgent(t *testing.T) {
	t.Parallel()
	c := newClient(t, nil, 2*time.Second)
	got, err := c.Agent(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	a := testenv.SharedConsul(t, shared)
	want := AgentInfo{NodeName: a.NodeName, Datacenter: a.Datacenter, Server: true, DevMode: true, Version: testenv.ConsulVersion}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Fatalf("Agent (-want +got):\n%s", diff)
	}
}

func TestStorePrefix(t *testing.T) {
	t.Parallel()
	c := &Client{}
	tests := []struct {
		name, namespace, scope, want string
	}{
		{name: "plain", namespace: "service", scope: "pg", want: "service/pg/"},
		{name: "patroni_slashes", namespace: "/service/", scope: "pg", want: "service/pg/"},
		{name: "nested_namespace", namespace: "a/b", scope: "/pg/", want: "a/b/pg/"},
		{name: "no_namespace", namespace: "", scope: "pg", want: "pg/"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			if got := c.Store(tt.namespace, tt.scope).Prefix(); got != tt.want {
				t.Fatalf("Prefix() = %q, want %q", got, tt.want)
			}
		})
	}
}

func TestPutGetListDelete(t *testing.T) {
	t.Parallel()
	_, s := newStore(t)
	ctx := t.Context()

	_, err := s.Get(ctx, "members/none", false)
	wantErr(t, err, ErrNotFound)

	for _, k := range []string{"members/n2", "members/n1", "leader", "members/n3"} {
		if err := s.Put(ctx, k, []byte("v-"+k)); err != nil {
			t.Fatal(err)
		}
	}
	for _, consistent := range []bool{false, true} {
		p, err := s.Get(ctx, "members/n1", consistent)
		if err != nil {
			t.Fatal(err)
		}
		if p.Key != "members/n1" || string(p.Value) != "v-members/n1" || p.ModifyIndex == 0 || p.Session != "" {
			t.Fatalf("Get(consistent=%v) = %+v", consistent, p)
		}
	}

	members, err := s.List(ctx, KeyMembers)
	if err != nil {
		t.Fatal(err)
	}
	var keys []string
	for _, p := range members {
		keys = append(keys, p.Key)
	}
	if diff := cmp.Diff([]string{"members/n1", "members/n2", "members/n3"}, keys); diff != "" {
		t.Fatalf("List keys (-want +got):\n%s", diff)
	}

	if err := s.Delete(ctx, "members/n2"); err != nil {
		t.Fatal(err)
	}
	if err := s.Delete(ctx, "members/n2"); err != nil {
		t.Fatalf("deleting a missing key: %v", err)
	}
	if err := s.DeleteTree(ctx, KeyMembers); err != nil {
		t.Fatal(err)
	}
	all, err := s.List(ctx, "")
	if err != nil {
		t.Fatal(err)
	}
	if len(all) != 1 || all[0].Key != KeyLeader {
		t.Fatalf("after DeleteTree(members/) the store holds %+v, want only leader", all)
	}
	if err := s.DeleteTree(ctx, ""); err != nil {
		t.Fatal(err)
	}
	if all, err = s.List(ctx, ""); err != nil || len(all) != 0 {
		t.Fatalf("after DeleteTree(\"\") List = %+v, %v; want empty", all, err)
	}
}

func TestCAS(t *testing.T) {
	t.Parallel()
	_, s := newStore(t)
	ctx := t.Context()

	if err := s.CAS(ctx, KeyInitialize, []byte("7000000000000000001"), 0); err != nil {
		t.Fatalf("create-only CAS on a missing key: %v", err)
	}
	wantErr(t, s.CAS(ctx, KeyInitialize, []byte("7000000000000000002"), 0), ErrConflict)

	p, err := s.Get(ctx, KeyInitialize, true)
	if err != nil {
		t.Fatal(err)
	}
	if string(p.Value) != "7000000000000000001" {
		t.Fatalf("losing CAS changed the value to %q", p.Value)
	}
	wantErr(t, s.CAS(ctx, KeyInitialize, []byte("x"), p.ModifyIndex+1000), ErrConflict)
	if err := s.CAS(ctx, KeyInitialize, []byte("7000000000000000003"), p.ModifyIndex); err != nil {
		t.Fatalf("CAS at the current index: %v", err)
	}
	wantErr(t, s.CAS(ctx, KeyInitialize, []byte("x"), p.ModifyIndex), ErrConflict)
}

func TestDeleteCAS(t *testing.T) {
	t.Parallel()
	_, s := newStore(t)
	ctx := t.Context()

	if err := s.Put(ctx, KeyFailover, []byte(`{"member":"n2"}`)); err != nil {
		t.Fatal(err)
	}
	p, err := s.Get(ctx, KeyFailover, false)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Put(ctx, KeyFailover, []byte(`{"member":"n3"}`)); err != nil {
		t.Fatal(err)
	}
	wantErr(t, s.DeleteCAS(ctx, KeyFailover, p.ModifyIndex), ErrConflict)
	if _, err := s.Get(ctx, KeyFailover, false); err != nil {
		t.Fatalf("a conflicting DeleteCAS removed the key: %v", err)
	}
	p, err = s.Get(ctx, KeyFailover, false)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.DeleteCAS(ctx, KeyFailover, p.ModifyIndex); err != nil {
		t.Fatal(err)
	}
	_, err = s.Get(ctx, KeyFailover, false)
	wantErr(t, err, ErrNotFound)
}

func TestSessionCreatedWithoutChecks(t *testing.T) {
	t.Parallel()
	c, _ := newStore(t)
	tests := []struct {
		name      string
		opts      SessionOptions
		wantTTL   string
		wantDelay time.Duration
	}{
		{name: "tiny_lock_delay", opts: SessionOptions{TTL: 15 * time.Second, LockDelay: time.Millisecond}, wantTTL: "15s", wantDelay: time.Millisecond},
		{name: "ttl_rounded_up", opts: SessionOptions{TTL: 10500 * time.Millisecond, LockDelay: 2 * time.Second}, wantTTL: "11s", wantDelay: 2 * time.Second},
		{name: "ttl_below_floor_clamped", opts: SessionOptions{TTL: 2 * time.Second, LockDelay: time.Millisecond}, wantTTL: "10s", wantDelay: time.Millisecond},
		{name: "default_lock_delay", opts: SessionOptions{TTL: 20 * time.Second}, wantTTL: "20s", wantDelay: 15 * time.Second},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			tt.opts.Name = testenv.KeyPrefix(t)
			id, err := c.CreateSession(t.Context(), tt.opts)
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { _ = c.DestroySession(context.Background(), id) })
			se, _, err := rawAPI(t).Session().Info(id, nil)
			if err != nil || se == nil {
				t.Fatalf("read session back: %+v, %v", se, err)
			}
			got := struct {
				Name, Behavior, TTL string
				LockDelay           time.Duration
				Checks, NodeChecks  int
				ServiceChecks       int
			}{se.Name, se.Behavior, se.TTL, se.LockDelay, len(se.Checks), len(se.NodeChecks), len(se.ServiceChecks)}
			want := got
			want.Name, want.Behavior, want.TTL, want.LockDelay = tt.opts.Name, "delete", tt.wantTTL, tt.wantDelay
			want.Checks, want.NodeChecks, want.ServiceChecks = 0, 0, 0
			if diff := cmp.Diff(want, got); diff != "" {
				t.Fatalf("session as stored (-want +got):\n%s", diff)
			}
		})
	}
}

func TestCreateSessionRefused(t *testing.T) {
	t.Parallel()
	c := newClient(t, nil, 2*time.Second)
	tests := []struct {
		name string
		ttl  time.Duration
	}{
		{name: "no_ttl", ttl: 0}, // a session without checks nor TTL would never end
		{name: "ttl_above_max", ttl: 48 * time.Hour},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			id, err := c.CreateSession(t.Context(), SessionOptions{Name: tt.name, TTL: tt.ttl})
			if err == nil {
				_ = c.DestroySession(context.Background(), id)
				t.Fatalf("CreateSession with TTL %s succeeded", tt.ttl)
			}
			if errors.Is(err, ErrUnavailable) {
				t.Fatalf("a refused TTL reads as %v", err)
			}
		})
	}
}

func TestAcquireReleaseNeedSession(t *testing.T) {
	t.Parallel()
	_, s := newStore(t)
	if err := s.Acquire(t.Context(), KeyLeader, nil, ""); err == nil || errors.Is(err, ErrUnavailable) {
		t.Fatalf("Acquire without session: %v", err)
	}
	if err := s.Release(t.Context(), KeyLeader, ""); err == nil || errors.Is(err, ErrUnavailable) {
		t.Fatalf("Release without session: %v", err)
	}
}

func TestSessionLifecycle(t *testing.T) {
	t.Parallel()
	c, s := newStore(t)
	ctx := t.Context()
	id := newSession(t, c, "lifecycle")

	if ok, err := c.SessionExists(ctx, id); err != nil || !ok {
		t.Fatalf("SessionExists = %v, %v; want true", ok, err)
	}
	if err := c.RenewSession(ctx, id); err != nil {
		t.Fatalf("renew a live session: %v", err)
	}
	if err := s.Acquire(ctx, KeyLeader, []byte("n1"), id); err != nil {
		t.Fatal(err)
	}
	if err := c.DestroySession(ctx, id); err != nil {
		t.Fatal(err)
	}
	if err := c.DestroySession(ctx, id); err != nil {
		t.Fatalf("destroying twice: %v", err)
	}
	// Behavior=delete: the key the session held goes with it.
	testenv.Eventually(t, 5*time.Second, 20*time.Millisecond, func() error {
		if _, err := s.Get(ctx, KeyLeader, true); !errors.Is(err, ErrNotFound) {
			return fmt.Errorf("leader key after destroy: %w", err)
		}
		return nil
	})
	if ok, err := c.SessionExists(ctx, id); err != nil || ok {
		t.Fatalf("SessionExists after destroy = %v, %v; want false", ok, err)
	}
	wantErr(t, c.RenewSession(ctx, id), ErrSessionLost)
	wantErr(t, s.Acquire(ctx, KeyLeader, []byte("n1"), id), ErrSessionLost)
}

func TestAcquireRelease(t *testing.T) {
	t.Parallel()
	c, s := newStore(t)
	ctx := t.Context()
	s1 := newSession(t, c, "n1")
	s2 := newSession(t, c, "n2")

	if err := s.Acquire(ctx, KeyLeader, []byte("n1"), s1); err != nil {
		t.Fatal(err)
	}
	if err := s.Acquire(ctx, KeyLeader, []byte("n1"), s1); err != nil {
		t.Fatalf("re-acquire by the holder: %v", err)
	}
	wantErr(t, s.Acquire(ctx, KeyLeader, []byte("n2"), s2), ErrConflict)
	p, err := s.Get(ctx, KeyLeader, true)
	if err != nil {
		t.Fatal(err)
	}
	if p.Session != s1 || string(p.Value) != "n1" || p.LockIndex != 1 {
		t.Fatalf("leader key = %+v, want held by %s with value n1, lock index 1", p, s1)
	}

	wantErr(t, s.Release(ctx, KeyLeader, s2), ErrConflict)
	if err := s.Release(ctx, KeyLeader, s1); err != nil {
		t.Fatal(err)
	}
	p, err = s.Get(ctx, KeyLeader, true)
	if err != nil {
		t.Fatal(err)
	}
	if p.Session != "" || string(p.Value) != "n1" {
		t.Fatalf("after release leader key = %+v, want unlocked with its value kept", p)
	}
	if err := s.Release(ctx, KeyLeader, s1); err != nil {
		t.Fatalf("releasing twice: %v", err)
	}
	if err := s.Release(ctx, "missing", s1); err != nil {
		t.Fatalf("releasing a missing key: %v", err)
	}
	// Lock delay is 1ms: the other session can take the key at once.
	testenv.Eventually(t, 5*time.Second, 10*time.Millisecond, func() error {
		return s.Acquire(ctx, KeyLeader, []byte("n2"), s2)
	})
}

// TestTakeoverClaim: a replica's claim (SetIfUnchanged on the status and leader keys) and the
// leader's heartbeat (PutIfHeld with the claim absent) exclude each other, whichever comes
// first; the next holder's acquisition (AcquireClearing) deletes the claim.
func TestTakeoverClaim(t *testing.T) {
	t.Parallel()
	c, s := newStore(t)
	ctx := t.Context()
	leader := newSession(t, c, "n1")
	replica := newSession(t, c, "n2")
	if err := s.AcquireClearing(ctx, KeyLeader, []byte("n1"), leader, KeyTakeover); err != nil {
		t.Fatal(err)
	}
	beats := 0 // each heartbeat differs (Consul keeps the index of an identical write)
	beat := func() error {
		beats++
		return s.PutIfHeld(ctx, KeyLeader, leader, KeyStatus, fmt.Appendf(nil, `{"heartbeat":%d}`, beats), KeyTakeover)
	}
	statusIndex := func() uint64 {
		t.Helper()
		p, err := s.Get(ctx, KeyStatus, true)
		if err != nil {
			t.Fatal(err)
		}
		return p.ModifyIndex
	}
	claim := []byte(`{"by":"n2"}`)

	// No status key yet: a claim needs it absent.
	leaderAt := func() Seen {
		t.Helper()
		p, err := s.Get(ctx, KeyLeader, true)
		if err != nil {
			t.Fatal(err)
		}
		return Seen{KeyLeader, p.ModifyIndex}
	}
	wantErr(t, s.SetIfUnchanged(ctx, KeyTakeover, claim, Seen{KeyStatus, 42}, leaderAt()), ErrConflict)
	if err := beat(); err != nil {
		t.Fatal(err)
	}
	seen := statusIndex()
	// A heartbeat after the replica's read: the claim is refused.
	if err := beat(); err != nil {
		t.Fatal(err)
	}
	wantErr(t, s.SetIfUnchanged(ctx, KeyTakeover, claim, Seen{KeyStatus, seen}, leaderAt()), ErrConflict)
	if _, err := s.Get(ctx, KeyTakeover, true); !errors.Is(err, ErrNotFound) {
		t.Fatalf("a refused claim was written: %v", err)
	}
	// The claim first: the heartbeat is refused, and the status key keeps its index.
	seen = statusIndex()
	held := leaderAt()
	if err := s.SetIfUnchanged(ctx, KeyTakeover, claim, Seen{KeyStatus, seen}, held); err != nil {
		t.Fatal(err)
	}
	wantErr(t, beat(), ErrConflict)
	if got := statusIndex(); got != seen {
		t.Fatalf("status index %d after a refused heartbeat, want %d", got, seen)
	}
	// The replica ends the leader's session and takes the lock, clearing the claim; its own
	// heartbeats then succeed.
	if err := c.DestroySession(ctx, leader); err != nil {
		t.Fatal(err)
	}
	testenv.Eventually(t, 5*time.Second, 10*time.Millisecond, func() error { // 1 ms lock delay
		return s.AcquireClearing(ctx, KeyLeader, []byte("n2"), replica, KeyTakeover)
	})
	if _, err := s.Get(ctx, KeyTakeover, true); !errors.Is(err, ErrNotFound) {
		t.Fatalf("the claim survived the new holder's acquisition: %v", err)
	}
	// A second replica that judged from the same read (status unchanged: the new holder has
	// not written yet) cannot claim again: the leader key changed.
	wantErr(t, s.SetIfUnchanged(ctx, KeyTakeover, claim, Seen{KeyStatus, seen}, held), ErrConflict)
	if err := s.PutIfHeld(ctx, KeyLeader, replica, KeyStatus, []byte(`{"optime":2}`), KeyTakeover); err != nil {
		t.Fatalf("the new holder's heartbeat: %v", err)
	}
	wantErr(t, s.AcquireClearing(ctx, KeyLeader, []byte("n1"), leader, KeyTakeover), ErrSessionLost)
}

func TestWatch(t *testing.T) { //nolint:tparallel // the steps watch one key in order
	t.Parallel()
	_, s := newStore(t)
	ctx := t.Context()

	_, found, idx, err := s.Watch(ctx, KeySync, 0, time.Second)
	if err != nil || found || idx == 0 {
		t.Fatalf("Watch of a missing key = found %v, index %d, %v; want not found and an index", found, idx, err)
	}

	if err := s.Put(ctx, KeySync, []byte("v1")); err != nil {
		t.Fatal(err)
	}
	p, found, idx, err := s.Watch(ctx, KeySync, 0, time.Second)
	if err != nil || !found || string(p.Value) != "v1" {
		t.Fatalf("Watch(0) = %+v, %v, %v", p, found, err)
	}

	t.Run("returns_after_wait_without_change", func(t *testing.T) {
		const wait = 300 * time.Millisecond
		start := time.Now()
		p2, found, idx2, err := s.Watch(ctx, KeySync, idx, wait)
		if err != nil || !found || idx2 != idx || string(p2.Value) != "v1" {
			t.Fatalf("Watch = %+v, %v, index %d (was %d), %v", p2, found, idx2, idx, err)
		}
		if d := time.Since(start); d < wait {
			t.Fatalf("Watch returned after %s, before wait %s", d, wait)
		}
	})

	t.Run("wait_longer_than_client_timeout", func(t *testing.T) {
		// The blocking query's bound is the client timeout plus the wait, not the timeout.
		short := newClient(t, nil, 200*time.Millisecond).Store(s.Prefix(), "")
		if short.Prefix() != s.Prefix() {
			t.Fatalf("prefix %q, want %q", short.Prefix(), s.Prefix())
		}
		if _, _, idx2, err := short.Watch(ctx, KeySync, idx, 600*time.Millisecond); err != nil || idx2 != idx {
			t.Fatalf("Watch with wait > timeout = index %d (was %d), %v", idx2, idx, err)
		}
	})

	t.Run("returns_promptly_on_change", func(t *testing.T) {
		type result struct {
			p     Pair
			found bool
			idx   uint64
			err   error
		}
		res := make(chan result, 1)
		go func() {
			p, found, idx, err := s.Watch(ctx, KeySync, idx, time.Minute)
			res <- result{p, found, idx, err}
		}()
		if err := s.Put(ctx, KeySync, []byte("v2")); err != nil {
			t.Fatal(err)
		}
		select {
		case r := <-res:
			if r.err != nil || !r.found || string(r.p.Value) != "v2" || r.idx <= idx {
				t.Fatalf("Watch after change = %+v (index %d, was %d), %v", r.p, r.idx, idx, r.err)
			}
		case <-time.After(20 * time.Second):
			t.Fatal("Watch did not return on change within 20s (wait was 1m)")
		}
	})
}

func TestGetJSON(t *testing.T) {
	t.Parallel()
	_, s := newStore(t)
	ctx := t.Context()
	lsn := uint64(0x3000060)

	tests := []struct {
		name string
		key  string
		in   any
		out  func() any // a pointer to a fresh value of in's type
	}{
		{
			name: "member",
			key:  MemberKey("n1"),
			in: &Member{
				ConnURL: "postgres://10.0.0.1:5432/postgres", APIURL: "http://10.0.0.1:8008/patroni",
				State: "running", Role: "replica", Version: "4.0.0", XLogLocation: 50331744,
				ReceiveLSN: &lsn, Timeline: 3, Tags: map[string]any{"nofailover": false}, DCSLastSeen: 1764000000,
			},
			out: func() any { return &Member{} },
		},
		{
			name: "history",
			key:  KeyHistory,
			in: &[]HistoryEntry{
				{Timeline: 1, LSN: 50331744, Reason: "no recovery target specified", Timestamp: time.Date(2026, 11, 26, 1, 2, 3, 456000000, time.UTC), NewLeader: "n2"},
				{Timeline: 2, LSN: 67108864, Reason: "switchover", Timestamp: time.Date(2026, 11, 26, 2, 0, 0, 0, time.UTC), NewLeader: "n1"},
			},
			out: func() any { return &[]HistoryEntry{} },
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			b, err := json.Marshal(tt.in)
			if err != nil {
				t.Fatal(err)
			}
			if err := s.Put(ctx, tt.key, b); err != nil {
				t.Fatal(err)
			}
			got := tt.out()
			idx, err := s.GetJSON(ctx, tt.key, true, got)
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tt.in, got); diff != "" {
				t.Fatalf("round trip (-want +got):\n%s", diff)
			}
			p, err := s.Get(ctx, tt.key, false)
			if err != nil || p.ModifyIndex != idx {
				t.Fatalf("GetJSON index %d, Get says %d (%v)", idx, p.ModifyIndex, err)
			}
		})
	}

	t.Run("not_found", func(t *testing.T) {
		t.Parallel()
		_, err := s.GetJSON(ctx, KeyStatus, false, &Status{})
		wantErr(t, err, ErrNotFound)
	})
	t.Run("bad_json_names_the_key", func(t *testing.T) {
		t.Parallel()
		if err := s.Put(ctx, KeyConfig, []byte("{not json")); err != nil {
			t.Fatal(err)
		}
		_, err := s.GetJSON(ctx, KeyConfig, false, &map[string]any{})
		if err == nil || !strings.Contains(err.Error(), s.Prefix()+KeyConfig) {
			t.Fatalf("err = %v, want a decode error naming %s", err, s.Prefix()+KeyConfig)
		}
	})
}

func TestServices(t *testing.T) {
	t.Parallel()
	c := newClient(t, nil, 2*time.Second)
	ctx := t.Context()
	name := testenv.KeyPrefix(t)

	register := func(id, tag string) string {
		t.Helper()
		checkID := "ttl:" + id
		err := c.RegisterService(ctx, &api.AgentServiceRegistration{
			ID: id, Name: name, Tags: []string{tag}, Port: 5432, Address: "127.0.0.1",
			Check: &api.AgentServiceCheck{CheckID: checkID, TTL: "30s", Status: api.HealthCritical},
		})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = c.DeregisterService(context.Background(), id) })
		return checkID
	}
	primaryCheck := register(name+"-n1", "primary")
	replicaCheck := register(name+"-n2", "replica")

	svc, err := c.LocalService(ctx, name+"-n1")
	if err != nil {
		t.Fatal(err)
	}
	if svc.Service != name || svc.Port != 5432 || len(svc.Tags) != 1 || svc.Tags[0] != "primary" {
		t.Fatalf("LocalService = %+v", svc)
	}
	_, err = c.LocalService(ctx, name+"-none")
	wantErr(t, err, ErrNotFound)
	wantErr(t, c.UpdateTTL(ctx, "ttl:"+name+"-none", "", api.HealthPassing), ErrNotFound)
	if err := c.UpdateTTL(ctx, primaryCheck, "", "bogus"); err == nil {
		t.Fatal("UpdateTTL accepted status bogus")
	}

	healthy := func(tag string) ([]string, error) {
		entries, err := c.HealthyService(ctx, name, tag)
		if err != nil {
			return nil, err
		}
		var ids []string
		for _, e := range entries {
			ids = append(ids, e.Service.ID)
		}
		return ids, nil
	}
	if ids, err := healthy(""); err != nil || len(ids) != 0 {
		t.Fatalf("healthy instances while every check is critical: %v, %v", ids, err)
	}

	for _, id := range []string{primaryCheck, replicaCheck} {
		if err := c.UpdateTTL(ctx, id, "pg is up", api.HealthPassing); err != nil {
			t.Fatal(err)
		}
	}
	tests := []struct {
		tag  string
		want []string
	}{
		{tag: "primary", want: []string{name + "-n1"}},
		{tag: "replica", want: []string{name + "-n2"}},
		{tag: "other", want: nil},
	}
	for _, tt := range tests {
		testenv.Eventually(t, 10*time.Second, 50*time.Millisecond, func() error {
			ids, err := healthy(tt.tag)
			if err != nil {
				return err
			}
			if diff := cmp.Diff(tt.want, ids); diff != "" {
				return fmt.Errorf("healthy %s tag %s (-want +got):\n%s", name, tt.tag, diff)
			}
			return nil
		})
	}

	if err := c.UpdateTTL(ctx, replicaCheck, "pg is down", api.HealthCritical); err != nil {
		t.Fatal(err)
	}
	testenv.Eventually(t, 10*time.Second, 50*time.Millisecond, func() error {
		ids, err := healthy("replica")
		if err != nil || len(ids) != 0 {
			return fmt.Errorf("healthy replicas after critical: %v, %w", ids, err)
		}
		return nil
	})
	all, err := c.CatalogService(ctx, name, "")
	if err != nil || len(all) != 2 {
		t.Fatalf("CatalogService lists %d instances (%v), want 2 whatever their health", len(all), err)
	}

	if err := c.DeregisterService(ctx, name+"-n2"); err != nil {
		t.Fatal(err)
	}
	if err := c.DeregisterService(ctx, name+"-n2"); err != nil {
		t.Fatalf("deregistering twice: %v", err)
	}
	_, err = c.LocalService(ctx, name+"-n2")
	wantErr(t, err, ErrNotFound)
	testenv.Eventually(t, 10*time.Second, 50*time.Millisecond, func() error {
		if got, err := c.CatalogService(ctx, name, "replica"); err != nil || len(got) != 0 {
			return fmt.Errorf("catalog replicas after deregister: %d, %w", len(got), err)
		}
		return nil
	})
}

// TestUnavailable runs calls against a private agent that is stopped, or frozen with
// SIGSTOP: every call fails with ErrUnavailable, bounded by the client's timeout.
func TestUnavailable(t *testing.T) {
	t.Parallel()
	const timeout = 500 * time.Millisecond
	tests := []struct {
		name  string
		fault func(t *testing.T, a *testenv.Consul)
	}{
		{name: "stopped", fault: func(t *testing.T, a *testenv.Consul) { t.Helper(); a.Stop(t) }},
		{name: "frozen", fault: func(t *testing.T, a *testenv.Consul) {
			t.Helper()
			if err := a.Signal(syscall.SIGSTOP); err != nil {
				t.Fatal(err)
			}
			// The cleanup's stop sends SIGCONT before SIGTERM.
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			a := testenv.StartConsul(t, testenv.ConsulOptions{})
			c := newClient(t, a, timeout)
			s := c.Store(testenv.KeyPrefix(t), "pg")
			ctx := t.Context()
			if err := s.Put(ctx, KeyLeader, []byte("n1")); err != nil {
				t.Fatal(err)
			}
			id, err := c.CreateSession(ctx, SessionOptions{TTL: 10 * time.Second, LockDelay: time.Millisecond})
			if err != nil {
				t.Fatal(err)
			}
			tt.fault(t, a)

			calls := []struct {
				name string
				call func() error
			}{
				{"Agent", func() error { _, err := c.Agent(ctx); return err }},
				{"Get", func() error { _, err := s.Get(ctx, KeyLeader, true); return err }},
				{"Watch", func() error { _, _, _, err := s.Watch(ctx, KeyLeader, 0, time.Second); return err }},
				{"List", func() error { _, err := s.List(ctx, ""); return err }},
				{"Put", func() error { return s.Put(ctx, KeyLeader, []byte("n2")) }},
				{"CAS", func() error { return s.CAS(ctx, KeyLeader, []byte("n2"), 1) }},
				{"Acquire", func() error { return s.Acquire(ctx, KeyLeader, []byte("n2"), id) }},
				{"Release", func() error { return s.Release(ctx, KeyLeader, id) }},
				{"DeleteCAS", func() error { return s.DeleteCAS(ctx, KeyLeader, 1) }},
				{"CreateSession", func() error {
					_, err := c.CreateSession(ctx, SessionOptions{TTL: 10 * time.Second})
					return err
				}},
				{"RenewSession", func() error { return c.RenewSession(ctx, id) }},
				{"SessionExists", func() error { _, err := c.SessionExists(ctx, id); return err }},
				{"DestroySession", func() error { return c.DestroySession(ctx, id) }},
				{"HealthyService", func() error { _, err := c.HealthyService(ctx, "x", ""); return err }},
				{"UpdateTTL", func() error { return c.UpdateTTL(ctx, "x", "", api.HealthPassing) }},
			}
			// Concurrently: against a frozen agent each call waits out its timeout.
			var wg sync.WaitGroup
			for _, call := range calls {
				wg.Go(func() {
					start := time.Now()
					err := call.call()
					if !errors.Is(err, ErrUnavailable) {
						t.Errorf("%s: err = %v, want ErrUnavailable", call.name, err)
					}
					// Generous slack: the bound under test is the timeout, not the scheduler.
					if d := time.Since(start); d > timeout+3*time.Second {
						t.Errorf("%s took %s with a %s timeout", call.name, d, timeout)
					}
				})
			}
			wg.Wait()
		})
	}
}

// TestACLToken checks the token reaches Consul, given inline or in a file, against an agent
// whose ACL default policy is deny.
func TestACLToken(t *testing.T) {
	t.Parallel()
	a := testenv.StartConsul(t, testenv.ConsulOptions{ACLDefaultDeny: true})
	tokenFile := filepath.Join(t.TempDir(), "token")
	if err := os.WriteFile(tokenFile, []byte(a.Token+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	prefix := testenv.KeyPrefix(t)
	tests := []struct {
		name    string
		cfg     Config
		allowed bool
	}{
		{name: "token", cfg: Config{Token: a.Token}, allowed: true},
		{name: "token_file", cfg: Config{TokenFile: tokenFile}, allowed: true},
		{name: "wrong_token", cfg: Config{Token: "00000000-0000-0000-0000-000000000001"}, allowed: false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			tt.cfg.Addr = a.HTTPAddr
			c, err := New(tt.cfg, nil)
			if err != nil {
				t.Fatal(err)
			}
			err = c.Store(prefix, tt.name).Put(t.Context(), KeyLeader, []byte("n1"))
			switch {
			case tt.allowed && err != nil:
				t.Fatalf("Put with a management token: %v", err)
			case !tt.allowed && err == nil:
				t.Fatal("Put without a valid token succeeded under default deny")
			case !tt.allowed && (errors.Is(err, ErrUnavailable) || errors.Is(err, ErrConflict)):
				t.Fatalf("a refused token reads as %v; it is neither unavailable nor a conflict", err)
			}
		})
	}
}

func TestCallerCancelIsNotUnavailable(t *testing.T) {
	t.Parallel()
	_, s := newStore(t)
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	_, err := s.Get(ctx, KeyLeader, false)
	if err == nil || errors.Is(err, ErrUnavailable) {
		t.Fatalf("Get with a cancelled ctx: err = %v, want a cancellation that is not ErrUnavailable", err)
	}
}
