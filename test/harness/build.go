package harness

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
)

// BuildTags are the build tags of ramd's binaries: nomsgpack leaves out gin's MessagePack
// codec (ramd speaks JSON only), 3 MB of code whose initialisation every process paid in
// resident memory.
const BuildTags = "nomsgpack"

// BuildRamd compiles cmd/ramd into dir and returns the binary's path. Call it once from
// TestMain.
func BuildRamd(dir string) (string, error) {
	out, err := exec.Command("go", "list", "-m", "-f", "{{.Dir}}").Output()
	if err != nil {
		return "", fmt.Errorf("find module root: %w", err)
	}
	root := strings.TrimSpace(string(out))
	bin := filepath.Join(dir, "ramd")
	// The guard program goes next to ramd, as an installation puts it: ramd starts it for
	// every primary's fence guard.
	for _, b := range []struct{ out, pkg string }{{bin, "./cmd/ramd"}, {filepath.Join(dir, "ramd-fence"), "./cmd/ramd-fence"}} {
		// As make build and the container image build it: static, without gin's msgpack codec.
		cmd := exec.Command("go", "build", "-tags", BuildTags, "-o", b.out, b.pkg)
		cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
		cmd.Dir = root
		cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
		if err := cmd.Run(); err != nil {
			return "", fmt.Errorf("build %s: %w", b.pkg, err)
		}
	}
	return bin, nil
}
