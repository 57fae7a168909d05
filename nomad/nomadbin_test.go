package nomad

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// NomadVersion is the only Nomad release the tests run: v1.6.2, the last openly licensed
// (MPL-2.0) one, built by scripts/build-nomad.sh.
const NomadVersion = "1.6.2"

// nomadBinary returns $RAMD_NOMAD_BIN, else the agent scripts/build-nomad.sh caches, and
// checks its version; "" when there is none.
func nomadBinary(t *testing.T) string {
	t.Helper()
	bin := os.Getenv("RAMD_NOMAD_BIN")
	if bin == "" {
		root := os.Getenv("RAMD_CACHE_DIR")
		if root == "" {
			cache, err := os.UserCacheDir()
			if err != nil {
				return ""
			}
			root = filepath.Join(cache, "ramd")
		}
		bin = filepath.Join(root, "nomad-"+NomadVersion, "nomad")
		if _, err := os.Stat(bin); err != nil {
			return ""
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, bin, "version").Output()
	if err != nil || !strings.HasPrefix(string(out), "Nomad v"+NomadVersion+"\n") {
		t.Fatalf("%s is not Nomad v%s (%v): %s", bin, NomadVersion, err, out)
	}
	return bin
}

// TestJobsFormatted: `nomad fmt -check` accepts every HCL file here, when the agent has been
// built (make nomad); otherwise it is skipped, as `make test` does not build it.
func TestJobsFormatted(t *testing.T) {
	bin := nomadBinary(t)
	if bin == "" {
		t.Skip("no Nomad v" + NomadVersion + " binary (make nomad builds it; or set RAMD_NOMAD_BIN)")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if out, err := exec.CommandContext(ctx, bin, "fmt", "-check", "-recursive", ".").CombinedOutput(); err != nil {
		t.Fatalf("nomad fmt -check: %v\n%s", err, out)
	}
}
