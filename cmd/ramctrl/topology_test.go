package main

import (
	"bytes"
	"context"
	"encoding/json"
	"regexp"
	"strings"
	"testing"

	"github.com/ramd-project/ramd/api/client"
)

// tm builds a member of /cluster; upstream "" means no replicatefrom tag.
func tm(name, role, upstream string) client.Member {
	m := client.Member{Name: name, Role: role, State: "streaming", Host: "10.0.0.1", Port: 5432, Timeline: 4, Lag: &client.Lag{}}
	if isLeaderRole(role) {
		m.State, m.Lag = "running", nil
	}
	if upstream != "" {
		m.Tags = map[string]any{"replicatefrom": upstream}
	}
	return m
}

func TestRenderTopology(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		members []client.Member
		want    string
	}{
		{
			name: "cascade, unknown upstream and self reference go under the leader",
			members: []client.Member{
				tm("n4", "replica", "n3"), tm("n2", "sync_standby", ""), tm("n3", "replica", "n2"),
				tm("n1", "leader", ""), tm("n5", "replica", "gone"), tm("n6", "replica", "n6"),
			},
			want: `Cluster: demo
Member    Host           Role          State      TL  Lag in MB
n1        10.0.0.1:5432  Leader        running    4   -
+ n2      10.0.0.1:5432  Sync Standby  streaming  4   0
  + n3    10.0.0.1:5432  Replica       streaming  4   0
    + n4  10.0.0.1:5432  Replica       streaming  4   0
+ n5      10.0.0.1:5432  Replica       streaming  4   0
+ n6      10.0.0.1:5432  Replica       streaming  4   0
`,
		},
		{
			name:    "a replicatefrom cycle is not lost",
			members: []client.Member{tm("a", "replica", "b"), tm("b", "replica", "a"), tm("l", "standby_leader", "")},
			want: `Cluster: demo
Member  Host           Role            State      TL  Lag in MB
l       10.0.0.1:5432  Standby Leader  running    4   -
+ a     10.0.0.1:5432  Replica         streaming  4   0
  + b   10.0.0.1:5432  Replica         streaming  4   0
`,
		},
		{
			name:    "no leader: replicas at the top",
			members: []client.Member{tm("b", "replica", ""), tm("a", "replica", "b")},
			want: `Cluster: demo
Member  Host           Role     State      TL  Lag in MB
b       10.0.0.1:5432  Replica  streaming  4   0
+ a     10.0.0.1:5432  Replica  streaming  4   0
`,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			var buf bytes.Buffer
			if err := renderTopology(&buf, topology{Scope: "demo", Members: buildTopology(tt.members)}); err != nil {
				t.Fatal(err)
			}
			if got := buf.String(); got != tt.want {
				t.Errorf("got:\n%s\nwant:\n%s", got, tt.want)
			}
		})
	}
}

// TestRunTopology renders the list fixture through the command, as a table and as JSON.
func TestRunTopology(t *testing.T) {
	t.Parallel()
	srv := startAPI(t, "n1")
	srv.setCluster(fixtureCluster(t))
	var out, errb bytes.Buffer
	if code := run(context.Background(), []string{"topology", "--api", srv.URL}, "", &out, &errb); code != exitOK {
		t.Fatalf("exit %d: %s", code, errb.String())
	}
	lines := strings.Split(out.String(), "\n")
	if len(lines) < 4 || !strings.HasPrefix(lines[2], "n1 ") || !strings.HasPrefix(lines[3], "+ n2 ") || !strings.Contains(out.String(), "Maintenance mode: on") {
		t.Errorf("table:\n%s", out.String())
	}
	out.Reset()
	if code := run(context.Background(), []string{"topology", "--api", srv.URL, "--output", "json"}, "", &out, &errb); code != exitOK {
		t.Fatalf("json: exit %d: %s", code, errb.String())
	}
	var got topology
	if err := json.Unmarshal(out.Bytes(), &got); err != nil {
		t.Fatalf("%v:\n%s", err, out.String())
	}
	if got.Scope != "demo" || len(got.Members) != 1 || got.Members[0].Name != "n1" || len(got.Members[0].Replicas) != 4 {
		t.Errorf("json: %s", out.String())
	}
	if r := got.Members[0].Replicas[3]; r.Name != "n5" || r.Lag == nil || *r.Lag != (client.Lag{Bytes: 2621440}) || r.Port != 5433 {
		t.Errorf("n5 in json: %+v", r)
	}
}

// cancelOnWrite cancels a context once the output contains want.
type cancelOnWrite struct {
	bytes.Buffer
	want   string
	cancel context.CancelFunc
}

func (w *cancelOnWrite) Write(p []byte) (int, error) {
	n, err := w.Buffer.Write(p)
	if strings.Contains(w.String(), w.want) {
		w.cancel()
	}
	return n, err
}

// TestTopologyWatch: --watch redraws until interrupted, each round stamped with the time.
func TestTopologyWatch(t *testing.T) {
	srv := startAPI(t, "n1")
	srv.setCluster(fixtureCluster(t))
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	out := &cancelOnWrite{want: "Member", cancel: cancel}
	var stderr bytes.Buffer
	if code := run(ctx, []string{"topology", "-W", "--api", srv.URL}, "", out, &stderr); code != exitOK {
		t.Fatalf("exit %d: %s", code, stderr.String())
	}
	if !regexp.MustCompile(`^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\nCluster: demo\n`).MatchString(out.String()) {
		t.Errorf("output:\n%s", out.String())
	}
}
