package testenv

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"reflect"
	"runtime"
	"strings"
	"syscall"
	"testing"
	"time"
)

// httpDo sends one request to the agent with plain net/http and returns status and body.
func httpDo(ctx context.Context, c *Consul, method, path, token string, body []byte) (int, string, error) {
	req, err := http.NewRequestWithContext(ctx, method, "http://"+c.HTTPAddr+path, bytes.NewReader(body))
	if err != nil {
		return 0, "", fmt.Errorf("build request: %w", err)
	}
	if token != "" {
		req.Header.Set("X-Consul-Token", token)
	}
	resp, err := (&http.Client{Timeout: 2 * time.Second}).Do(req)
	if err != nil {
		return 0, "", fmt.Errorf("%s %s: %w", method, path, err)
	}
	defer func() { _ = resp.Body.Close() }()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return 0, "", fmt.Errorf("read %s: %w", path, err)
	}
	return resp.StatusCode, string(b), nil
}

func mustDo(t *testing.T, c *Consul, method, path, token string, body []byte, wantCode int) string {
	t.Helper()
	code, got, err := httpDo(t.Context(), c, method, path, token, body)
	if err != nil {
		t.Fatal(err)
	}
	if code != wantCode {
		t.Fatalf("%s %s: status %d, want %d: %s", method, path, code, wantCode, got)
	}
	return got
}

func TestConsulBinaryVersion(t *testing.T) {
	t.Parallel()
	bin := ConsulBinary(t)
	if err := checkConsulVersion(bin); err != nil {
		t.Fatal(err)
	}
}

func TestStartConsul(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		opts ConsulOptions
	}{
		{name: "dev", opts: ConsulOptions{}},
		{name: "server", opts: ConsulOptions{Server: true}},
		{name: "acl_default_deny", opts: ConsulOptions{ACLDefaultDeny: true}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			c := StartConsul(t, tt.opts)
			if c.PID() == 0 {
				t.Fatal("PID() = 0 for a running agent")
			}
			if !strings.HasPrefix(c.HTTPAddr, "127.0.0.1:") || !strings.HasPrefix(c.DNSAddr, "127.0.0.1:") {
				t.Fatalf("addresses not on loopback: http %s dns %s", c.HTTPAddr, c.DNSAddr)
			}
			if leader := mustDo(t, c, http.MethodGet, "/v1/status/leader", c.Token, nil, http.StatusOK); leader == `""` {
				t.Fatal("no leader")
			}
			self := mustDo(t, c, http.MethodGet, "/v1/agent/self", c.Token, nil, http.StatusOK)
			var info struct {
				Config struct{ NodeName, Version string }
			}
			if err := json.Unmarshal([]byte(self), &info); err != nil {
				t.Fatalf("decode agent/self: %v", err)
			}
			if info.Config.NodeName != c.NodeName || info.Config.Version != ConsulVersion {
				t.Fatalf("agent/self says node %q version %q, want %q %q", info.Config.NodeName, info.Config.Version, c.NodeName, ConsulVersion)
			}
			key := "/v1/kv/" + KeyPrefix(t) + "/k"
			mustDo(t, c, http.MethodPut, key, c.Token, []byte("v"), http.StatusOK)
			if got := mustDo(t, c, http.MethodGet, key+"?raw", c.Token, nil, http.StatusOK); got != "v" {
				t.Fatalf("read back %q, want v", got)
			}
			if tt.opts.ACLDefaultDeny {
				mustDo(t, c, http.MethodGet, key+"?raw", "", nil, http.StatusForbidden)
			}
		})
	}
}

func TestConsulServerRestartKeepsKV(t *testing.T) {
	t.Parallel()
	c := StartConsul(t, ConsulOptions{Server: true})
	key := "/v1/kv/" + KeyPrefix(t) + "/survivor"
	mustDo(t, c, http.MethodPut, key, "", []byte("still here"), http.StatusOK)
	addr, pid := c.HTTPAddr, c.PID()

	c.Stop(t)
	if c.PID() != 0 {
		t.Fatal("PID() != 0 after Stop")
	}
	if _, _, err := httpDo(t.Context(), c, http.MethodGet, "/v1/status/leader", "", nil); err == nil {
		t.Fatal("stopped agent still answers")
	}
	c.Stop(t) // stopping twice is a no-op

	c.Start(t)
	if c.HTTPAddr != addr || c.PID() == pid || c.PID() == 0 {
		t.Fatalf("after restart addr %s pid %d, want addr %s and a new pid (old %d)", c.HTTPAddr, c.PID(), addr, pid)
	}
	if got := mustDo(t, c, http.MethodGet, key+"?raw", "", nil, http.StatusOK); got != "still here" {
		t.Fatalf("after restart %q, want %q", got, "still here")
	}
}

func TestConsulSignalFreezes(t *testing.T) {
	t.Parallel()
	c := StartConsul(t, ConsulOptions{})
	if err := c.Signal(syscall.SIGSTOP); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(t.Context(), 300*time.Millisecond)
	defer cancel()
	if _, _, err := httpDo(ctx, c, http.MethodGet, "/v1/status/leader", "", nil); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("frozen agent: err = %v, want deadline exceeded", err)
	}
	if err := c.Signal(syscall.SIGCONT); err != nil {
		t.Fatal(err)
	}
	Eventually(t, 10*time.Second, 50*time.Millisecond, func() error {
		_, _, err := httpDo(t.Context(), c, http.MethodGet, "/v1/status/leader", "", nil)
		return err
	})
}

func TestSharedConsulMissing(t *testing.T) {
	if RequireReal() {
		t.Skip("SharedConsul(nil) fails the test under RAMD_TEST_REQUIRE_REAL=1")
	}
	t.Parallel()
	ran := false
	t.Run("nil", func(t *testing.T) {
		defer func() { ran = true }()
		SharedConsul(t, nil)
		t.Error("SharedConsul(nil) returned instead of skipping")
	})
	if !ran {
		t.Fatal("subtest did not run")
	}
}

func TestDieWithParent(t *testing.T) {
	t.Parallel()
	f := reflect.ValueOf(dieWithParent()).Elem().FieldByName("Pdeathsig")
	if runtime.GOOS != "linux" {
		t.Skipf("Pdeathsig exists on linux only, not %s", runtime.GOOS)
	}
	if !f.IsValid() || f.Interface() != syscall.SIGKILL {
		t.Fatalf("Pdeathsig = %v, want SIGKILL", f)
	}
}
