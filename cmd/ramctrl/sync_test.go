package main

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

func TestSyncShowAndSet(t *testing.T) {
	t.Parallel()
	var gotBody string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodPut {
			b, _ := io.ReadAll(r.Body)
			gotBody = string(b)
			if strings.Contains(gotBody, `"synchronous_node_count":0`) {
				w.WriteHeader(http.StatusBadRequest)
				_, _ = w.Write([]byte(`{"error":"invalid value","detail":"synchronous_node_count=0: must be between 1 and 64","field":"synchronous_node_count"}`))
				return
			}
		}
		_, _ = w.Write([]byte(`{"synchronous_mode":"quorum","synchronous_node_count":1,"synchronous_commit":"on","leader":"n1","quorum":1,"sync_standbys":[{"name":"n2","receive_lsn":4294967296,"replay_lsn":4294967296,"state":"running"},{"name":"n3","state":"running"}]}`))
	}))
	t.Cleanup(srv.Close)
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
	if !strings.Contains(gotBody, `"synchronous_mode":"quorum"`) || !strings.Contains(gotBody, `"synchronous_mode_strict":true`) {
		t.Errorf("set sent %s", gotBody)
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
