package main

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"regexp"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/sethvargo/go-envconfig"
)

func baseEnv() map[string]string {
	return map[string]string{
		"RAMD_NAME":     "n1",
		"RAMD_DATA_DIR": "/var/lib/ramd/data",
	}
}

func TestLoadConfigDefaults(t *testing.T) {
	t.Parallel()
	c, err := loadConfig(context.Background(), envconfig.MapLookuper(baseEnv()))
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Validate(); err != nil {
		t.Fatalf("defaults do not validate: %v", err)
	}
	if c.Node.Scope != "ramd" || c.Node.Namespace != "service" || c.Node.TTL != 3*time.Second || c.Node.LoopWait != time.Second {
		t.Errorf("unexpected defaults: %+v", c.Node)
	}
	if c.Node.APIURL != "http://127.0.0.1:8008" {
		t.Errorf("APIURL default %q", c.Node.APIURL)
	}
	if c.Consul.Addr != "127.0.0.1:8500" || c.PG.Port != 5432 {
		t.Errorf("consul %q, pg port %d", c.Consul.Addr, c.PG.Port)
	}
}

func TestValidateRejects(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		env  map[string]string
		want string // a fragment of the message: the variable and the rule
	}{
		{"fencing inequality", map[string]string{"RAMD_TTL": "2s", "RAMD_LOOP_WAIT": "1s", "RAMD_RETRY_TIMEOUT": "1s", "RAMD_FENCE_MARGIN": "1s"}, "RAMD_TTL=2s"},
		{"margin below minimum", map[string]string{"RAMD_FENCE_MARGIN": "100ms"}, "fence margin 100ms is below the minimum"},
		{"zero lock delay", map[string]string{"RAMD_LOCK_DELAY": "0s"}, "RAMD_LOCK_DELAY=0s"},
		{"session ttl below consul floor", map[string]string{"RAMD_SESSION_TTL": "5s"}, "RAMD_SESSION_TTL=5s"},
		{"bad scope", map[string]string{"RAMD_SCOPE": "has space"}, `RAMD_SCOPE="has space"`},
		{"bad name", map[string]string{"RAMD_NAME": "-x"}, `RAMD_NAME="-x"`},
		{"bad port", map[string]string{"RAMD_PG_PORT": "70000"}, "RAMD_PG_PORT"},
		{"relative data dir", map[string]string{"RAMD_DATA_DIR": "data"}, "RAMD_DATA_DIR"},
		{"bad api url", map[string]string{"RAMD_API_URL": "ftp://x"}, "RAMD_API_URL"},
		{"bad failover priority", map[string]string{"RAMD_TAGS": "failover_priority:high"}, "failover_priority"},
		{"bad nofailover", map[string]string{"RAMD_TAGS": "nofailover:perhaps"}, "nofailover"},
		{"bad log format", map[string]string{"RAMD_LOG_FORMAT": "xml"}, "RAMD_LOG_FORMAT"},
		{"bad service name", map[string]string{"RAMD_SERVICE_NAME": "Has_Upper"}, "RAMD_SERVICE_NAME"},
		{"max start failures", map[string]string{"RAMD_PG_MAX_START_FAILURES": "0"}, "RAMD_PG_MAX_START_FAILURES"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			env := baseEnv()
			for k, v := range tt.env {
				env[k] = v
			}
			c, err := loadConfig(context.Background(), envconfig.MapLookuper(env))
			if err == nil {
				err = c.Validate()
			}
			if err == nil {
				t.Fatalf("accepted %v", tt.env)
			}
			if !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("error %q does not contain %q", err, tt.want)
			}
		})
	}
}

func TestParseErrorNamesVariable(t *testing.T) {
	t.Parallel()
	env := baseEnv()
	env["RAMD_TTL"] = "three seconds"
	_, err := loadConfig(context.Background(), envconfig.MapLookuper(env))
	if err == nil || !strings.Contains(err.Error(), "RAMD_TTL") {
		t.Fatalf("error %v does not name RAMD_TTL", err)
	}
}

// TestRunExitsTwoOnBadConfig runs the real entry point: a bad value stops ramd with exit
// code 2 and a message, before anything is touched.
func TestRunExitsTwoOnBadConfig(t *testing.T) {
	t.Setenv("RAMD_DATA_DIR", "/nonexistent/ramd-test")
	t.Setenv("RAMD_NAME", "n1")
	t.Setenv("RAMD_TTL", "1s")
	var out, errb bytes.Buffer
	if code := run(nil, &out, &errb); code != exitConfig {
		t.Fatalf("exit code %d, want %d (stderr %q)", code, exitConfig, errb.String())
	}
	if !strings.Contains(errb.String(), "RAMD_TTL=1s") {
		t.Fatalf("stderr %q does not name the variable", errb.String())
	}
	if _, err := os.Stat("/nonexistent/ramd-test"); err == nil {
		t.Fatal("data dir was created")
	}
}

func TestHelpListsEveryVariable(t *testing.T) {
	t.Parallel()
	var out bytes.Buffer
	if code := run([]string{"--help"}, &out, &out); code != 0 {
		t.Fatalf("--help exit %d", code)
	}
	for _, v := range Variables() {
		if !strings.Contains(out.String(), v.Name) {
			t.Errorf("--help lacks %s", v.Name)
		}
		if descriptions[v.Name] == "" {
			t.Errorf("%s has no description", v.Name)
		}
	}
	if len(descriptions) != len(Variables()) {
		t.Errorf("%d descriptions for %d variables", len(descriptions), len(Variables()))
	}
}

