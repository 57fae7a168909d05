package main

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/ramd-project/ramd/api/client"
	"github.com/ramd-project/ramd/daemon"
)

// configServer is the real router over a member whose dynamic configuration starts as doc
// at index 7: the API's CAS (409 when If-Match is not the current ETag) and a validation that
// refuses a negative maximum_lag_on_failover with 400 {error, detail, field}.
type configServer struct {
	api  *apiServer
	node *memNode
}

// configWrite is one PUT or PATCH as received.
type configWrite struct {
	Method  string
	IfMatch string
	Body    map[string]any
}

func newConfigServer(t *testing.T, doc string) (*configServer, string) {
	t.Helper()
	s := &configServer{api: startAPI(t, "n1")}
	s.api.setCluster([]daemon.MemberStatus{member("n1", client.RoleLeader)}, false)
	s.node = s.api.nodes["n1"]
	if err := json.Unmarshal([]byte(doc), &s.node.config); err != nil {
		t.Fatal(err)
	}
	return s, s.api.URL
}

// received returns the writes of /config so far.
func (s *configServer) received() []configWrite {
	var out []configWrite
	for _, r := range s.api.requests() {
		if r.Path != "/config" || r.Method == http.MethodGet {
			continue
		}
		w := configWrite{Method: r.Method, IfMatch: r.IfMatch}
		_ = json.Unmarshal(r.Body, &w.Body)
		out = append(out, w)
	}
	return out
}

// doc is the configuration now.
func (s *configServer) doc() map[string]any {
	doc, _, _ := s.node.DynamicConfig(context.Background())
	return doc
}

