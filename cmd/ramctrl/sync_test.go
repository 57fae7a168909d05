package main

import (
	"bytes"
	"context"
	"strings"
	"testing"

	"github.com/ramd-project/ramd/daemon"
)

func TestSyncShowAndSet(t *testing.T) {
	t.Parallel()
	srv := startAPI(t, "n1")
	srv.nodes["n1"].sync = daemon.SyncView{Mode: "quorum", Count: 1, Commit: "on", Leader: "n1", Quorum: 1, Standbys: []daemon.SyncMember{
		{Name: "n2", ReceiveLSN: 4294967296, ReplayLSN: 4294967296, State: "running"}, {Name: "n3", State: "running"}}}
	gotBody := func() string {
		reqs := srv.requests()
		return string(reqs[len(reqs)-1].Body)
	}
	var out, errb bytes.Buffer
	if code := run(context.Background(), []string{"sync", "show", "--api", srv.URL}, "", &out, &errb); code != exitOK {
		t.Fatalf("show: exit %d: %s", code, errb.String())
	}
	for _, want := range []string{"Synchronous mode: quorum", "Leader: n1, quorum 1", "n2", "1/0", "n3"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("show output lacks %q:\n%s", want, out.String())
		}
	}
	out.Reset()
	if code := run(context.Background(), []string{"sync", "set", "--api", srv.URL, "--mode", "quorum", "--strict", "true"}, "", &out, &errb); code != exitOK {
		t.Fatalf("set: exit %d: %s", code, errb.String())
	}
	if !strings.Contains(gotBody(), `"synchronous_mode":"quorum"`) || !strings.Contains(gotBody(), `"synchronous_mode_strict":true`) {
		t.Errorf("set sent %s", gotBody())
	}
	errb.Reset()
	if code := run(context.Background(), []string{"sync", "set", "--api", srv.URL, "--count", "0"}, "", &out, &errb); code != exitUsage {
		// --count 0 means "not given": nothing to set is a usage error.
		t.Errorf("set --count 0: exit %d", code)
	}
	if code := run(context.Background(), []string{"sync", "set", "--api", srv.URL, "--strict", "maybe"}, "", &out, &errb); code != exitUsage {
		t.Errorf("bad --strict: exit %d", code)
	}
	if code := run(context.Background(), []string{"sync"}, "", &out, &errb); code != exitUsage {
		t.Errorf("bare sync: exit %d", code)
	}
}
