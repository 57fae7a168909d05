// Package arch checks the import rules of the layout (the house rules a linter's depguard would
// keep): which packages may import Consul's API, pgx, Gin, and which must stay pure.
package arch

import (
	"bytes"
	"context"
	"os/exec"
	"slices"
	"strings"
	"testing"
	"time"
)

const module = "github.com/ramd-project/ramd"

// pkg is one package's direct imports, of its code and of its tests.
type pkg struct{ code, tests []string }

// imports lists every package of the module with its direct imports.
func imports(t *testing.T) map[string]pkg {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "go", "list", "-f", `{{.ImportPath}}|{{join .Imports " "}}|{{join .TestImports " "}} {{join .XTestImports " "}}`, module+"/...")
	cmd.Dir = "../.."
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	if err := cmd.Run(); err != nil {
		t.Fatalf("go list: %v\n%s", err, errb.String())
	}
	m := map[string]pkg{}
	for _, line := range strings.Split(strings.TrimSpace(out.String()), "\n") {
		f := strings.Split(line, "|")
		if len(f) == 3 {
			m[f[0]] = pkg{code: strings.Fields(f[1]), tests: strings.Fields(f[2])}
		}
	}
	return m
}

func TestImportRules(t *testing.T) {
	t.Parallel()
	rules := []struct {
		dep     string   // an import path prefix
		allowed []string // package path prefixes (relative to the module) that may import it
		tests   []string // packages whose tests (only) may import it too
	}{
		{"github.com/hashicorp/consul/api", []string{"consul", "routing", "test/", "api"}, nil}, // api: tests seed Consul directly
		// daemon/backup's tests count the rows a restore brought back.
		{"github.com/jackc/pgx/v5", []string{"daemon/pg", "test/"}, []string{"daemon/backup"}},
		{"github.com/gin-gonic/gin", []string{"api"}, nil},
	}
	pkgs := imports(t)
	if len(pkgs) < 10 {
		t.Fatalf("go list found only %d packages", len(pkgs))
	}
	for path, p := range pkgs {
		rel := strings.TrimPrefix(strings.TrimPrefix(path, module), "/")
		for i, d := range append(p.code, p.tests...) {
			for _, r := range rules {
				if !strings.HasPrefix(d, r.dep) {
					continue
				}
				ok := i >= len(p.code) && slices.Contains(r.tests, rel)
				for _, a := range r.allowed {
					ok = ok || rel == strings.TrimSuffix(a, "/") || strings.HasPrefix(rel, a)
				}
				if !ok {
					t.Errorf("%s imports %s; only %v may", rel, d, r.allowed)
				}
			}
		}
	}
	// The decision and the configuration schema are pure: the standard library (no I/O
	// packages), each other and a pure parser or two only.
	io := []string{"net", "os", "os/exec", "net/http", "database/sql", "io/fs"}
	pureDeps := []string{"github.com/robfig/cron/v3"} // cron expressions of backup schedules
	for _, pure := range []string{"daemon/ha", "daemon/dynconf", "daemon/syncstandby"} {
		for _, d := range pkgs[module+"/"+pure].code {
			if strings.HasPrefix(d, module) && d != module+"/daemon/ha" {
				t.Errorf("%s imports %s; it may import only the standard library and daemon/ha", pure, d)
			}
			if strings.Contains(d, ".") && !strings.HasPrefix(d, module) && !slices.Contains(pureDeps, d) {
				t.Errorf("%s imports %s; it may import only the standard library", pure, d)
			}
			for _, bad := range io {
				if d == bad {
					t.Errorf("%s imports %s: pure packages do no I/O", pure, d)
				}
			}
		}
	}
}
