package deploy

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/ramd-project/ramd/test/testenv"
)

// readmeVariables reads the configuration table of the README (kept equal to ramd's struct
// tags and `ramd --help` by cmd/ramd's tests): variable -> default ("-" when none).
func readmeVariables(t *testing.T) map[string]string {
	t.Helper()
	b, err := os.ReadFile("../README.md")
	if err != nil {
		t.Fatal(err)
	}
	row := regexp.MustCompile("(?m)^\\| `([A-Z][A-Z0-9_]+)` \\| `?([^|`]*)`? \\|")
	vars := map[string]string{}
	for _, m := range row.FindAllStringSubmatch(string(b), -1) {
		vars[m[1]] = strings.TrimSpace(m[2])
	}
	if len(vars) < 40 || vars["RAMD_HANDOVER_WAIT"] == "" {
		t.Fatalf("README configuration table not found (%d rows)", len(vars))
	}
	return vars
}

// notRamd are variables the deployment files may name that ramd itself does not read:
// ramctrl's client TLS files and the build and test settings.
var notRamd = map[string]bool{
	"RAMD_API_CACERT": true, "RAMD_API_CERT": true, "RAMD_API_KEY": true, // ramctrl
	"RAMD_CACHE_DIR": true, "RAMD_CONSUL_BIN": true, "RAMD_NOMAD_BIN": true, // build scripts
	"RAMD_TEST_REQUIRE_REAL": true, "RAMD_PG_BIN_DIR_TEST": true,
}

var varName = regexp.MustCompile(`\b(?:RAMD|CONSUL)_[A-Z0-9_]*[A-Z0-9]\b`)

// TestVariablesKnown: every RAMD_* and CONSUL_* variable the unit, its environment file,
// the image, the Nomad job specs and the deployment guide use is one ramd knows.
func TestVariablesKnown(t *testing.T) {
	known := readmeVariables(t)
	files := []string{"ramd.service", "ramd.env", "Dockerfile", "../docs/DEPLOYMENT.md"}
	jobs, _ := filepath.Glob("../nomad/*.hcl")
	if len(jobs) == 0 {
		t.Fatal("no Nomad job specs found in ../nomad")
	}
	for _, f := range append(files, jobs...) {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		for _, name := range varName.FindAllString(string(b), -1) {
			if _, ok := known[name]; !ok && !notRamd[name] {
				t.Errorf("%s uses %s, which is not in ramd's configuration (README, ramd --help)", f, name)
			}
		}
	}
}

// envFile reads KEY=value lines.
func envFile(t *testing.T, path string) map[string]string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]string{}
	for _, line := range strings.Split(string(b), "\n") {
		line = strings.TrimSpace(line)
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		k, v, ok := strings.Cut(line, "=")
		if !ok {
			t.Fatalf("%s: not KEY=value: %q", path, line)
		}
		out[k] = v
	}
	return out
}

// unitSettings reads the [Service] keys of a unit file (the last value of each key).
func unitSettings(t *testing.T, path string) map[string]string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	out, section := map[string]string{}, ""
	for _, line := range strings.Split(string(b), "\n") {
		line = strings.TrimSpace(line)
		switch {
		case line == "" || strings.HasPrefix(line, "#"):
		case strings.HasPrefix(line, "["):
			section = line
		case section == "[Service]":
			k, v, _ := strings.Cut(line, "=")
			out[k] = v
		}
	}
	return out
}

// TestUnitSettings: the unit stops ramd the way its handover needs and restarts it on a
// crash, reading the environment file.
func TestUnitSettings(t *testing.T) {
	known := readmeVariables(t)
	u := unitSettings(t, "ramd.service")
	env := envFile(t, "ramd.env")
	want := map[string]string{
		"KillSignal":      "SIGTERM",
		"KillMode":        "mixed", // the postmaster is ramd's child: only ramd gets SIGTERM
		"Restart":         "on-failure",
		"EnvironmentFile": "/etc/ramd/ramd.env",
		"ExecStart":       "/usr/local/bin/ramd",
	}
	for k, v := range want {
		if u[k] != v {
			t.Errorf("%s=%q, want %q", k, u[k], v)
		}
	}
	wait := env["RAMD_HANDOVER_WAIT"]
	if wait == "" {
		wait = known["RAMD_HANDOVER_WAIT"]
	}
	hw, err := time.ParseDuration(wait)
	if err != nil {
		t.Fatalf("RAMD_HANDOVER_WAIT=%q: %v", wait, err)
	}
	stop, err := time.ParseDuration(u["TimeoutStopSec"])
	if err != nil {
		t.Fatalf("TimeoutStopSec=%q: %v", u["TimeoutStopSec"], err)
	}
	if stop < hw+10*time.Second {
		t.Errorf("TimeoutStopSec=%s leaves no room for RAMD_HANDOVER_WAIT=%s and PostgreSQL's shutdown", stop, hw)
	}
	for k, v := range env {
		if strings.HasSuffix(k, "_PASSWORD") || strings.HasSuffix(k, "_TOKEN") {
			if v != "" {
				t.Errorf("ramd.env is an example: %s must be empty, not a secret", k)
			}
		}
	}
	if _, ok := env["RAMD_DATA_DIR"]; !ok {
		t.Error("ramd.env sets no RAMD_DATA_DIR")
	}
}

