package main

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net/http"
	"os"
)

// apiTransport is the transport of ramctrl's API client, configured from the environment:
// https URLs verify the member's certificate against RAMD_API_CACERT (the system pool when
// unset), and RAMD_API_CERT with RAMD_API_KEY is presented to members that ask for client
// certificates (RAMD_API_VERIFY_CLIENT). A file that does not load fails every request with
// the reason, so the command reports it.
func apiTransport() http.RoundTripper { return transportFrom(os.Getenv) }

func transportFrom(getenv func(string) string) http.RoundTripper {
	cfg, err := clientTLS(getenv)
	if err != nil {
		return failedTransport{err}
	}
	t := http.DefaultTransport.(*http.Transport).Clone()
	t.TLSClientConfig = cfg
	return t
}

// clientTLS reads RAMD_API_CACERT, RAMD_API_CERT and RAMD_API_KEY (PEM files).
func clientTLS(getenv func(string) string) (*tls.Config, error) {
	cfg := &tls.Config{MinVersion: tls.VersionTLS12} // ramd accepts nothing older
	if path := getenv("RAMD_API_CACERT"); path != "" {
		b, err := os.ReadFile(path)
		if err != nil {
			return nil, fmt.Errorf("RAMD_API_CACERT: %w", err)
		}
		cfg.RootCAs = x509.NewCertPool()
		if !cfg.RootCAs.AppendCertsFromPEM(b) {
			return nil, fmt.Errorf("RAMD_API_CACERT=%q: no PEM certificate found", path)
		}
	}
	certFile, keyFile := getenv("RAMD_API_CERT"), getenv("RAMD_API_KEY")
	if (certFile == "") != (keyFile == "") {
		return nil, errors.New("RAMD_API_CERT and RAMD_API_KEY must be set together")
	}
	if certFile != "" {
		cert, err := tls.LoadX509KeyPair(certFile, keyFile)
		if err != nil {
			return nil, fmt.Errorf("RAMD_API_CERT=%q, RAMD_API_KEY=%q: %w", certFile, keyFile, err)
		}
		cfg.Certificates = []tls.Certificate{cert}
	}
	return cfg, nil
}

// failedTransport answers every request with the error that kept the TLS settings from
// loading.
type failedTransport struct{ err error }

// RoundTrip returns the configuration error.
func (f failedTransport) RoundTrip(*http.Request) (*http.Response, error) { return nil, f.err }
