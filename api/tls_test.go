package api

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"io"
	"log"
	"math/big"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/sethvargo/go-envconfig"
)

// testCA is a throwaway certificate authority whose files live in a test's temp directory.
type testCA struct {
	cert   *x509.Certificate
	key    *ecdsa.PrivateKey
	dir    string
	CAFile string
}

func newTestCA(t *testing.T, name string) *testCA {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: name},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(time.Hour),
		KeyUsage:              x509.KeyUsageCertSign,
		BasicConstraintsValid: true,
		IsCA:                  true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	ca := &testCA{cert: cert, key: key, dir: t.TempDir()}
	ca.CAFile = writePEM(t, ca.dir, name+"-ca.pem", "CERTIFICATE", der)
	return ca
}

// issue signs a certificate for 127.0.0.1 and localhost, usable by servers and clients as
// every member's certificate must be, and returns its certificate and key files.
func (ca *testCA) issue(t *testing.T, name string) (certFile, keyFile string) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(time.Now().UnixNano()),
		Subject:      pkix.Name{CommonName: name},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth},
		IPAddresses:  []net.IP{net.IPv4(127, 0, 0, 1)},
		DNSNames:     []string{"localhost"},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.cert, &key.PublicKey, ca.key)
	if err != nil {
		t.Fatal(err)
	}
	keyDER, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	return writePEM(t, ca.dir, name+".pem", "CERTIFICATE", der), writePEM(t, ca.dir, name+"-key.pem", "PRIVATE KEY", keyDER)
}

func writePEM(t *testing.T, dir, name, typ string, der []byte) string {
	t.Helper()
	path := filepath.Join(dir, name)
	if err := os.WriteFile(path, pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// serveTLS runs the API server of cfg on a free loopback port, the way ramd does (NewServer,
// TLSConfig, Serve), and returns its https base URL. The server stops with the test.
func serveTLS(t *testing.T, cfg Config, h http.Handler) string {
	t.Helper()
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	tlsCfg, err := cfg.TLSConfig()
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := NewServer(cfg, h)
	srv.TLSConfig = tlsCfg
	srv.ErrorLog = log.New(io.Discard, "", 0) // refused handshakes are the point of these tests
	done := make(chan error, 1)
	go func() { done <- Serve(srv, ln) }()
	t.Cleanup(func() {
		_ = srv.Close()
		if err := <-done; !errors.Is(err, http.ErrServerClosed) {
			t.Errorf("Serve: %v", err)
		}
	})
	return "https://" + ln.Addr().String()
}

// clientFor returns an HTTP client that trusts roots and presents the key pair, if any.
func clientFor(t *testing.T, roots string, certFile, keyFile string) *http.Client {
	t.Helper()
	pool, err := loadCAFile(roots)
	if err != nil {
		t.Fatal(err)
	}
	cfg := &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}
	if certFile != "" {
		cert, err := tls.LoadX509KeyPair(certFile, keyFile)
		if err != nil {
			t.Fatal(err)
		}
		// Present the certificate whatever CAs the server names: Go's client would otherwise
		// stay silent with a foreign one, and the server would never see it.
		cfg.GetClientCertificate = func(*tls.CertificateRequestInfo) (*tls.Certificate, error) { return &cert, nil }
	}
	return &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{TLSClientConfig: cfg}}
}

func get(c *http.Client, url string) (int, error) {
	resp, err := c.Get(url)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	return resp.StatusCode, nil
}

// TestTLSClientVerification runs a real listener per policy and connects with no client
// certificate, one signed by RAMD_API_CAFILE and one signed by another CA.
func TestTLSClientVerification(t *testing.T) {
	t.Parallel()
	ca := newTestCA(t, "cluster")
	other := newTestCA(t, "other")
	serverCert, serverKey := ca.issue(t, "n1")
	goodCert, goodKey := ca.issue(t, "ramctrl")
	badCert, badKey := other.issue(t, "intruder")
	clients := map[string][2]string{
		"no certificate":         {"", ""},
		"certificate of the CA":  {goodCert, goodKey},
		"certificate of another": {badCert, badKey},
	}
	tests := []struct {
		verify VerifyClient
		accept map[string]bool
	}{
		{VerifyNone, map[string]bool{"no certificate": true, "certificate of the CA": true, "certificate of another": true}},
		{VerifyOptional, map[string]bool{"no certificate": true, "certificate of the CA": true}},
		{VerifyRequired, map[string]bool{"certificate of the CA": true}},
	}
	for _, tt := range tests {
		t.Run(string(tt.verify), func(t *testing.T) {
			t.Parallel()
			cfg := Config{Listen: "127.0.0.1:0", CertFile: serverCert, KeyFile: serverKey, CAFile: ca.CAFile, VerifyClient: tt.verify}
			base := serveTLS(t, cfg, http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {}))
			for name, pair := range clients {
				code, err := get(clientFor(t, ca.CAFile, pair[0], pair[1]), base+"/primary")
				switch {
				case tt.accept[name] && (err != nil || code != http.StatusOK):
					t.Errorf("%s: refused (%d, %v), want accepted", name, code, err)
				case !tt.accept[name] && (err == nil || !strings.Contains(err.Error(), "tls:")):
					t.Errorf("%s: got (%d, %v), want the handshake refused", name, code, err)
				case !tt.accept[name]:
					t.Logf("%s: refused: %v", name, err)
				}
			}
		})
	}
}

