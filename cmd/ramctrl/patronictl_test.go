package main

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ramd-project/ramd/api/client"
	"github.com/ramd-project/ramd/daemon"
)

// threeMembers serves n1 (leader), n2 (sync standby) and n3 (replica, stopped).
func threeMembers(t *testing.T) *apiServer {
	t.Helper()
	srv := startAPI(t, "n1", "n2", "n3")
	n2 := member("n2", client.RoleSyncStandby)
	n2.Host, n2.Port = "10.0.0.2", 5433
	n3 := member("n3", client.RoleReplica)
	n3.Host, n3.State = "10.0.0.3", "stopped"
	srv.setCluster([]daemon.MemberStatus{member("n1", client.RoleLeader), n2, n3}, false)
	return srv
}

// ctl runs ramctrl against srv with stdin.
func ctl(srv *apiServer, stdin string, args ...string) (int, string, string) {
	var stdout, stderr bytes.Buffer
	a := append([]string{args[0], "--api", srv.URL}, args[1:]...)
	code := runWithStdin(context.Background(), a, strings.NewReader(stdin), &stdout, &stderr)
	return code, stdout.String(), stderr.String()
}

func TestDSN(t *testing.T) {
	srv := threeMembers(t)
	tests := []struct {
		args []string
		code int
		out  string
	}{
		{[]string{"dsn"}, exitOK, "host=10.0.0.1 port=5432\n"},
		{[]string{"dsn", "-r", "sync"}, exitOK, "host=10.0.0.2 port=5433\n"},
		{[]string{"dsn", "--role", "replica"}, exitOK, "host=10.0.0.2 port=5433\n"},
		{[]string{"dsn", "-m", "n3"}, exitOK, "host=10.0.0.3 port=5432\n"},
		{[]string{"dsn", "--member", "n9"}, exitError, ""},
		{[]string{"dsn", "--role", "boss"}, exitUsage, ""},
	}
	for _, tt := range tests {
		t.Run(strings.Join(tt.args, " "), func(t *testing.T) {
			code, out, errs := ctl(srv, "", tt.args...)
			if code != tt.code || out != tt.out {
				t.Errorf("exit %d, %q (%s); want %d, %q", code, out, errs, tt.code, tt.out)
			}
		})
	}
}

