package main

import (
	"bytes"
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/ramd-project/ramd/api/client"
	"github.com/ramd-project/ramd/daemon"
)

func TestRenderTable(t *testing.T) {
	full := loadFixture(t)
	sec := 1.5
	zero := 0.0
	withLag := client.Cluster{Scope: "s", Members: []client.Member{
		{Name: "a", Role: "leader", State: "running", Host: "h", Port: 1, Timeline: 2},
		{Name: "b", Role: "sync_standby", State: "streaming", Host: "h", Port: 2, Timeline: 2, Lag: &client.Lag{Bytes: 1 << 20}, LagSeconds: &sec,
			PendingRestart: true, ScheduledRestart: &client.MemberRestart{Schedule: "2026-12-01T03:00:00+00:00"}, Tags: map[string]any{"nosync": false, "clonefrom": true}},
		{Name: "c", Role: "replica", State: "in archive recovery", Host: "h", Port: 3, Timeline: 2, Lag: &client.Lag{}, LagSeconds: &zero},
	}, ScheduledSwitchover: &client.ScheduledSwitchover{At: "2026-12-02T03:00:00+00:00", From: "a", To: "b", JobID: "17"}}
	tests := []struct {
		name     string
		in       client.Cluster
		extended bool
		format   string
		want     string
	}{
		{
			name: "fixture: sorted by name, titled roles, lag in MB, maintenance mode",
			in:   full,
			want: `Cluster: demo
Member  Host           Role          State      TL  Lag in MB  Lag in s  Pending restart
n1      10.0.0.1:5432  Leader        running    3   -          -
n2      10.0.0.2:5432  Sync Standby  streaming  3   0          -         *
n3      10.0.0.3:5432  Replica       streaming  3   0          -
n4      -              Replica       stopped    -   -          -
n5      10.0.0.5:5433  Replica       streaming  2   2          -
Maintenance mode: on
`,
		},
		{
			name: "no members",
			in:   client.Cluster{Scope: "empty"},
			want: "Cluster: empty\nMember  Host  Role  State  TL  Lag in MB  Lag in s\n",
		},
		{
			name: "host without port, standby leader, large lag",
			in: client.Cluster{Scope: "s", Members: []client.Member{
				{Name: "b", Role: "standby_leader", State: "running", Host: "h", Timeline: 7},
				{Name: "a", Role: "replica", State: "streaming", Host: "h", Port: 1, Lag: &client.Lag{Bytes: 5767168}},
			}},
			want: `Cluster: s
Member  Host  Role            State      TL  Lag in MB  Lag in s
a       h:1   Replica         streaming  -   6          -
b       h     Standby Leader  running    7   -          -
`,
		},
		{
			name: "lag in seconds, scheduled switchover and restart",
			in:   withLag,
			want: `Cluster: s
Member  Host  Role          State                TL  Lag in MB  Lag in s  Pending restart  Scheduled restart
a       h:1   Leader        running              2   -          -
b       h:2   Sync Standby  streaming            2   1          1.5       *                2026-12-01T03:00:00+00:00
c       h:3   Replica       in archive recovery  2   0          0.0
Switchover scheduled at: 2026-12-02T03:00:00+00:00
                   from: a
                     to: b
                    job: 17
`,
		},
		{
			name:     "extended",
			in:       withLag,
			extended: true,
			want: `Cluster: s
Member  Host  Role          State                TL  Lag in MB  Lag in s  Pending restart  Scheduled restart          Tags
a       h:1   Leader        running              2   -          -
b       h:2   Sync Standby  streaming            2   1          1.5       *                2026-12-01T03:00:00+00:00  clonefrom: true, nosync: false
c       h:3   Replica       in archive recovery  2   0          0.0
Switchover scheduled at: 2026-12-02T03:00:00+00:00
                   from: a
                     to: b
                    job: 17
`,
		},
		{
			name:   "tsv: the table alone",
			in:     withLag,
			format: formatTSV,
			want: "Member\tHost\tRole\tState\tTL\tLag in MB\tLag in s\tPending restart\tScheduled restart\n" +
				"a\th:1\tLeader\trunning\t2\t-\t-\t\t\n" +
				"b\th:2\tSync Standby\tstreaming\t2\t1\t1.5\t*\t2026-12-01T03:00:00+00:00\n" +
				"c\th:3\tReplica\tin archive recovery\t2\t0\t0.0\t\t\n",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var buf bytes.Buffer
			format := tt.format
			if err := renderTable(&formatWriter{w: &buf, format: &format}, tt.in, tt.extended); err != nil {
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
		{name: "bad output", args: []string{"list", "--output", "xml"}, code: exitUsage, stderrHas: "--output"},
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

// TestListAsTheLeaderSees: a member that is not the leader has no time lag to show; list asks
// the leader, whose pg_stat_replication measured it.
func TestListAsTheLeaderSees(t *testing.T) {
	srv := startAPI(t, "n2", "n1")
	srv.setCluster([]daemon.MemberStatus{member("n1", client.RoleLeader), withState(member("n2", client.RoleReplica), "streaming")}, false)
	lag := 2 * time.Second
	n1 := srv.nodes["n1"]
	n1.mu.Lock()
	st := *n1.status
	st.Role, st.HasLock, st.Leader, st.WALLocation = daemon.RolePrimary, true, "n1", leaderOptime
	st.Replication = []daemon.Replica{{ApplicationName: "n2", State: "streaming", ReplayLSN: leaderOptime - 10, ReplayLag: &lag}}
	n1.status = &st
	n1.mu.Unlock()

	var stdout, stderr bytes.Buffer
	if code := run(context.Background(), []string{"list", "--api", srv.URL}, "", &stdout, &stderr); code != exitOK {
		t.Fatalf("exit %d: %s", code, stderr.String())
	}
	if !strings.Contains(stdout.String(), "streaming  3   0          2.0") {
		t.Errorf("no lag in seconds from the leader:\n%s", stdout.String())
	}
	if log := srv.log(); !strings.Contains(log, "GET /cluster") || !strings.Contains(log, "GET /n1/cluster") {
		t.Errorf("requests:\n%s", log)
	}
}

// TestListFormats: -o, -f and --format choose json, yaml or tsv; -e adds columns.
func TestListFormats(t *testing.T) {
	srv := startAPI(t, "n1")
	srv.setCluster(fixtureCluster(t))
	tests := []struct {
		args []string
		has  string
		not  string
	}{
		{[]string{"-o", "json"}, `"scope": "demo"`, "Cluster:"},
		{[]string{"-f", "yaml"}, "scope: demo\n", "{"},
		{[]string{"--format", "tsv"}, "n1\t10.0.0.1:5432\tLeader\trunning\t3\t-\t-\t\n", "Cluster:"},
		{[]string{"--format=pretty", "-e"}, "Pending restart", "\t"},
		{[]string{"--extended"}, "nofailover: true", ""},
	}
	for _, tt := range tests {
		t.Run(strings.Join(tt.args, " "), func(t *testing.T) {
			var stdout, stderr bytes.Buffer
			if code := run(context.Background(), append([]string{"list", "--api", srv.URL}, tt.args...), "", &stdout, &stderr); code != exitOK {
				t.Fatalf("exit %d: %s", code, stderr.String())
			}
			if !strings.Contains(stdout.String(), tt.has) || (tt.not != "" && strings.Contains(stdout.String(), tt.not)) {
				t.Errorf("output lacks %q or has %q:\n%s", tt.has, tt.not, stdout.String())
			}
		})
	}
}

// withState sets a member's replication state (and so its state in /cluster).
func withState(m daemon.MemberStatus, rs string) daemon.MemberStatus {
	m.State, m.ReplicationState = "running", rs
	return m
}

// TestListLastBackup: list says how old the leader's newest good backup is.
func TestListLastBackup(t *testing.T) {
	srv := startAPI(t, "n1")
	srv.setCluster([]daemon.MemberStatus{member("n1", client.RoleLeader)}, false)
	n1 := srv.nodes["n1"]
	var stdout, stderr bytes.Buffer
	if code := run(context.Background(), []string{"list", "--api", srv.URL}, "", &stdout, &stderr); code != exitOK || strings.Contains(stdout.String(), "Last backup") {
		t.Errorf("without a backup tool: exit %d\n%s", code, stdout.String())
	}
	done := time.Now().Add(-3 * time.Hour)
	n1.mu.Lock()
	st := *n1.status
	st.Backup = daemon.BackupStatus{Tool: "pgbackrest", Figures: daemon.BackupFigures{LastSuccess: map[string]time.Time{"full": done}}}
	n1.status = &st
	n1.mu.Unlock()
	stdout.Reset()
	if code := run(context.Background(), []string{"list", "--api", srv.URL}, "", &stdout, &stderr); code != exitOK ||
		!strings.Contains(stdout.String(), "Last backup: 3h0m0s ago, "+done.UTC().Format(time.RFC3339)+" (pgbackrest)") {
		t.Errorf("with a backup: exit %d\n%s", code, stdout.String())
	}
}
