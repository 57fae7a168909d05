package backup

import (
	"errors"
	"slices"
	"strings"
	"testing"
	"time"
)

// TestCustomOutput feeds standard output to the JSON-lines reader through the line
// splitter, with small bounds so that cut lines and the total cap are exercised.
func TestCustomOutput(t *testing.T) {
	t.Parallel()
	type want struct {
		progress  []Progress
		backupID  string
		list      []string
		errMsg    string
		resultErr string
	}
	long := strings.Repeat("x", 200)
	for _, c := range []struct {
		name   string
		chunks []string
		want   want
	}{
		{"progress and result", []string{`{"progress":"copy","percent":12.7}` + "\n" + `{"backup":{"id":"b1"}}` + "\n"},
			want{progress: []Progress{{"copy", 12}}, backupID: "b1"}},
		{"split across writes, CRLF, no final newline", []string{`{"prog`, `ress":"a"}` + "\r\n", `{"backup":{"id":"b2"}}`},
			want{progress: []Progress{{"a", -1}}, backupID: "b2"}},
		{"plain text and blank lines", []string{"hello\n\n   \nworld\n"},
			want{progress: []Progress{{"hello", -1}, {"world", -1}}}},
		{"malformed JSON is text", []string{"{\"progress\": \n{not json}\n"},
			want{progress: []Progress{{`{"progress":`, -1}, {"{not json}", -1}}}},
		{"other JSON is text", []string{`{"foo":1}` + "\n" + `["a"]` + "\n"},
			want{progress: []Progress{{`{"foo":1}`, -1}, {`["a"]`, -1}}}},
		{"progress of the wrong type is text", []string{`{"progress":5}` + "\n"},
			want{progress: []Progress{{`{"progress":5}`, -1}}}},
		{"percent clamped, alone", []string{`{"percent":140}` + "\n" + `{"percent":-3}` + "\n"},
			want{progress: []Progress{{"", 100}, {"", 0}}}},
		{"bad backup result", []string{`{"backup":{"id":"b","start":"noon"}}` + "\n"},
			want{resultErr: "result line"}},
		{"later good result clears an earlier bad one", []string{`{"backup":"x"}` + "\n" + `{"backup":{"id":"b3"}}` + "\n"},
			want{backupID: "b3"}},
		{"list", []string{`{"backups":[{"id":"a"},{"id":"b"}],"system_id":"7715385814919701325"}` + "\n"},
			want{list: []string{"a", "b"}}},
		{"bad system id", []string{`{"backups":[],"system_id":-1}` + "\n"},
			want{resultErr: "system_id"}},
		{"error message", []string{`{"error":"locked by pid 7"}` + "\n"},
			want{progress: []Progress{{"error: locked by pid 7", -1}}, errMsg: "locked by pid 7"}},
		{"long text line is cut", []string{long + "\nnext\n"},
			want{progress: []Progress{{long[:96], -1}, {"next", -1}}}},
		{"long JSON line is a result error", []string{`{"backup":{"id":"` + long + `"}}` + "\nafter\n"},
			want{progress: []Progress{{`{"backup":{"id":"` + long[:96-17], -1}, {"after", -1}}, resultErr: "longer than"}},
		{"output beyond the total is dropped", []string{strings.Repeat("line\n", 100), `{"backup":{"id":"late"}}` + "\n"},
			want{progress: slices.Repeat([]Progress{{"line", -1}}, 51)}},
	} {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			var got []Progress
			o := &customOutput{progress: func(p Progress) { got = append(got, p) }}
			s := newLineSplitter(96, 256, o.line)
			for _, ch := range c.chunks {
				if n, err := s.Write([]byte(ch)); n != len(ch) || err != nil {
					t.Fatalf("Write = %d, %v", n, err)
				}
			}
			_ = s.Close()
			if !slices.Equal(got, c.want.progress) {
				t.Errorf("progress %+v, want %+v", got, c.want.progress)
			}
			var id string
			if o.backup != nil {
				id = o.backup.ID
			}
			if id != c.want.backupID {
				t.Errorf("backup %q, want %q", id, c.want.backupID)
			}
			var ids []string
			if o.list != nil {
				for _, b := range o.list.Backups {
					ids = append(ids, b.ID)
				}
				if o.list.SystemID != 7715385814919701325 {
					t.Errorf("system id %d", o.list.SystemID)
				}
			}
			if !slices.Equal(ids, c.want.list) {
				t.Errorf("list %v, want %v", ids, c.want.list)
			}
			if o.errMsg != c.want.errMsg {
				t.Errorf("error message %q, want %q", o.errMsg, c.want.errMsg)
			}
			if (o.resultErr == nil) != (c.want.resultErr == "") || o.resultErr != nil && !strings.Contains(o.resultErr.Error(), c.want.resultErr) {
				t.Errorf("result error %v, want %q", o.resultErr, c.want.resultErr)
			}
		})
	}
}