// TestUnitVerify: systemd-analyze verify accepts the unit. It checks that ExecStart is
// executable, so the copy it reads names an existing binary there; nothing else changes.
func TestUnitVerify(t *testing.T) {
	bin, err := exec.LookPath("systemd-analyze")
	if err != nil {
		t.Skip("systemd-analyze not installed")
	}
	b, err := os.ReadFile("ramd.service")
	if err != nil {
		t.Fatal(err)
	}
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	unit := strings.Replace(string(b), "ExecStart=/usr/local/bin/ramd", "ExecStart="+self, 1)
	path := filepath.Join(t.TempDir(), "ramd.service")
	if err := os.WriteFile(path, []byte(unit), 0o644); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, bin, "verify", "--man=no", path).CombinedOutput()
	// Messages about the host's other units are not ours; any line naming ramd.service is.
	for _, line := range strings.Split(string(out), "\n") {
		if strings.Contains(line, "ramd.service") {
			t.Errorf("systemd-analyze verify: %s", line)
		}
	}
	if err != nil && !strings.Contains(string(out), "ramd.service") {
		t.Logf("systemd-analyze verify exited with %v about other units:\n%s", err, out)
	}
}

// TestDockerfile lints the image's Dockerfile (no Docker engine runs the tests): multi-stage,
// base images pinned to a release, a non-root user, a health check on /liveness, labels,
// SIGTERM, and no secret baked in.
func TestDockerfile(t *testing.T) {
	b, err := os.ReadFile("Dockerfile")
	if err != nil {
		t.Fatal(err)
	}
	src := string(b)
	// Join continued lines so each instruction is one line.
	src = regexp.MustCompile(`\\\n\s*`).ReplaceAllString(src, " ")
	args := map[string]string{}
	var froms, users, checks, labels, signals []string
	for _, line := range strings.Split(src, "\n") {
		f := strings.Fields(line)
		if len(f) == 0 || strings.HasPrefix(f[0], "#") {
			continue
		}
		rest := strings.TrimSpace(strings.TrimPrefix(line, f[0]))
		switch strings.ToUpper(f[0]) {
		case "ARG":
			k, v, _ := strings.Cut(rest, "=")
			args[k] = v
			if secretName(k) {
				t.Errorf("ARG %s: build arguments end up in the image history; no secrets", k)
			}
		case "ENV":
			for _, kv := range strings.Fields(rest) {
				if k, _, ok := strings.Cut(kv, "="); ok && secretName(k) {
					t.Errorf("ENV %s: a secret baked into the image", k)
				}
			}
		case "FROM":
			froms = append(froms, f[1])
		case "USER":
			users = append(users, f[1])
		case "HEALTHCHECK":
			checks = append(checks, rest)
		case "LABEL":
			labels = append(labels, rest)
		case "STOPSIGNAL":
			signals = append(signals, rest)
		}
	}
	if len(froms) < 2 {
		t.Errorf("%d FROM lines; want a build stage and a runtime stage", len(froms))
	}
	pinned := regexp.MustCompile(`^[a-z0-9./-]+(:[A-Za-z0-9._-]*\d+\.\d+[A-Za-z0-9._-]*)?(@sha256:[0-9a-f]{64})?$`)
	for _, from := range froms {
		image := from
		if strings.HasPrefix(from, "${") {
			image = args[strings.Trim(from, "${}")]
		}
		if image == "" || !pinned.MatchString(image) || (!strings.Contains(image, ":") && !strings.Contains(image, "@")) {
			t.Errorf("FROM %s (%s): pin the base image to a release (name:1.2...) or a digest", from, image)
		}
	}
	if len(users) == 0 || users[len(users)-1] == "root" || users[len(users)-1] == "0" {
		t.Errorf("USER %v: the image must end as an unprivileged user", users)
	}
	if len(checks) != 1 || !strings.Contains(checks[0], "/liveness") {
		t.Errorf("HEALTHCHECK %v: want one, on /liveness", checks)
	}
	if joined := strings.Join(labels, " "); !strings.Contains(joined, "org.opencontainers.image.source") || !strings.Contains(joined, "org.opencontainers.image.version") {
		t.Errorf("LABEL: want org.opencontainers.image.source and .version")
	}
	if len(signals) != 1 || signals[0] != "SIGTERM" {
		t.Errorf("STOPSIGNAL %v: ramd hands over on SIGTERM", signals)
	}
}