// TestTLSServesRouter checks the whole path over TLS: the API router answers a health check,
// and a member's client built by ClientTLSConfig passes a required client verification.
func TestTLSServesRouter(t *testing.T) {
	t.Parallel()
	ca := newTestCA(t, "cluster")
	certFile, keyFile := ca.issue(t, "n1")
	cfg := Config{Listen: "127.0.0.1:0", CertFile: certFile, KeyFile: keyFile, CAFile: ca.CAFile, VerifyClient: VerifyRequired}
	base := serveTLS(t, cfg, NewRouter(routesOf(newNode(primary())), nil, nil, func() time.Time { return t0 }))

	memberTLS, err := cfg.ClientTLSConfig()
	if err != nil {
		t.Fatal(err)
	}
	if len(memberTLS.Certificates) != 1 || memberTLS.RootCAs == nil {
		t.Fatalf("member client config: %d certificates, roots %v", len(memberTLS.Certificates), memberTLS.RootCAs)
	}
	member := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{TLSClientConfig: memberTLS}}
	if code, err := get(member, base+"/primary"); err != nil || code != http.StatusOK {
		t.Fatalf("GET /primary over TLS: %d, %v", code, err)
	}
	old := &tls.Config{RootCAs: memberTLS.RootCAs, Certificates: memberTLS.Certificates, MaxVersion: tls.VersionTLS11}
	legacy := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{TLSClientConfig: old}}
	if _, err := get(legacy, base+"/primary"); err == nil {
		t.Fatal("a TLS 1.1 client was accepted")
	}
	plain := &http.Client{Timeout: 5 * time.Second}
	if code, err := get(plain, "http"+strings.TrimPrefix(base, "https")+"/primary"); err == nil && code == http.StatusOK {
		t.Fatal("plain HTTP was served on the TLS listener")
	}
}

func TestClientTLSConfig(t *testing.T) {
	t.Parallel()
	ca := newTestCA(t, "cluster")
	certFile, keyFile := ca.issue(t, "n1")
	tests := []struct {
		name      string
		cfg       Config
		nilConfig bool
		roots     bool
		certs     int
	}{
		{"plain http", Config{}, true, false, 0},
		{"tls, system roots", Config{CertFile: certFile, KeyFile: keyFile}, false, false, 0},
		{"ca only, for peers during a rollout", Config{CAFile: ca.CAFile}, false, true, 0},
		{"optional presents nothing", Config{CertFile: certFile, KeyFile: keyFile, CAFile: ca.CAFile, VerifyClient: VerifyOptional}, false, true, 0},
		{"required presents the node's certificate", Config{CertFile: certFile, KeyFile: keyFile, CAFile: ca.CAFile, VerifyClient: VerifyRequired}, false, true, 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got, err := tt.cfg.ClientTLSConfig()
			if err != nil {
				t.Fatal(err)
			}
			if tt.nilConfig {
				if got != nil {
					t.Fatalf("ClientTLSConfig() = %+v, want nil", got)
				}
				return
			}
			if got.MinVersion != tls.VersionTLS12 || (got.RootCAs != nil) != tt.roots || len(got.Certificates) != tt.certs {
				t.Errorf("min version %x, roots set %v, %d certificates; want TLS 1.2, %v, %d",
					got.MinVersion, got.RootCAs != nil, len(got.Certificates), tt.roots, tt.certs)
			}
		})
	}
}