// TestQueryRunsPsql checks the psql command line query builds, with a psql that prints its
// arguments (the integration suite runs the real one against a live cluster).
func TestQueryRunsPsql(t *testing.T) {
	srv := threeMembers(t)
	dir := t.TempDir()
	script := filepath.Join(dir, "psql")
	outFile := filepath.Join(dir, "args")
	if err := os.WriteFile(script, []byte("#!/bin/sh\nfor a in \"$@\"; do printf '%s\\n' \"$a\"; done > "+outFile+"\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct {
		args []string
		want string
	}{
		{[]string{"-c", "SELECT 1", "-r", "sync", "-U", "app", "-d", "my db"},
			"--no-psqlrc\n--set\nON_ERROR_STOP=1\n--dbname\nhost=10.0.0.2 port=5433 dbname='my db' user=app\n--command\nSELECT 1\n"},
		{[]string{"--file", "x.sql", "-o", "tsv"},
			"--no-psqlrc\n--set\nON_ERROR_STOP=1\n--dbname\nhost=10.0.0.1 port=5432 dbname=postgres\n--no-align\n--field-separator=\t\n--pset\nfooter=off\n--file\nx.sql\n"},
	} {
		code, _, errs := ctl(srv, "", append([]string{"query", "--psql", script}, tt.args...)...)
		got, _ := os.ReadFile(outFile)
		if code != exitOK || string(got) != tt.want {
			t.Errorf("%v: exit %d (%s), psql got:\n%s\nwant:\n%s", tt.args, code, errs, got, tt.want)
		}
	}
	for _, bad := range [][]string{{"query"}, {"query", "-c", "x", "--file", "y"}, {"query", "-c", "x", "-o", "json"}} {
		if code, _, _ := ctl(srv, "", bad...); code != exitUsage {
			t.Errorf("%v: exit %d, want %d", bad, code, exitUsage)
		}
	}
}

func TestFlush(t *testing.T) {
	srv := threeMembers(t)
	srv.nodes["n2"].scheduled = true
	code, out, errs := ctl(srv, "", "flush", "restart", "--role", "replica", "--force")
	if code != exitOK || out != "Success: flush scheduled restart for member n2\nn3: no restart was scheduled\n" {
		t.Errorf("flush restart: exit %d\n%s%s", code, out, errs)
	}
	if log := srv.log(); !strings.Contains(log, "DELETE /n2/restart") || !strings.Contains(log, "DELETE /n3/restart") || strings.Contains(log, "DELETE /restart") {
		t.Errorf("requests:\n%s", log)
	}
	// patronictl's order (members, then the target), with a confirmation.
	srv.nodes["n1"].scheduled = true
	if code, out, _ := ctl(srv, "y\n", "flush", "demo", "n1", "restart"); code != exitOK || !strings.Contains(out, "member n1") {
		t.Errorf("flush n1 restart: exit %d %s", code, out)
	}
	if code, _, _ := ctl(srv, "n\n", "flush", "restart"); code != exitError {
		t.Errorf("flush refused at the prompt: exit %d", code)
	}
	if code, out, _ := ctl(srv, "", "flush", "switchover"); code != exitOK || out != "No pending switchover\n" {
		t.Errorf("flush switchover: exit %d %q", code, out)
	}
	for _, bad := range [][]string{{"flush"}, {"flush", "switchover", "n1"}, {"flush", "restart", "--role", "boss"}} {
		if code, _, _ := ctl(srv, "", bad...); code != exitUsage {
			t.Errorf("%v: exit %d, want %d", bad, code, exitUsage)
		}
	}
}

func TestPauseWords(t *testing.T) {
	srv := threeMembers(t)
	if code, out, _ := ctl(srv, "", "pause"); code != exitOK || out != "Success: cluster management is paused\n" {
		t.Errorf("pause: %d %q", code, out)
	}
	if code, out, _ := ctl(srv, "", "resume", "-o", "json"); code != exitOK || !strings.Contains(out, "{") {
		t.Errorf("resume -o json: %d %q", code, out)
	}
}

func TestRemoveUsage(t *testing.T) {
	for _, args := range [][]string{{"remove"}, {"remove", "a", "b"}, {"remove", "/"}} {
		var stdout, stderr bytes.Buffer
		if code := runWithStdin(context.Background(), args, strings.NewReader(""), &stdout, &stderr); code != exitUsage {
			t.Errorf("%v: exit %d, want %d", args, code, exitUsage)
		}
	}
}

// TestCompletion: the bash script is valid bash, offers every command, and each command's
// flags come from its own flag set.
func TestCompletion(t *testing.T) {
	var stdout, stderr bytes.Buffer
	if code := run(context.Background(), []string{"completion", "bash"}, "", &stdout, &stderr); code != exitOK {
		t.Fatalf("exit %d: %s", code, stderr.String())
	}
	script := stdout.String()
	for _, c := range commandTree {
		if !strings.Contains(script, " "+c.name) {
			t.Errorf("the script does not offer %s", c.name)
		}
		var out, errs bytes.Buffer
		if code := run(context.Background(), []string{c.name, "-h"}, "", &out, &errs); strings.Contains(errs.String(), "unknown command") {
			t.Errorf("%s is no command (exit %d)", c.name, code)
		}
		if !strings.Contains(usage, " "+c.name+" ") && !strings.Contains(usage, " "+c.name+"\n") {
			t.Errorf("the usage does not show %s", c.name)
		}
	}
	for _, want := range []string{"--extended", "--candidate", "--from-leader", "--command", "--role"} {
		if !strings.Contains(script, want) {
			t.Errorf("the script lacks %s", want)
		}
	}
	if flags := commandFlags(context.Background(), "list", ""); !strings.Contains(strings.Join(flags, " "), "--watch -W -e") {
		t.Errorf("list flags %v", flags)
	}
	if bash, err := exec.LookPath("bash"); err == nil {
		cmd := exec.Command(bash, "-n")
		cmd.Stdin = strings.NewReader(script)
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Errorf("bash -n: %v\n%s", err, out)
		}
	}
}

// TestClusterNameArgument: the cluster's name may be given as patronictl takes it; an API of
// another cluster is refused before anything is done, and before member names it is skipped.
func TestClusterNameArgument(t *testing.T) {
	srv := threeMembers(t)
	if code, out, errs := ctl(srv, "", "list", "demo"); code != exitOK || !strings.Contains(out, "Cluster: demo") {
		t.Errorf("list demo: exit %d %s %s", code, out, errs)
	}
	if code, _, errs := ctl(srv, "", "pause", "other"); code != exitUsage || !strings.Contains(errs, `serves cluster "demo", not "other"`) {
		t.Errorf("pause other: exit %d %s", code, errs)
	}
	if strings.Contains(srv.log(), "PATCH") {
		t.Errorf("a refused cluster name still wrote:\n%s", srv.log())
	}
	if code, _, errs := ctl(srv, "", "reload", "demo", "n2"); code != exitOK || strings.Contains(srv.log(), "/n1/reload") || !strings.Contains(srv.log(), "POST /n2/reload") {
		t.Errorf("reload demo n2: exit %d %s\n%s", code, errs, srv.log())
	}
}