// fakeEditor writes a shell script that runs sed on the file it is given (its last argument)
// and sets it as $EDITOR; $VISUAL is cleared and temp files go to a test directory.
func fakeEditor(t *testing.T, sedScript string) {
	t.Helper()
	dir := t.TempDir()
	path := filepath.Join(dir, "editor.sh")
	script := "#!/bin/sh\nfor f; do :; done\nsed -i '" + sedScript + "' \"$f\"\n"
	if err := os.WriteFile(path, []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	t.Setenv("EDITOR", path+" --wait")
	t.Setenv("VISUAL", "")
	t.Setenv("TMPDIR", dir)
}

func runCtl(stdin string, args ...string) (code int, stdout, stderr string) {
	var out, errb bytes.Buffer
	code = runConfig(context.Background(), args, "", strings.NewReader(stdin), &out, &errb)
	return code, out.String(), errb.String()
}

const initialConfig = `{"loop_wait": 1, "maximum_lag_on_failover": 1048576, "postgresql": {"parameters": {"max_connections": 100}}, "ttl": 30}`

func TestConfigEditInEditor(t *testing.T) {
	s, url := newConfigServer(t, initialConfig)
	fakeEditor(t, `s/"maximum_lag_on_failover": 1048576/"maximum_lag_on_failover": 2097152/`)
	code, out, errs := runCtl("", "edit", "--api", url, "--force")
	if code != exitOK {
		t.Fatalf("exit %d: %s", code, errs)
	}
	wantDiff := `--- config (ETag "7")
+++ config (edited)
@@ -1,6 +1,6 @@
 {
   "loop_wait": 1,
-  "maximum_lag_on_failover": 1048576,
+  "maximum_lag_on_failover": 2097152,
   "postgresql": {
     "parameters": {
       "max_connections": 100
`
	if !strings.HasPrefix(out, wantDiff) || !strings.HasSuffix(out, "configuration updated\n") {
		t.Errorf("output:\n%s\nwant the diff:\n%s", out, wantDiff)
	}
	want := []configWrite{{Method: http.MethodPut, IfMatch: `"7"`, Body: map[string]any{
		"loop_wait": 1.0, "maximum_lag_on_failover": 2097152.0, "ttl": 30.0,
		"postgresql": map[string]any{"parameters": map[string]any{"max_connections": 100.0}},
	}}}
	if d := cmp.Diff(want, s.received()); d != "" {
		t.Errorf("writes (-want +got):\n%s", d)
	}
	if left, _ := filepath.Glob(filepath.Join(os.Getenv("TMPDIR"), "ramctrl-config-*")); len(left) != 0 {
		t.Errorf("temp files left behind: %v", left)
	}
}

func TestConfigEditUnchangedSendsNothing(t *testing.T) {
	s, url := newConfigServer(t, initialConfig)
	fakeEditor(t, `s/nothing-matches-this//`)
	code, out, errs := runCtl("", "edit", "--api", url)
	if code != exitOK || out != "no changes\n" {
		t.Fatalf("exit %d, stdout %q, stderr %q", code, out, errs)
	}
	if got := s.received(); len(got) != 0 {
		t.Errorf("an unchanged edit sent %v", got)
	}
}

func TestConfigEditConfirmation(t *testing.T) {
	s, url := newConfigServer(t, initialConfig)
	fakeEditor(t, `s/"ttl": 30/"ttl": 40/`)
	if code, _, errs := runCtl("n\n", "edit", "--api", url); code != exitError || !strings.Contains(errs, "aborted, nothing was changed") {
		t.Fatalf("declined: exit %d, stderr %q", code, errs)
	}
	if got := s.received(); len(got) != 0 {
		t.Fatalf("a declined edit sent %v", got)
	}
	if code, _, errs := runCtl("y\n", "edit", "--api", url); code != exitOK {
		t.Fatalf("confirmed: exit %d, stderr %q", code, errs)
	}
	if got := s.received(); len(got) != 1 || got[0].Body["ttl"] != 40.0 {
		t.Errorf("confirmed edit sent %v", got)
	}
}

func TestConfigEditRefused(t *testing.T) {
	s, url := newConfigServer(t, initialConfig)
	fakeEditor(t, `s/1048576/-1/`)
	code, _, errs := runCtl("", "edit", "--api", url, "--force")
	if code != exitError {
		t.Fatalf("exit %d, want %d", code, exitError)
	}
	for _, want := range []string{"400 Bad Request", "invalid value", "maximum_lag_on_failover=-1", "(field maximum_lag_on_failover)", "nothing was changed"} {
		if !strings.Contains(errs, want) {
			t.Errorf("stderr lacks %q:\n%s", want, errs)
		}
	}
	if s.doc()["maximum_lag_on_failover"] != 1048576.0 {
		t.Errorf("config changed: %v", s.doc())
	}
}

func TestConfigEditInvalidJSONKept(t *testing.T) {
	s, url := newConfigServer(t, initialConfig)
	fakeEditor(t, `s/"ttl": 30/"ttl": 30,,/`)
	code, _, errs := runCtl("", "edit", "--api", url, "--force")
	if code != exitError || !strings.Contains(errs, "not a JSON object") || !strings.Contains(errs, "the edit is kept in") {
		t.Fatalf("exit %d, stderr %q", code, errs)
	}
	if got := s.received(); len(got) != 0 {
		t.Errorf("an invalid edit sent %v", got)
	}
}

func TestConfigEditSet(t *testing.T) {
	t.Parallel()
	s, url := newConfigServer(t, initialConfig)
	code, out, errs := runCtl("", "edit", "--api", url, "--force",
		"--set", "maximum_lag_on_failover=2097152", "--set", "postgresql.parameters.max_connections=200",
		"--set", "ttl=null", "--set", "synchronous_mode=quorum")
	if code != exitOK {
		t.Fatalf("exit %d: %s", code, errs)
	}
	for _, want := range []string{`-  "ttl": 30`, `+  "synchronous_mode": "quorum"`, `+      "max_connections": 200`, "configuration updated"} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
	want := []configWrite{{Method: http.MethodPatch, IfMatch: `"7"`, Body: map[string]any{
		"maximum_lag_on_failover": 2097152.0, "ttl": nil, "synchronous_mode": "quorum",
		"postgresql": map[string]any{"parameters": map[string]any{"max_connections": 200.0}},
	}}}
	if d := cmp.Diff(want, s.received()); d != "" {
		t.Errorf("writes (-want +got):\n%s", d)
	}
	// The same values again change nothing and send nothing.
	if code, out, _ := runCtl("", "edit", "--api", url, "--set", "maximum_lag_on_failover=2097152"); code != exitOK || out != "no changes\n" {
		t.Errorf("repeated --set: exit %d, %q", code, out)
	}
	if n := len(s.received()); n != 1 {
		t.Errorf("%d writes, want 1", n)
	}
	code, _, errs = runCtl("", "edit", "--api", url, "--force", "--set", "maximum_lag_on_failover=-5")
	if code != exitError || !strings.Contains(errs, "field maximum_lag_on_failover") {
		t.Errorf("refused --set: exit %d, stderr %q", code, errs)
	}
}

func TestConfigEditConflict(t *testing.T) {
	t.Parallel()
	s, _ := newConfigServer(t, initialConfig)
	// Another writer moves the index between our read and our write.
	proxy := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodGet {
			s.api.ServeHTTP(w, r)
			s.node.mu.Lock()
			s.node.configIndex++
			s.node.mu.Unlock()
			return
		}
		s.api.ServeHTTP(w, r)
	}))
	t.Cleanup(proxy.Close)
	code, _, errs := runCtl("", "edit", "--api", proxy.URL, "--force", "--set", "ttl=20")
	if code != exitError || !strings.Contains(errs, "changed since it was read") {
		t.Errorf("exit %d, stderr %q", code, errs)
	}
	if s.doc()["ttl"] != 30.0 {
		t.Errorf("config changed: %v", s.doc())
	}
}

