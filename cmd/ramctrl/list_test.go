package main

import (
	"bytes"
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/ramd-project/ramd/api/client"
)

func TestRenderTable(t *testing.T) {
	full := loadFixture(t)
	tests := []struct {
		name string
		in   client.Cluster
		want string
	}{
		{
			name: "fixture: sorted by name, titled roles, lag in MB, maintenance mode",
			in:   full,
			want: `Cluster: demo
Member  Host           Role          State      TL  Lag in MB
n1      10.0.0.1:5432  Leader        running    3   -
n2      10.0.0.2:5432  Sync Standby  streaming  3   0
n3      10.0.0.3:5432  Replica       streaming  3   0
n4      -              Replica       stopped    -   -
n5      10.0.0.5:5433  Replica       streaming  2   2
Maintenance mode: on
`,
		},
		{
			name: "no members",
			in:   client.Cluster{Scope: "empty"},
			want: "Cluster: empty\nMember  Host  Role  State  TL  Lag in MB\n",
		},
		{
			name: "host without port, standby leader, large lag",
			in: client.Cluster{Scope: "s", Members: []client.Member{
				{Name: "b", Role: "standby_leader", State: "running", Host: "h", Timeline: 7},
				{Name: "a", Role: "replica", State: "streaming", Host: "h", Port: 1, Lag: &client.Lag{Bytes: 5767168}},
			}},
			want: `Cluster: s
Member  Host  Role            State      TL  Lag in MB
a       h:1   Replica         streaming  -   6
b       h     Standby Leader  running    7   -
`,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var buf bytes.Buffer
			if err := renderTable(&buf, tt.in); err != nil {
				t.Fatal(err)
			}
			if got := buf.String(); got != tt.want {
				t.Errorf("got:\n%s\nwant:\n%s", got, tt.want)
			}
		})
	}
}

func TestParseAPIURLs(t *testing.T) {
	tests := []struct {
		in      string
		want    []string
		wantErr bool
	}{
		{in: "http://127.0.0.1:8008", want: []string{"http://127.0.0.1:8008"}},
		{in: "127.0.0.1:8008/, http://127.0.0.1:8009", want: []string{"http://127.0.0.1:8008", "http://127.0.0.1:8009"}},
		{in: " , ", wantErr: true},
		{in: "ftp://x", wantErr: true},
	}
	for _, tt := range tests {
		got, err := parseAPIURLs(tt.in)
		if (err != nil) != tt.wantErr {
			t.Errorf("parseAPIURLs(%q) error = %v, wantErr %v", tt.in, err, tt.wantErr)
			continue
		}
		if strings.Join(got, "|") != strings.Join(tt.want, "|") {
			t.Errorf("parseAPIURLs(%q) = %v, want %v", tt.in, got, tt.want)
		}
	}
}

// TestRunList checks the fallback to the next URL, both outputs and the exit codes.
func TestRunList(t *testing.T) {
	srv := startAPI(t, "n1")
	srv.setCluster(fixtureCluster(t))
	down := httptest.NewServer(http.NotFoundHandler())
	downURL := down.URL
	down.Close()

	tests := []struct {
		name      string
		args      []string
		env       string
		code      int
		stdoutHas string
		stderrHas string
	}{
		{name: "table via fallback", args: []string{"list", "--api", downURL + "," + srv.URL}, code: exitOK, stdoutHas: "Sync Standby"},
		{name: "json from env", args: []string{"list", "--output", "json"}, env: srv.URL, code: exitOK, stdoutHas: `"scope": "demo"`},
		{name: "nothing answers", args: []string{"list", "--api", downURL}, code: exitError, stderrHas: "ramctrl: no ramd API answered at " + downURL},
		{name: "bad output", args: []string{"list", "--output", "yaml"}, code: exitUsage, stderrHas: "--output"},
		{name: "bad flag", args: []string{"list", "--nope"}, code: exitUsage},
		{name: "no command", args: nil, code: exitUsage, stderrHas: "Usage:"},
		{name: "unknown command", args: []string{"frob"}, code: exitUsage, stderrHas: `unknown command "frob"`},
		{name: "client version", args: []string{"version", "--client"}, code: exitOK, stdoutHas: "ramctrl "},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var stdout, stderr bytes.Buffer
			code := run(context.Background(), tt.args, tt.env, &stdout, &stderr)
			if code != tt.code {
				t.Errorf("exit code %d, want %d (stderr: %s)", code, tt.code, stderr.String())
			}
			if !strings.Contains(stdout.String(), tt.stdoutHas) {
				t.Errorf("stdout %q lacks %q", stdout.String(), tt.stdoutHas)
			}
			if !strings.Contains(stderr.String(), tt.stderrHas) {
				t.Errorf("stderr %q lacks %q", stderr.String(), tt.stderrHas)
			}
		})
	}
}
