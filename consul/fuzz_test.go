package consul

import (
	"encoding/json"
	"testing"
)

// recordTypes are the values ramd reads from Consul, one per key kind (leader and
// initialize are plain text, read by their own code below).
var recordTypes = []func() any{
	func() any { return new(Member) },
	func() any { return new(Status) },
	func() any { return new(Sync) },
	func() any { return new(Failover) },
	func() any { return new([]HistoryEntry) },
	func() any { return new(Job) },
	func() any { return new(BackupQueue) },
	func() any { return new(BackupSchedules) },
	func() any { return new(map[string]any) }, // config, checked by daemon/dynconf
}

// FuzzRecords decodes arbitrary bytes as every record ramd reads from Consul (member,
// status, sync, failover, history, jobs, backup queue and schedules, config, initialize):
// decoding never panics, and what decodes survives a round trip unchanged, so a record
// ramd wrote back from a decoded one reads the same.
func FuzzRecords(f *testing.F) {
	for _, s := range []string{
		`{"conn_url":"postgres://127.0.0.1:5432/postgres","api_url":"http://127.0.0.1:8008/patroni","state":"running","role":"primary","xlog_location":100,"timeline":2,"tags":{"nofailover":true,"failover_priority":1}}`,
		`{"optime":1234,"heartbeat":9,"ttl_ms":3000,"slots":{"n2":1000},"retain_slots":["n2"],"archived_wal":"000000010000000000000003"}`,
		`{"leader":"n1","sync_standby":"n2,n3","quorum":1}`,
		`{"leader":"n1","member":"n2","scheduled_at":"2030-01-01T00:00:00+00:00","job_id":"sw-1"}`,
		`[[1,25165984,"no recovery target specified","2026-03-01T12:00:00Z","n2"],[2,33554432,"x"]]`,
		`[[1,2]]`, `[["a",1,"r"]]`, `[[1,-1,"r"]]`, `[[1,1,"r",5,6]]`,
		`{"id":"j1","kind":"switchover","state":"running","phases":[{"name":"requested","at":"2026-03-01T12:00:00Z"}],"created_at":"2026-03-01T12:00:00Z","backup":{"tool":"pgbackrest","type":"full","size_bytes":-1}}`,
		`{"jobs":["b1","b2"]}`, `{"fired":{"full":"2026-03-01T03:00:00Z"}}`, `{"fired":{"full":"not a time"}}`,
		`{"ttl":30,"postgresql":{"parameters":{"work_mem":"8MB"}}}`,
		`7345678901234567890`, ` 42 `, `-1`, `99999999999999999999`, ``, `null`, `{`, "\x00",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		if _, err := Initialize(b).SystemID(); err == nil && len(b) == 0 {
			t.Fatal("an empty initialize key parsed as a system identifier")
		}
		for _, newV := range recordTypes {
			v := newV()
			if json.Unmarshal(b, v) != nil {
				continue
			}
			out, err := json.Marshal(v)
			if err != nil {
				t.Fatalf("%T decoded from %q does not encode: %v", v, b, err)
			}
			w := newV()
			if err := json.Unmarshal(out, w); err != nil {
				t.Fatalf("%T: %q re-encoded as %q does not decode: %v", v, b, out, err)
			}
			again, err := json.Marshal(w)
			if err != nil || string(again) != string(out) {
				t.Fatalf("%T round trip changed %q into %q (%v)", v, out, again, err)
			}
		}
	})
}