func TestConfigEditApply(t *testing.T) {
	t.Parallel()
	s, url := newConfigServer(t, initialConfig)
	file := filepath.Join(t.TempDir(), "config.json")
	if err := os.WriteFile(file, []byte(`{"ttl": 20}`), 0o644); err != nil {
		t.Fatal(err)
	}
	if code, _, errs := runCtl("", "edit", "--api", url, "--force", "--apply", file); code != exitOK {
		t.Fatalf("--apply: exit %d: %s", code, errs)
	}
	if code, _, errs := runCtl(`{"ttl": 25}`, "edit", "--api", url, "--force", "--apply", "-"); code != exitOK {
		t.Fatalf("--apply -: exit %d: %s", code, errs)
	}
	got := s.received()
	if len(got) != 2 || got[0].Method != http.MethodPut || got[0].IfMatch != `"7"` || got[1].IfMatch != `"8"` {
		t.Fatalf("writes %v", got)
	}
	if d := cmp.Diff(map[string]any{"ttl": 25.0}, s.doc()); d != "" {
		t.Errorf("config (-want +got):\n%s", d)
	}
}

func TestConfigUsage(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		args []string
	}{
		{"no subcommand", nil},
		{"unknown subcommand", []string{"frob"}},
		{"set without =", []string{"edit", "--set", "ttl"}},
		{"set with an empty key part", []string{"edit", "--set", "a..b=1"}},
		{"set and apply", []string{"edit", "--set", "ttl=1", "--apply", "f.json"}},
		{"apply stdin without force", []string{"edit", "--apply", "-"}},
		{"two positional arguments", []string{"edit", "cluster", "extra"}},
		{"bad output", []string{"show", "--output", "xml"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			if code, _, errs := runCtl("", tt.args...); code != exitUsage {
				t.Errorf("exit %d, want %d (stderr %q)", code, exitUsage, errs)
			}
		})
	}
}

func TestConfigShow(t *testing.T) {
	t.Parallel()
	_, url := newConfigServer(t, initialConfig)
	code, out, errs := runCtl("", "show", "--api", url, "--output", "table")
	if code != exitOK {
		t.Fatalf("exit %d: %s", code, errs)
	}
	want := `Key                                    Value
loop_wait                              1
maximum_lag_on_failover                1048576
postgresql.parameters.max_connections  100
ttl                                    30
`
	if out != want {
		t.Errorf("got:\n%s\nwant:\n%s", out, want)
	}
	if code, out, _ := runCtl("", "show", "--api", url); code != exitOK || !strings.Contains(out, `"max_connections": 100`) {
		t.Errorf("json: exit %d, %q", code, out)
	}
}

func TestParseSets(t *testing.T) {
	t.Parallel()
	got, err := parseSets([]string{"a=1", "b=word", `c="1"`, "d=null", "e.f.g=true", "e.f.h=[1,2]", "i=", "j=1 2"})
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]any{
		"a": json.Number("1"), "b": "word", "c": "1", "d": nil,
		"e": map[string]any{"f": map[string]any{"g": true, "h": []any{json.Number("1"), json.Number("2")}}},
		"i": "", "j": "1 2",
	}
	if d := cmp.Diff(want, got); d != "" {
		t.Errorf("(-want +got):\n%s", d)
	}
}

func TestMergeInto(t *testing.T) {
	t.Parallel()
	doc := map[string]any{"a": 1, "b": map[string]any{"c": 2, "d": 3}, "e": "x"}
	mergeInto(doc, map[string]any{"a": nil, "b": map[string]any{"c": nil, "f": 4}, "e": map[string]any{"g": 5}, "h": nil})
	want := map[string]any{"b": map[string]any{"d": 3, "f": 4}, "e": map[string]any{"g": 5}}
	if d := cmp.Diff(want, doc); d != "" {
		t.Errorf("(-want +got):\n%s", d)
	}
}

