package api

import (
	"errors"
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