var (
	readmeRow = regexp.MustCompile("^\\| `([A-Z_]+)` \\| ([^|]*) \\| (.*) \\|$")
	helpRow   = regexp.MustCompile(`^  ([A-Z][A-Z0-9_]*)\s{2,}(\S+)\s{2,}(.*)$`)
)

// TestReadmeTableMatchesHelp keeps the README's configuration table equal to what
// `ramd --help` prints, row by row: the same variables, defaults ("(required)" for a
// required one) and meanings; --help itself is made from the struct tags.
func TestReadmeTableMatchesHelp(t *testing.T) {
	t.Parallel()
	b, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	readme := map[string][2]string{}
	for _, line := range strings.Split(string(b), "\n") {
		if m := readmeRow.FindStringSubmatch(line); m != nil {
			readme[m[1]] = [2]string{strings.Trim(strings.TrimSpace(m[2]), "`"), strings.TrimSpace(m[3])}
		}
	}
	var out bytes.Buffer
	if code := run([]string{"--help"}, &out, &out); code != 0 {
		t.Fatalf("--help exit %d", code)
	}
	help := map[string][2]string{}
	_, table, _ := strings.Cut(out.String(), "Environment variables")
	for _, line := range strings.Split(table, "\n") {
		if m := helpRow.FindStringSubmatch(line); m != nil && m[1] != "VARIABLE" {
			help[m[1]] = [2]string{m[2], strings.TrimSpace(m[3])}
		}
	}
	if len(help) != len(Variables()) {
		t.Fatalf("--help shows %d variables, the code reads %d", len(help), len(Variables()))
	}
	var problems []string
	for k, h := range help {
		r, ok := readme[k]
		switch {
		case !ok:
			problems = append(problems, k+" missing from README")
		case r[0] != h[0]:
			problems = append(problems, fmt.Sprintf("%s: README's default %q, --help's %q", k, r[0], h[0]))
		case r[1] != h[1]:
			problems = append(problems, fmt.Sprintf("%s: README says %q, --help %q", k, r[1], h[1]))
		}
	}
	for k := range readme {
		if _, ok := help[k]; !ok {
			problems = append(problems, k+" in README but not read by ramd")
		}
	}
	sort.Strings(problems)
	for _, p := range problems {
		t.Error(p)
	}
}

// TestRequiredVariables: a required variable says so in --help, and leaving it out names it.
func TestRequiredVariables(t *testing.T) {
	t.Parallel()
	var required []string
	for _, v := range Variables() {
		if v.Required {
			required = append(required, v.Name)
		}
	}
	if strings.Join(required, ",") != "RAMD_DATA_DIR" {
		t.Errorf("required variables %v, want RAMD_DATA_DIR", required)
	}
	env := baseEnv()
	delete(env, "RAMD_DATA_DIR")
	_, err := loadConfig(context.Background(), envconfig.MapLookuper(env))
	if err == nil || !strings.HasPrefix(err.Error(), "RAMD_DATA_DIR is required: PostgreSQL data directory") {
		t.Errorf("without RAMD_DATA_DIR: %v", err)
	}
}

// TestErrorsNameWhatTheUserSet: every message names the variable the user set, not one
// ramd derived from it, and not the Go field.
func TestErrorsNameWhatTheUserSet(t *testing.T) {
	t.Parallel()
	tests := []struct {
		env     map[string]string
		want    string
		mustNot []string
	}{
		{map[string]string{"RAMD_DATA_DIR": "data"}, `RAMD_DATA_DIR="data": must be an absolute path`, []string{"RAMD_PG_LOG_FILE"}},
		{map[string]string{"RAMD_PG_LISTEN": "bad!host"}, `RAMD_PG_LISTEN="bad!host"`, []string{"RAMD_PG_CONNECT_ADDRESS"}},
		{map[string]string{"RAMD_PG_LOG_FILE": "pg.log"}, `RAMD_PG_LOG_FILE="pg.log": must be an absolute path`, nil},
		{map[string]string{"RAMD_TTL": "three"}, `RAMD_TTL="three": time: invalid duration`, []string{"Node:", "TTL:"}},
		{map[string]string{"RAMD_SYNCHRONOUS_MODE": "always"}, `RAMD_SYNCHRONOUS_MODE="always"`, nil},
		{map[string]string{"RAMD_SYNCHRONOUS_NODE_COUNT": "0"}, `RAMD_SYNCHRONOUS_NODE_COUNT=0`, nil},
		{map[string]string{"RAMD_API_OPEN": "true", "RAMD_API_TOKEN": "t"}, `RAMD_API_OPEN=true`, nil},
	}
	for _, tt := range tests {
		env := baseEnv()
		for k, v := range tt.env {
			env[k] = v
		}
		c, err := loadConfig(context.Background(), envconfig.MapLookuper(env))
		if err == nil {
			err = c.Validate()
		}
		if err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%v: error %v, want %q", tt.env, err, tt.want)
			continue
		}
		for _, bad := range tt.mustNot {
			if strings.Contains(err.Error(), bad) {
				t.Errorf("%v: error %q names %s", tt.env, err, bad)
			}
		}
	}
}

// TestSyncFromEnvironment: the synchronous settings of the environment are the bootstrap's.
func TestSyncFromEnvironment(t *testing.T) {
	t.Parallel()
	env := baseEnv()
	env["RAMD_SYNCHRONOUS_MODE"], env["RAMD_SYNCHRONOUS_NODE_COUNT"] = "quorum", "2"
	c, err := loadConfig(context.Background(), envconfig.MapLookuper(env))
	if err == nil {
		err = c.Validate()
	}
	if err != nil || c.Node.SynchronousMode != "quorum" || c.Node.SynchronousNodeCount != 2 {
		t.Errorf("%+v, %v", c.Node, err)
	}
}
