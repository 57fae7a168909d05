package api

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"time"
)

// Server timeouts. Health checks are tiny and answered from memory, so the read side can be
// strict; the write side leaves room for admin calls that wait for the HA loop (Patroni's
// switchover reply polls for up to 2 × max(10 s, loop_wait)).
const (
	// readHeaderTimeout bounds slow-loris clients; a health checker sends its headers at once.
	readHeaderTimeout = 5 * time.Second
	// readTimeout bounds reading a whole request; bodies are small JSON documents.
	readTimeout = 10 * time.Second
	// writeTimeout bounds one handler plus its reply, above the longest admin wait.
	writeTimeout = 60 * time.Second
	// idleTimeout closes kept-alive connections of checkers that went away; HAProxy and
	// Consul check every few seconds, so two minutes keeps their connections warm.
	idleTimeout = 120 * time.Second
	// maxHeaderBytes is ample for any health check or ramctrl request.
	maxHeaderBytes = 64 << 10
)

// minTLSVersion is the oldest TLS version the API and its member client accept: 1.0 and 1.1
// are deprecated (RFC 8996), and every HAProxy, Consul and curl in use speaks 1.2.
const minTLSVersion = tls.VersionTLS12

// NewServer returns the HTTP server for cfg.Listen serving h, with every timeout set. The
// caller sets TLSConfig from cfg.TLSConfig when TLS is on, then runs Serve and Shutdown.
func NewServer(cfg Config, h http.Handler) *http.Server {
	return &http.Server{
		Addr:              cfg.Listen,
		Handler:           h,
		ReadHeaderTimeout: readHeaderTimeout,
		ReadTimeout:       readTimeout,
		WriteTimeout:      writeTimeout,
		IdleTimeout:       idleTimeout,
		MaxHeaderBytes:    maxHeaderBytes,
	}
}

// Serve serves srv on ln: HTTPS when srv.TLSConfig is set, plain HTTP otherwise. It returns
// what http.Server.Serve returns, http.ErrServerClosed after Shutdown.
func Serve(srv *http.Server, ln net.Listener) error {
	if srv.TLSConfig != nil {
		return srv.ServeTLS(ln, "", "") // the certificate is in TLSConfig
	}
	return srv.Serve(ln)
}

// TLSConfig returns the API listener's TLS configuration, nil when TLS is off: the key pair
// of RAMD_API_CERTFILE and RAMD_API_KEYFILE, TLS 1.2 or later, and the client certificate
// policy of RAMD_API_VERIFY_CLIENT against the CAs of RAMD_API_CAFILE. The files are read
// once, here: replacing them takes effect when ramd restarts.
func (c Config) TLSConfig() (*tls.Config, error) {
	if !c.TLSEnabled() {
		return nil, nil
	}
	cert, err := c.keyPair()
	if err != nil {
		return nil, err
	}
	cfg := &tls.Config{MinVersion: minTLSVersion, Certificates: []tls.Certificate{cert}}
	switch c.VerifyClient {
	case VerifyOptional:
		cfg.ClientAuth = tls.VerifyClientCertIfGiven
	case VerifyRequired:
		cfg.ClientAuth = tls.RequireAndVerifyClientCert
	default:
		return cfg, nil
	}
	if cfg.ClientCAs, err = c.caPool(); err != nil {
		return nil, err
	}
	return cfg, nil
}

// ClientTLSConfig returns the TLS configuration this member uses to call other members'
// APIs, nil when neither TLS nor RAMD_API_CAFILE is set (the default client then applies).
// It trusts RAMD_API_CAFILE, or the system pool when unset, and presents this node's own
// certificate when RAMD_API_VERIFY_CLIENT=required, so that certificate must allow client
// authentication as well as server authentication. The files are read once, here.
func (c Config) ClientTLSConfig() (*tls.Config, error) {
	if !c.TLSEnabled() && c.CAFile == "" {
		return nil, nil
	}
	cfg := &tls.Config{MinVersion: minTLSVersion}
	if c.CAFile != "" {
		pool, err := c.caPool()
		if err != nil {
			return nil, err
		}
		cfg.RootCAs = pool
	}
	if c.VerifyClient == VerifyRequired {
		cert, err := c.keyPair()
		if err != nil {
			return nil, err
		}
		cfg.Certificates = []tls.Certificate{cert}
	}
	return cfg, nil
}

func (c Config) keyPair() (tls.Certificate, error) {
	cert, err := tls.LoadX509KeyPair(c.CertFile, c.KeyFile)
	if err != nil {
		return cert, fmt.Errorf("RAMD_API_CERTFILE=%q, RAMD_API_KEYFILE=%q: load key pair: %w", c.CertFile, c.KeyFile, err)
	}
	return cert, nil
}

func (c Config) caPool() (*x509.CertPool, error) {
	pool, err := loadCAFile(c.CAFile)
	if err != nil {
		return nil, fmt.Errorf("RAMD_API_CAFILE=%q: %w", c.CAFile, err)
	}
	return pool, nil
}

// loadCAFile reads a PEM bundle into a certificate pool; a file without any certificate is
// an error, since an empty pool would refuse every peer without saying why.
func loadCAFile(path string) (*x509.CertPool, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read CA bundle: %w", err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(b) {
		return nil, errors.New("read CA bundle: no PEM certificate found")
	}
	return pool, nil
}
