package api

import (
	"net/http"
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

// NewServer returns the HTTP server for cfg.Listen serving h, with every timeout set. The
// caller runs ListenAndServe and Shutdown.
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