func TestCutText(t *testing.T) {
	t.Parallel()
	if got := cutText("héllo", 2); got != "h…" {
		t.Errorf("cutText = %q", got)
	}
	if got := cutText("abc", 3); got != "abc" {
		t.Errorf("cutText = %q", got)
	}
}

// infoJSON is `pgbackrest info --output=json` of 2.45 as measured (a full and an
// incremental backup; the system identifier is above 2^53).
const infoJSON = `[{"archive":[{"database":{"id":1,"repo-key":1},"id":"15-1","max":"000000010000000000000006","min":"000000010000000000000002"}],
"backup":[{"annotation":{"ramd-job":"j2"},"archive":{"start":"000000010000000000000004","stop":"000000010000000000000004"},"backrest":{"format":5,"version":"2.45"},"database":{"id":1,"repo-key":1},"error":false,"info":{"delta":1417481,"repository":{"delta":162841,"size":3044556},"size":23000768},"label":"20261204-095734F_20261204-095744I","lsn":{"start":"0/4000028","stop":"0/4000138"},"prior":"20261204-095734F","reference":["20261204-095734F"],"timestamp":{"start":1796378264,"stop":1796378266},"type":"incr"},
{"annotation":{"ramd-job":"j1"},"archive":{"start":"000000010000000000000002","stop":"000000010000000000000002"},"backrest":{"format":5,"version":"2.45"},"database":{"id":1,"repo-key":1},"error":true,"info":{"delta":22992577,"repository":{"delta":3043474,"size":3043474},"size":22992577},"label":"20261204-095734F","lsn":{"start":"0/2000028","stop":"0/2000100"},"prior":null,"reference":null,"timestamp":{"start":1796378254,"stop":1796378257},"type":"full"}],
"cipher":"none","db":[{"id":1,"repo-key":1,"system-id":7715385814919701325,"version":"15"}],"name":"st","repo":[{"cipher":"none","key":1,"status":{"code":0,"message":"ok"}}],"status":{"code":0,"lock":{"backup":{"held":false}},"message":"ok"}}]`

func TestParsePgbrInfo(t *testing.T) {
	t.Parallel()
	cat, err := parsePgbrInfo([]byte(infoJSON), "st")
	if err != nil {
		t.Fatal(err)
	}
	if cat.SystemID != 7715385814919701325 || cat.WALMin != "000000010000000000000002" || cat.WALMax != "000000010000000000000006" || len(cat.Backups) != 2 {
		t.Fatalf("catalog %+v", cat)
	}
	full, incr := cat.Backups[0], cat.Backups[1]
	wantFull := Info{ID: "20261204-095734F", Type: "full", Status: StatusFailed, Start: time.Unix(1796378254, 0).UTC(),
		Stop: time.Unix(1796378257, 0).UTC(), StartLSN: "0/2000028", StopLSN: "0/2000100", WALStart: "000000010000000000000002",
		WALStop: "000000010000000000000002", Timeline: 1, Size: 22992577, RepoSize: 3043474, JobID: "j1"}
	if full != wantFull {
		t.Errorf("full\n%+v, want\n%+v", full, wantFull)
	}
	if incr.Prior != full.ID || incr.Status != StatusDone || incr.RepoSize != 162841 || incr.JobID != "j2" {
		t.Errorf("incr %+v", incr)
	}
	if b, ok := findBackup(cat, "", "j2"); !ok || b.ID != incr.ID {
		t.Errorf("findBackup by job = %+v, %v", b, ok)
	}

	empty := `[{"archive":[],"backup":[],"db":[],"name":"st","status":{"code":1,"lock":{"backup":{"held":false}},"message":"missing stanza path"}}]`
	if cat, err := parsePgbrInfo([]byte(empty), "st"); err != nil || len(cat.Backups) != 0 || cat.SystemID != 0 {
		t.Errorf("missing stanza: %+v, %v", cat, err)
	}
	for _, bad := range []string{`{}`, `[]`, `[{"name":"st","status":{"code":5,"message":"database mismatch"}}]`, `[{"name":"st","db":[{"id":1,"system-id":-1}]}]`} {
		if _, err := parsePgbrInfo([]byte(bad), "st"); err == nil {
			t.Errorf("parse %s: no error", bad)
		}
	}
}

