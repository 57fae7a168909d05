package api

import (
	"errors"
	"log/slog"
	"strings"
	"testing"

	"github.com/sethvargo/go-envconfig"
)

func TestConfigValidate(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		listen  string
		wantErr string // a substring of the error, "" for none
	}{
		{"default", "127.0.0.1:8008", ""},
		{"all addresses", ":8008", ""},
		{"ipv6", "[::1]:8008", ""},
		{"host name", "db1.example.internal:8008", ""},
		{"any free port", "127.0.0.1:0", ""},
		{"no port", "127.0.0.1", `RAMD_API_LISTEN="127.0.0.1", want host:port`},
		{"empty", "", `RAMD_API_LISTEN="", want host:port`},
		{"named port", "127.0.0.1:http", `RAMD_API_LISTEN="127.0.0.1:http", want a numeric port in 0-65535`},
		{"port too large", "127.0.0.1:65536", "want a numeric port in 0-65535"},
		{"empty port", "127.0.0.1:", "want a numeric port in 0-65535"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			err := Config{Listen: tt.listen}.Validate()
			if tt.wantErr == "" {
				if err != nil {
					t.Fatalf("Validate() = %v, want nil", err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("Validate() = %v, want an error containing %q", err, tt.wantErr)
			}
			if !errors.Is(err, ErrInvalidConfig) {
				t.Errorf("Validate() = %v, want it to wrap ErrInvalidConfig", err)
			}
		})
	}
}

func TestConfigFromEnv(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		env  map[string]string
		want string
	}{
		{"default", nil, "127.0.0.1:8008"},
		{"set", map[string]string{"RAMD_API_LISTEN": "0.0.0.0:8009"}, "0.0.0.0:8009"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			var cfg Config
			if err := envconfig.ProcessWith(t.Context(), &envconfig.Config{
				Target:   &cfg,
				Lookuper: envconfig.MapLookuper(tt.env),
			}); err != nil {
				t.Fatal(err)
			}
			if cfg.Listen != tt.want {
				t.Errorf("Listen = %q, want %q", cfg.Listen, tt.want)
			}
			if err := cfg.Validate(); err != nil {
				t.Errorf("Validate() = %v", err)
			}
		})
	}
}

func TestNewServer(t *testing.T) {
	t.Parallel()
	srv := NewServer(Config{Listen: "127.0.0.1:8008"}, nil)
	if srv.Addr != "127.0.0.1:8008" {
		t.Errorf("Addr = %q", srv.Addr)
	}
	for name, d := range map[string]int64{
		"ReadHeaderTimeout": int64(srv.ReadHeaderTimeout),
		"ReadTimeout":       int64(srv.ReadTimeout),
		"WriteTimeout":      int64(srv.WriteTimeout),
		"IdleTimeout":       int64(srv.IdleTimeout),
	} {
		if d <= 0 {
			t.Errorf("%s is not set", name)
		}
	}
	if srv.ReadHeaderTimeout > srv.ReadTimeout {
		t.Errorf("ReadHeaderTimeout %v exceeds ReadTimeout %v", srv.ReadHeaderTimeout, srv.ReadTimeout)
	}
}

func TestOpenWarning(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name  string
		cfg   Config
		ok    bool
		level slog.Level
		has   string
	}{
		{"credentials", Config{Listen: "0.0.0.0:8008", Username: "u", Password: "p"}, false, 0, ""},
		{"token", Config{Listen: "10.0.0.1:8008", Token: "t"}, false, 0, ""},
		{"loopback, not acknowledged", Config{Listen: "127.0.0.1:8008"}, true, slog.LevelWarn, "RAMD_API_OPEN=true"},
		{"loopback, acknowledged", Config{Listen: "127.0.0.1:8008", Open: true}, false, 0, ""},
		{"ipv6 loopback, acknowledged", Config{Listen: "[::1]:8008", Open: true}, false, 0, ""},
		{"localhost, acknowledged", Config{Listen: "localhost:8008", Open: true}, false, 0, ""},
		{"every address, acknowledged", Config{Listen: ":8008", Open: true}, true, slog.LevelError, "reachable from other hosts"},
		{"a network address", Config{Listen: "10.0.0.1:8008"}, true, slog.LevelError, "listen on 10.0.0.1:8008"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			level, msg, ok := tt.cfg.OpenWarning()
			if ok != tt.ok || level != tt.level || !strings.Contains(msg, tt.has) {
				t.Errorf("OpenWarning() = %v, %q, %v; want %v, %q, %v", level, msg, ok, tt.level, tt.has, tt.ok)
			}
		})
	}
	if err := (Config{Listen: "127.0.0.1:8008", Open: true, Token: "t"}).Validate(); err == nil || !strings.Contains(err.Error(), "RAMD_API_OPEN=true") {
		t.Errorf("RAMD_API_OPEN with a token: %v", err)
	}
}