func TestConfigValidateTLS(t *testing.T) {
	t.Parallel()
	ca := newTestCA(t, "cluster")
	certFile, keyFile := ca.issue(t, "n1")
	_, otherKey := ca.issue(t, "n2")
	garbage := filepath.Join(t.TempDir(), "garbage.pem")
	if err := os.WriteFile(garbage, []byte("not a certificate\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	missing := filepath.Join(t.TempDir(), "missing.pem")
	tests := []struct {
		name    string
		cfg     Config
		wantErr string // a substring of the error, "" for none
	}{
		{"tls off", Config{}, ""},
		{"tls on", Config{CertFile: certFile, KeyFile: keyFile}, ""},
		{"optional", Config{CertFile: certFile, KeyFile: keyFile, CAFile: ca.CAFile, VerifyClient: VerifyOptional}, ""},
		{"required", Config{CertFile: certFile, KeyFile: keyFile, CAFile: ca.CAFile, VerifyClient: VerifyRequired}, ""},
		{"none spelled out", Config{CertFile: certFile, KeyFile: keyFile, VerifyClient: VerifyNone}, ""},
		{"ca without tls trusts peers", Config{CAFile: ca.CAFile}, ""},
		{"cert without key", Config{CertFile: certFile}, "RAMD_API_CERTFILE=" + `"` + certFile + `" and RAMD_API_KEYFILE="" must be set together`},
		{"key without cert", Config{KeyFile: keyFile}, "must be set together"},
		{"optional without ca", Config{CertFile: certFile, KeyFile: keyFile, VerifyClient: VerifyOptional}, "RAMD_API_VERIFY_CLIENT=optional needs RAMD_API_CAFILE"},
		{"required without ca", Config{CertFile: certFile, KeyFile: keyFile, VerifyClient: VerifyRequired}, "RAMD_API_VERIFY_CLIENT=required needs RAMD_API_CAFILE"},
		{"required without tls", Config{CAFile: ca.CAFile, VerifyClient: VerifyRequired}, "RAMD_API_VERIFY_CLIENT=required needs TLS"},
		{"unknown policy", Config{CertFile: certFile, KeyFile: keyFile, CAFile: ca.CAFile, VerifyClient: "yes"}, `RAMD_API_VERIFY_CLIENT="yes", want none, optional or required`},
		{"missing cert file", Config{CertFile: missing, KeyFile: keyFile}, "RAMD_API_CERTFILE=" + `"` + missing + `"`},
		{"cert not pem", Config{CertFile: garbage, KeyFile: keyFile}, "load key pair"},
		{"key of another cert", Config{CertFile: certFile, KeyFile: otherKey}, "load key pair"},
		{"missing ca file", Config{CertFile: certFile, KeyFile: keyFile, CAFile: missing, VerifyClient: VerifyRequired}, "RAMD_API_CAFILE=" + `"` + missing + `": read CA bundle`},
		{"ca not pem", Config{CertFile: certFile, KeyFile: keyFile, CAFile: garbage, VerifyClient: VerifyOptional}, "no PEM certificate found"},
		{"ca not pem, tls off", Config{CAFile: garbage}, "RAMD_API_CAFILE"},
		{"auth reads without credentials", Config{AuthReads: true}, "RAMD_API_AUTH_READS=true needs"},
		{"auth reads with a token", Config{AuthReads: true, Token: "tok"}, ""},
		{"auth reads with basic auth", Config{AuthReads: true, Username: "u", Password: "p"}, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			cfg := tt.cfg
			cfg.Listen = "127.0.0.1:8008"
			switch err := cfg.Validate(); {
			case tt.wantErr == "" && err != nil:
				t.Errorf("Validate() = %v, want nil", err)
			case tt.wantErr == "":
			case err == nil || !strings.Contains(err.Error(), tt.wantErr) || !errors.Is(err, ErrInvalidConfig):
				t.Errorf("Validate() = %v, want an ErrInvalidConfig containing %q", err, tt.wantErr)
			}
		})
	}
}

func TestTLSConfigFromEnv(t *testing.T) {
	t.Parallel()
	var cfg Config
	env := map[string]string{
		"RAMD_API_CERTFILE":      "api.pem",
		"RAMD_API_KEYFILE":       "api-key.pem",
		"RAMD_API_CAFILE":        "ca.pem",
		"RAMD_API_VERIFY_CLIENT": "required",
		"RAMD_API_AUTH_READS":    "true",
	}
	if err := envconfig.ProcessWith(t.Context(), &envconfig.Config{Target: &cfg, Lookuper: envconfig.MapLookuper(env)}); err != nil {
		t.Fatal(err)
	}
	want := Config{Listen: "127.0.0.1:8008", CertFile: "api.pem", KeyFile: "api-key.pem", CAFile: "ca.pem", VerifyClient: VerifyRequired, AuthReads: true}
	if cfg != want {
		t.Errorf("got %+v, want %+v", cfg, want)
	}
	var def Config
	if err := envconfig.ProcessWith(t.Context(), &envconfig.Config{Target: &def, Lookuper: envconfig.MapLookuper(nil)}); err != nil {
		t.Fatal(err)
	}
	if def.VerifyClient != VerifyNone || def.AuthReads || def.TLSEnabled() {
		t.Errorf("defaults: %+v", def)
	}
}