func TestPgbrRestoreOptions(t *testing.T) {
	t.Parallel()
	for _, c := range []struct {
		req  RestoreRequest
		want string
		err  error
	}{
		{RestoreRequest{}, "--type=default", nil},
		{RestoreRequest{Delta: true, BackupID: "20261204-095734F_20261204-095744I", Target: Target{Type: TargetEnd}}, "--delta --set=20261204-095734F_20261204-095744I --type=default", nil},
		{RestoreRequest{Standby: true, Target: Target{Type: TargetTime, Value: "x"}}, "--type=standby", nil},
		{RestoreRequest{Target: Target{Type: TargetImmediate}}, "--type=immediate --target-action=promote", nil},
		{RestoreRequest{Target: Target{Type: TargetTime, Value: "2026-12-04T10:00:00.5+01:00", Exclusive: true}},
			"--type=time --target=2026-12-04 09:00:00.5+00 --target-action=promote --target-exclusive", nil},
		{RestoreRequest{Target: Target{Type: TargetXID, Value: "1234"}}, "--type=xid --target=1234 --target-action=promote", nil},
		{RestoreRequest{Target: Target{Type: TargetLSN, Value: "0/3000000"}}, "--type=lsn --target=0/3000000 --target-action=promote", nil},
		{RestoreRequest{Target: Target{Type: TargetName, Value: "before upgrade", Exclusive: true}}, "--type=name --target=before upgrade --target-action=promote", nil},
		{RestoreRequest{BackupID: "latest"}, "", ErrNotFound},
		{RestoreRequest{Target: Target{Type: "tomorrow"}}, "", nil},
		{RestoreRequest{Target: Target{Type: TargetXID}}, "", nil},
		{RestoreRequest{Target: Target{Type: TargetName, Value: "a\nb"}}, "", nil},
	} {
		opts, err := pgbrRestoreOptions(c.req)
		got := strings.Join(opts, " ")
		switch {
		case c.want == "" && err == nil:
			t.Errorf("%+v: %q, want an error", c.req, got)
		case c.want != "" && (err != nil || got != c.want):
			t.Errorf("%+v: %q, %v; want %q", c.req, got, err, c.want)
		case c.err != nil && !errors.Is(err, c.err):
			t.Errorf("%+v: %v, want %v", c.req, err, c.err)
		}
	}
}

// TestPgbrProgress reads console lines of pgBackRest 2.45 at detail level.
func TestPgbrProgress(t *testing.T) {
	t.Parallel()
	var got []Progress
	p := &pgbrProgress{fn: func(pr Progress) { got = append(got, pr) }, pct: -1}
	for _, l := range []string{
		"2026-12-04 09:57:34.325 P00   INFO: backup command begin 2.45: --annotation=ramd-job=j1 --config=/x/pgbackrest.conf --stanza=st",
		"2026-12-04 09:57:35.442 P00   INFO: backup start archive = 000000010000000000000002, lsn = 0/2000028",
		"2026-12-04 09:57:36.332 P01 DETAIL: backup file /d/base/5/1255 (768KB, 3.42%) checksum adb7",
		"2026-12-04 09:57:36.348 P01 DETAIL: backup file /d/base/4/1255 (768KB, 3.84%) checksum adb7",
		"2026-12-04 09:57:36.364 P01 DETAIL: backup file /d/base/1/1255 (768KB, 10.26%) checksum adb7",
		"2026-12-04 09:57:36.364 P01 DETAIL: match file from prior backup /d/base/1/1 (8KB, 11%) checksum x",
		"2026-12-04 09:57:37.663 P00 DETAIL: wrote 'backup_label' file returned from backup stop function",
		"WARN: a warning on standard error",
		"2026-12-04 09:57:37.001 P00   WARN: incr backup cannot alter compress-type option",
		"       HINT: a continuation line",
		"2026-12-04 09:57:37.683 P00   INFO: new backup label = 20261204-095734F",
		"2026-12-04 09:57:38.100 P01 DETAIL: restore file /d/base/1/1 (8KB, 100%) checksum x",
	} {
		p.line(l, false)
	}
	want := []Progress{
		{"backup command begin 2.45", -1},
		{"backup start archive = 000000010000000000000002, lsn = 0/2000028", -1},
		{"copying files", 3},
		{"copying files", 10},
		{"copying files", 11},
		{"WARN: incr backup cannot alter compress-type option", -1},
		{"new backup label = 20261204-095734F", -1},
		{"copying files", 100},
	}
	if !slices.Equal(got, want) {
		t.Errorf("progress\n%+v\nwant\n%+v", got, want)
	}
	if p.label != "20261204-095734F" {
		t.Errorf("label %q", p.label)
	}
}

func TestShellWords(t *testing.T) {
	t.Parallel()
	for in, want := range map[string]string{
		"/usr/bin/pgbackrest": "/usr/bin/pgbackrest",
		"":                    "''",
		"a b":                 "'a b'",
		"it's":                `'it'\''s'`,
		"$HOME":               "'$HOME'",
	} {
		if got := shellWord(in); got != want {
			t.Errorf("shellWord(%q) = %q, want %q", in, got, want)
		}
	}
	if got := archiveWord("/x/50%p"); got != "'/x/50%%p'" {
		t.Errorf("archiveWord = %q", got)
	}
}
