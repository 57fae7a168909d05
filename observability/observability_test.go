package observability

import (
	"bytes"
	"encoding/json"
	"errors"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/sethvargo/go-envconfig"
)

func TestConfigValidate(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name     string
		cfg      Config
		wantErrs []string // substrings the error must contain, none for a valid config
	}{
		{"defaults", Config{LogFormat: "text", LogLevel: "info"}, nil},
		{"json debug", Config{LogFormat: "json", LogLevel: "debug"}, nil},
		{"warn", Config{LogFormat: "text", LogLevel: "warn"}, nil},
		{"error", Config{LogFormat: "text", LogLevel: "error"}, nil},
		{"case is ignored", Config{LogFormat: "JSON", LogLevel: "Info"}, nil},
		{"bad format", Config{LogFormat: "xml", LogLevel: "info"},
			[]string{`RAMD_LOG_FORMAT="xml", want "text" or "json"`}},
		{"bad level", Config{LogFormat: "text", LogLevel: "verbose"},
			[]string{`RAMD_LOG_LEVEL="verbose", want one of debug, info, warn, error`}},
		{"warning is not a level", Config{LogFormat: "text", LogLevel: "warning"},
			[]string{`RAMD_LOG_LEVEL="warning"`}},
		{"both bad", Config{},
			[]string{`RAMD_LOG_FORMAT=""`, `RAMD_LOG_LEVEL=""`}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			err := tt.cfg.Validate()
			if len(tt.wantErrs) == 0 {
				if err != nil {
					t.Fatalf("Validate() = %v, want nil", err)
				}
				return
			}
			if err == nil {
				t.Fatal("Validate() = nil, want an error")
			}
			if !errors.Is(err, ErrInvalidConfig) {
				t.Errorf("Validate() = %v, want it to wrap ErrInvalidConfig", err)
			}
			for _, want := range tt.wantErrs {
				if !strings.Contains(err.Error(), want) {
					t.Errorf("Validate() = %q, want it to contain %q", err, want)
				}
			}
		})
	}
}

func TestConfigFromEnv(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		env  map[string]string
		want Config
	}{
		{"defaults", nil, Config{LogFormat: "text", LogLevel: "info"}},
		{"set", map[string]string{"RAMD_LOG_FORMAT": "json", "RAMD_LOG_LEVEL": "debug"},
			Config{LogFormat: "json", LogLevel: "debug"}},
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
			if cfg != tt.want {
				t.Errorf("config = %+v, want %+v", cfg, tt.want)
			}
			if err := cfg.Validate(); err != nil {
				t.Errorf("Validate() = %v", err)
			}
		})
	}
}

func TestNewLogger(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name      string
		cfg       Config
		wantDebug bool
		wantInfo  bool
		wantWarn  bool
		json      bool
	}{
		{"text info", Config{LogFormat: "text", LogLevel: "info"}, false, true, true, false},
		{"text debug", Config{LogFormat: "text", LogLevel: "debug"}, true, true, true, false},
		{"json warn", Config{LogFormat: "json", LogLevel: "warn"}, false, false, true, true},
		{"json error", Config{LogFormat: "json", LogLevel: "error"}, false, false, false, true},
		{"uppercase", Config{LogFormat: "JSON", LogLevel: "DEBUG"}, true, true, true, true},
		{"invalid falls back to text info", Config{LogFormat: "xml", LogLevel: "loud"}, false, true, true, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			var buf bytes.Buffer
			logger := NewLogger(tt.cfg, &buf)
			logger.Debug("debug line", "node", "n1")
			logger.Info("info line", "node", "n1")
			logger.Warn("warn line", "node", "n1")

			out := buf.String()
			for msg, want := range map[string]bool{
				"debug line": tt.wantDebug, "info line": tt.wantInfo, "warn line": tt.wantWarn,
			} {
				if got := strings.Contains(out, msg); got != want {
					t.Errorf("%q written = %v, want %v; output:\n%s", msg, got, want, out)
				}
			}
			for line := range strings.Lines(out) {
				var rec map[string]any
				isJSON := json.Unmarshal([]byte(line), &rec) == nil
				if isJSON != tt.json {
					t.Errorf("line %q: JSON = %v, want %v", line, isJSON, tt.json)
				}
				if isJSON && rec["node"] != "n1" {
					t.Errorf("line %q: node attribute missing", line)
				}
				if !isJSON && !strings.Contains(line, "node=n1") {
					t.Errorf("line %q: node attribute missing", line)
				}
			}
		})
	}
}

func TestNewRegistry(t *testing.T) {
	t.Parallel()
	reg := NewRegistry()
	families, err := reg.Gather()
	if err != nil {
		t.Fatalf("gather: %v", err)
	}
	names := map[string]bool{}
	for _, f := range families {
		names[f.GetName()] = true
	}
	for _, want := range []string{"go_goroutines", "go_memstats_alloc_bytes", "process_start_time_seconds"} {
		if !names[want] {
			t.Errorf("%s missing from the registry", want)
		}
	}
	if NewRegistry() == reg {
		t.Error("NewRegistry returned a shared registry")
	}
	problems, err := testutil.GatherAndLint(reg)
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range problems {
		t.Errorf("lint %s: %s", p.Metric, p.Text)
	}
}
