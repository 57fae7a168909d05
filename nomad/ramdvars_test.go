package nomad

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"
)

// variable is one environment variable ramd reads, as `ramd --help` lists it.
type variable struct {
	Default  string // "" when none
	Required bool
}

var (
	ramdOnce sync.Once
	ramdBin  string // built once per test binary
	ramdErr  error
)

// ramdBinary builds cmd/ramd of the enclosing repository (this module's parent) once.
func ramdBinary(t *testing.T) string {
	t.Helper()
	ramdOnce.Do(func() {
		dir, err := os.MkdirTemp("", "ramd-nomad-test-")
		if err != nil {
			ramdErr = err
			return
		}
		ramdBin = filepath.Join(dir, "ramd")
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
		defer cancel()
		cmd := exec.CommandContext(ctx, "go", "build", "-o", ramdBin, "./cmd/ramd")
		cmd.Dir = ".."
		// The parent module has its own go.mod; this module's settings must not leak in.
		cmd.Env = append(os.Environ(), "GOFLAGS=", "GOWORK=off")
		if out, err := cmd.CombinedOutput(); err != nil {
			ramdErr = fmt.Errorf("build ramd: %w\n%s", err, out)
		}
	})
	if ramdErr != nil {
		t.Fatal(ramdErr)
	}
	return ramdBin
}

// helpLine matches a row of the variable table of `ramd --help`: name, default, meaning.
var helpLine = regexp.MustCompile(`^\s+([A-Z][A-Z0-9_]*)\s{2,}(\S+)`)

// parseHelp reads the variable table of `ramd --help`.
func parseHelp(out string) map[string]variable {
	vars := map[string]variable{}
	_, table, _ := strings.Cut(out, "Environment variables")
	for _, line := range strings.Split(table, "\n") {
		m := helpLine.FindStringSubmatch(line)
		if m == nil || m[1] == "VARIABLE" {
			continue
		}
		v := variable{Default: m[2]}
		switch m[2] {
		case "-":
			v.Default = ""
		case "(required)":
			v.Default, v.Required = "", true
		}
		vars[m[1]] = v
	}
	return vars
}

// ramdVariables is the variable table of `ramd --help`, the same source ramd's README table
// is checked against.
func ramdVariables(t *testing.T) map[string]variable {
	t.Helper()
	bin := ramdBinary(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, bin, "--help").Output()
	if err != nil {
		t.Fatalf("ramd --help: %v", err)
	}
	vars := parseHelp(string(out))
	for _, want := range []string{"RAMD_DATA_DIR", "RAMD_HANDOVER_WAIT", "CONSUL_HTTP_ADDR"} {
		if _, ok := vars[want]; !ok {
			t.Fatalf("ramd --help lists no %s; has its table changed shape?\n%s", want, out)
		}
	}
	return vars
}

func TestParseHelp(t *testing.T) {
	out := "Usage: ...\n\nEnvironment variables (OTEL_* too):\n" +
		"  VARIABLE          DEFAULT     MEANING\n" +
		"  RAMD_SCOPE        ramd        cluster name\n" +
		"  RAMD_DATA_DIR     (required)  data directory\n" +
		"  RAMD_NAME         -           member name\n"
	got := parseHelp(out)
	want := map[string]variable{
		"RAMD_SCOPE":    {Default: "ramd"},
		"RAMD_DATA_DIR": {Required: true},
		"RAMD_NAME":     {},
	}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("parseHelp = %v, want %v", got, want)
	}
}
