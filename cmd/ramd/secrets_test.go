package main

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/sethvargo/go-envconfig"
)

// TestSecretsFromFiles: every password and the API token can come from a file; a variable
// and its _FILE variant together, or a file that cannot be read, is a configuration error
// naming the variable and never the secret.
func TestSecretsFromFiles(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	file := func(name, content string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	env := baseEnv()
	env["RAMD_PG_HBA_ALLOW"] = "10.0.0.0/8"
	env["RAMD_PG_SUPERUSER_PASSWORD_FILE"] = file("su", "su-secret\n")
	env["RAMD_PG_REPLICATION_PASSWORD_FILE"] = file("rep", "rep-secret\n")
	env["RAMD_API_USERNAME"] = "admin"
	env["RAMD_API_PASSWORD_FILE"] = file("api", "api-secret")
	env["RAMD_API_TOKEN_FILE"] = file("token", "token-secret\n")
	c, err := loadConfig(context.Background(), envconfig.MapLookuper(env))
	if err == nil {
		err = c.Validate()
	}
	if err != nil {
		t.Fatal(err)
	}
	if c.PG.SuperuserPassword != "su-secret" || c.PG.ReplicationPassword != "rep-secret" ||
		c.API.Password != "api-secret" || c.API.Token != "token-secret" {
		t.Errorf("secrets not read from their files: %+v %+v", c.PG, c.API)
	}

	for name, extra := range map[string]map[string]string{
		"both set":     {"RAMD_API_TOKEN": "inline-secret", "RAMD_API_TOKEN_FILE": file("t2", "file-secret")},
		"missing file": {"RAMD_PG_SUPERUSER_PASSWORD_FILE": filepath.Join(dir, "absent")},
		"empty file":   {"RAMD_PG_REPLICATION_PASSWORD_FILE": file("empty", "\n")},
	} {
		env := baseEnv()
		for k, v := range extra {
			env[k] = v
		}
		_, err := loadConfig(context.Background(), envconfig.MapLookuper(env))
		if err == nil || !strings.Contains(err.Error(), "_FILE") {
			t.Errorf("%s: %v; want an error naming the _FILE variable", name, err)
		} else if strings.Contains(err.Error(), "secret") {
			t.Errorf("%s: the error shows a secret: %v", name, err)
		}
	}
}

// TestRunExitsTwoWithoutPasswordsBeyondLoopback: RAMD_PG_HBA_ALLOW naming a network
// without both passwords stops ramd with exit code 2 before anything is touched.
func TestRunExitsTwoWithoutPasswordsBeyondLoopback(t *testing.T) {
	t.Setenv("RAMD_DATA_DIR", "/nonexistent/ramd-test")
	t.Setenv("RAMD_NAME", "n1")
	t.Setenv("RAMD_PG_HBA_ALLOW", "127.0.0.1/32,192.168.0.0/16")
	t.Setenv("RAMD_PG_SUPERUSER_PASSWORD", "only-this-one")
	var out, errb bytes.Buffer
	if code := run(nil, &out, &errb); code != exitConfig {
		t.Fatalf("exit code %d, want %d (stderr %q)", code, exitConfig, errb.String())
	}
	msg := errb.String()
	if !strings.Contains(msg, "RAMD_PG_HBA_ALLOW") || !strings.Contains(msg, "RAMD_PG_REPLICATION_PASSWORD") {
		t.Fatalf("stderr %q does not name the variables", msg)
	}
	if strings.Contains(msg, "only-this-one") {
		t.Fatalf("stderr shows the password: %q", msg)
	}
	if _, err := os.Stat("/nonexistent/ramd-test"); err == nil {
		t.Fatal("data dir was created")
	}
}
