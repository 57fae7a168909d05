package main

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/ramd-project/ramd/daemon"
)

func TestServerVersion(t *testing.T) {
	t.Parallel()
	for in, want := range map[int]string{150004: "15.4", 160000: "16.0", 100023: "10.23", 90624: "9.6.24", 0: "-"} {
		if got := serverVersion(in); got != want {
			t.Errorf("serverVersion(%d) = %q, want %q", in, got, want)
		}
	}
}

// TestRunVersion: each member's /patroni is asked at its api_url (with or without Patroni's
// "/patroni" suffix); a member that does not answer is listed and makes the exit code 1.
func TestRunVersion(t *testing.T) {
	t.Parallel()
	srv := startAPI(t, "n1", "n2")
	down := httptest.NewServer(http.NotFoundHandler())
	down.Close()
	members := []daemon.MemberStatus{
		{Name: "n1", Role: "leader", APIURL: srv.URL},
		{Name: "n2", Role: "replica", APIURL: srv.URL + "/n2/patroni"},
		{Name: "n3", Role: "replica", APIURL: down.URL},
	}
	cluster := func(members []daemon.MemberStatus) {
		srv.setCluster(members, false)
		srv.setVersion("n1", "0.1.0", 150004)
		srv.setVersion("n2", "0.2.0", 160002)
	}
	cluster(members)

	var out, errb bytes.Buffer
	code := run(context.Background(), []string{"version", "--api", srv.URL}, "", &out, &errb)
	if code != exitError {
		t.Errorf("exit %d, want %d with a member down", code, exitError)
	}
	want := "ramctrl dev\nn1: ramd 0.1.0 PostgreSQL 15.4\nn2: ramd 0.2.0 PostgreSQL 16.2\nn3: unknown (Get \"" + down.URL + "/patroni\": dial tcp " + down.Listener.Addr().String() + ": connect: connection refused)\n"
	if got := out.String(); got != want {
		t.Errorf("got:\n%s\nwant:\n%s", got, want)
	}

	out.Reset()
	cluster(members[:2])
	if code := run(context.Background(), []string{"version", "--api", srv.URL, "--output", "json"}, "", &out, &errb); code != exitOK {
		t.Fatalf("json: exit %d: %s", code, errb.String())
	}
	var got versions
	if err := json.Unmarshal(out.Bytes(), &got); err != nil {
		t.Fatal(err)
	}
	wantJSON := versions{Ramctrl: "dev", Members: []memberVersion{{Name: "n1", Ramd: "0.1.0", PostgreSQL: "15.4"}, {Name: "n2", Ramd: "0.2.0", PostgreSQL: "16.2"}}}
	if d := cmp.Diff(wantJSON, got); d != "" {
		t.Errorf("json (-want +got):\n%s", d)
	}

	out.Reset()
	if code := run(context.Background(), []string{"version", "--api", down.URL}, "", &out, &errb); code != exitError || out.String() != "ramctrl dev\n" {
		t.Errorf("cluster down: exit %d, stdout %q", code, out.String())
	}
}