func TestUnifiedDiff(t *testing.T) {
	t.Parallel()
	lines := func(from, to int) string {
		var b strings.Builder
		for i := from; i <= to; i++ {
			b.WriteString("l" + strconv.Itoa(i) + "\n")
		}
		return b.String()
	}
	tests := []struct {
		name, a, b, want string
	}{
		{name: "equal", a: "x\n", b: "x\n", want: ""},
		{name: "from empty", a: "", b: "x\n", want: "--- a\n+++ b\n@@ -0,0 +1,1 @@\n+x\n"},
		{
			name: "two hunks far apart",
			a:    lines(1, 20),
			b:    strings.Replace(strings.Replace(lines(1, 20), "l2\n", "L2\n", 1), "l18\n", "", 1),
			want: "--- a\n+++ b\n@@ -1,5 +1,5 @@\n l1\n-l2\n+L2\n l3\n l4\n l5\n@@ -15,6 +15,5 @@\n l15\n l16\n l17\n-l18\n l19\n l20\n",
		},
		{
			name: "close changes share a hunk",
			a:    lines(1, 9),
			b:    strings.Replace(strings.Replace(lines(1, 9), "l2\n", "", 1), "l8\n", "l8\nnew\n", 1),
			want: "--- a\n+++ b\n@@ -1,9 +1,9 @@\n l1\n-l2\n l3\n l4\n l5\n l6\n l7\n l8\n+new\n l9\n",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			if got := unifiedDiff("a", "b", tt.a, tt.b); got != tt.want {
				t.Errorf("got:\n%s\nwant:\n%s", got, tt.want)
			}
		})
	}
}

// TestReasonListsEveryRefusal: a refused document shows one line per field.
func TestReasonListsEveryRefusal(t *testing.T) {
	t.Parallel()
	r := client.Response{Code: 400, Body: []byte(`{"error":"invalid value","detail":"...","field":"loop_wait","value":0,"errors":[` +
		`{"field":"loop_wait","value":0,"reason":"must be between 100ms and 10s"},` +
		`{"field":"ttl","value":"banana","reason":"must be a duration"}]}`)}
	want := "invalid value: 2 fields refused\n  loop_wait = 0: must be between 100ms and 10s\n  ttl = \"banana\": must be a duration"
	if got := r.Reason(); got != want {
		t.Errorf("reason:\n%s\nwant:\n%s", got, want)
	}
	one := client.Response{Code: 400, Body: []byte(`{"error":"invalid value","detail":"ttl=\"banana\": must be a duration","field":"ttl","errors":[{"field":"ttl","value":"banana","reason":"must be a duration"}]}`)}
	if got := one.Reason(); got != `invalid value: ttl="banana": must be a duration (field ttl)` {
		t.Errorf("single refusal: %s", got)
	}
}

// TestPatronictlConfigSpellings: edit-config with -s and --pg, and show-config, as a
// patronictl user types them.
func TestPatronictlConfigSpellings(t *testing.T) {
	t.Parallel()
	s, url := newConfigServer(t, initialConfig)
	var out, errb bytes.Buffer
	code := runIn(context.Background(), []string{"edit-config", "--api", url, "--force", "-s", "loop_wait=2", "--pg", "work_mem=8MB", "-p", "max_connections=150"},
		"", strings.NewReader(""), &out, &errb)
	if code != exitOK {
		t.Fatalf("edit-config: exit %d: %s", code, errb.String())
	}
	want := []configWrite{{Method: http.MethodPatch, IfMatch: `"7"`, Body: map[string]any{
		"loop_wait":  2.0,
		"postgresql": map[string]any{"parameters": map[string]any{"work_mem": "8MB", "max_connections": 150.0}},
	}}}
	if d := cmp.Diff(want, s.received()); d != "" {
		t.Errorf("writes (-want +got):\n%s", d)
	}
	out.Reset()
	if code := runIn(context.Background(), []string{"show-config", "--api", url, "-f", "yaml"}, "", strings.NewReader(""), &out, &errb); code != exitOK ||
		!strings.Contains(out.String(), "work_mem: 8MB") {
		t.Errorf("show-config -f yaml: exit %d\n%s", code, out.String())
	}
}
