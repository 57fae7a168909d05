package api

import (
	"crypto/tls"
	"errors"
	"io"
	"log"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/gin-gonic/gin"
)

// TestLiveReload replaces the API's certificate and token files under a running listener:
// after Reload the next handshake presents the new certificate and the old token is refused;
// a reload from a broken file fails and keeps serving the previous ones.
func TestLiveReload(t *testing.T) {
	t.Parallel()
	ca := newTestCA(t, "reload")
	certA, keyA := ca.issue(t, "first")
	certB, keyB := ca.issue(t, "second")
	dir := t.TempDir()
	certFile, keyFile := filepath.Join(dir, "api.pem"), filepath.Join(dir, "api-key.pem")
	tokenFile := filepath.Join(dir, "token")
	install := func(cert, key, token string) {
		t.Helper()
		for src, dst := range map[string]string{cert: certFile, key: keyFile} {
			b, err := os.ReadFile(src)
			if err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(dst, b, 0o600); err != nil {
				t.Fatal(err)
			}
		}
		if err := os.WriteFile(tokenFile, []byte(token+"\n"), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	install(certA, keyA, "token-one")
	cfg := Config{Listen: "127.0.0.1:0", CertFile: certFile, KeyFile: keyFile, TokenFile: tokenFile}
	if err := cfg.ReadSecretFiles(); err != nil {
		t.Fatal(err)
	}
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	live, err := NewLive(cfg)
	if err != nil {
		t.Fatal(err)
	}

	gin.SetMode(gin.TestMode)
	r := gin.New()
	r.Use(requireAuth(live.Auth))
	r.POST("/restart", func(c *gin.Context) { c.Status(http.StatusOK) })
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := NewServer(cfg, r)
	srv.TLSConfig = live.ServerTLS()
	srv.ErrorLog = log.New(io.Discard, "", 0)
	done := make(chan error, 1)
	go func() { done <- Serve(srv, ln) }()
	t.Cleanup(func() {
		_ = srv.Close()
		if err := <-done; !errors.Is(err, http.ErrServerClosed) {
			t.Errorf("Serve: %v", err)
		}
	})
	url := "https://" + ln.Addr().String() + "/restart"

	// call makes a fresh connection (no keep-alive) and returns the status and the common
	// name of the certificate the server presented.
	call := func(token string) (int, string) {
		t.Helper()
		hc := clientFor(t, ca.CAFile, "", "")
		hc.Transport.(*http.Transport).DisableKeepAlives = true
		req := httptest.NewRequestWithContext(t.Context(), http.MethodPost, url, nil)
		req.RequestURI = ""
		req.Header.Set("Authorization", "Bearer "+token)
		resp, err := hc.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		return resp.StatusCode, resp.TLS.PeerCertificates[0].Subject.CommonName
	}
	if code, cn := call("token-one"); code != http.StatusOK || cn != "first" {
		t.Fatalf("before the reload: %d from %q, want 200 from first", code, cn)
	}

	install(certB, keyB, "token-two")
	if err := live.Reload(); err != nil {
		t.Fatal(err)
	}
	if code, cn := call("token-one"); code != http.StatusUnauthorized || cn != "second" {
		t.Errorf("old token after the reload: %d from %q, want 401 from second", code, cn)
	}
	if code, _ := call("token-two"); code != http.StatusOK {
		t.Errorf("new token after the reload: %d, want 200", code)
	}
	if peer := live.ClientTLS(); peer == nil || peer.MinVersion != tls.VersionTLS12 {
		t.Errorf("client TLS after the reload: %+v", peer)
	}

	// A key file cut in half: the reload fails, names the variable, and nothing changes.
	if err := os.WriteFile(keyFile, []byte("-----BEGIN PRIVATE KEY-----\nAAAA\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(tokenFile, []byte("token-three"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := live.Reload(); err == nil {
		t.Fatal("reload from a broken key file succeeded")
	} else if want := "RAMD_API_KEYFILE"; !strings.Contains(err.Error(), want) {
		t.Errorf("reload error %q does not name %s", err, want)
	}
	if code, cn := call("token-two"); code != http.StatusOK || cn != "second" {
		t.Errorf("after a failed reload: %d from %q, want 200 from second", code, cn)
	}
	if code, _ := call("token-three"); code != http.StatusUnauthorized {
		t.Errorf("a token from a failed reload was taken: %d", code)
	}
}