func secretName(k string) bool {
	k = strings.ToUpper(k)
	for _, s := range []string{"PASSWORD", "TOKEN", "SECRET"} {
		if strings.Contains(k, s) {
			return true
		}
	}
	return false
}

// TestHAProxyConfig: haproxy -c accepts the configuration, and it checks ramd's health
// endpoints on the API port.
func TestHAProxyConfig(t *testing.T) {
	b, err := os.ReadFile("haproxy.cfg")
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"option httpchk OPTIONS /primary", "option httpchk OPTIONS /replica", "check port 8008",
		"check-ssl verify required ca-file " + haproxyCAFile} {
		if !strings.Contains(string(b), want) {
			t.Errorf("haproxy.cfg lacks %q", want)
		}
	}
	// haproxy -c loads the CA file: check a copy that names a real one.
	dir := t.TempDir()
	ca := filepath.Join(dir, "ca.pem")
	if err := os.WriteFile(ca, testenv.NewCA(t).PEM, 0o600); err != nil {
		t.Fatal(err)
	}
	cfg := filepath.Join(dir, "haproxy.cfg")
	if err := os.WriteFile(cfg, []byte(strings.ReplaceAll(string(b), haproxyCAFile, ca)), 0o600); err != nil {
		t.Fatal(err)
	}
	bin := testenv.Binary(t, "haproxy", "haproxy")
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if out, err := exec.CommandContext(ctx, bin, "-c", "-f", cfg).CombinedOutput(); err != nil {
		t.Fatalf("haproxy -c: %v\n%s", err, out)
	}
}

// haproxyCAFile is where deploy/haproxy.cfg expects the CA of the members' API certificates.
const haproxyCAFile = "/etc/haproxy/ramd-api-ca.pem"

// TestProductionExampleSecure: the production example (ramd.env) has TLS and password
// authentication on every TCP connection ramd makes or accepts, and its secrets in files.
func TestProductionExampleSecure(t *testing.T) {
	env := envFile(t, "ramd.env")
	for _, k := range []string{
		"RAMD_PG_TLS_CERTFILE", "RAMD_PG_TLS_KEYFILE", "RAMD_PG_TLS_CAFILE", // PostgreSQL: hostssl only
		"RAMD_PG_TLS_REPLICATION_CERTFILE", "RAMD_PG_TLS_REPLICATION_KEYFILE",
		"RAMD_PG_SUPERUSER_PASSWORD_FILE", "RAMD_PG_REPLICATION_PASSWORD_FILE", // scram with these
		"RAMD_API_CERTFILE", "RAMD_API_KEYFILE", "RAMD_API_CAFILE", "RAMD_API_PASSWORD_FILE", // HTTPS and credentials
		"CONSUL_CACERT", "CONSUL_HTTP_TOKEN_FILE",
	} {
		if v := env[k]; !strings.HasPrefix(v, "/") {
			t.Errorf("ramd.env: %s=%q, want an absolute path", k, v)
		}
	}
	if env["CONSUL_HTTP_SSL"] != "true" {
		t.Errorf("ramd.env: CONSUL_HTTP_SSL=%q, want true", env["CONSUL_HTTP_SSL"])
	}
	if v := env["RAMD_PG_TLS_VERIFY"]; v != "" && v != "verify-full" {
		t.Errorf("ramd.env: RAMD_PG_TLS_VERIFY=%q; the example verifies names (verify-full)", v)
	}
}

// TestConsulFiles: the ACL policy is the one docs/ROUTING.md documents (which a unit test
// keeps equal to what routing renders), and the real Consul agent accepts the client
// agent's configuration.
func TestConsulFiles(t *testing.T) {
	policy, err := os.ReadFile("ramd-policy.hcl")
	if err != nil {
		t.Fatal(err)
	}
	doc, err := os.ReadFile("../docs/ROUTING.md")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(doc), "```hcl\n"+string(policy)+"```") {
		t.Errorf("deploy/ramd-policy.hcl differs from the policy in docs/ROUTING.md")
	}
	bin := testenv.ConsulBinary(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if out, err := exec.CommandContext(ctx, bin, "validate", "consul-client.hcl").CombinedOutput(); err != nil {
		t.Fatalf("consul validate: %v\n%s", err, out)
	}
}
