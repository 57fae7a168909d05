package daemon

import (
	"encoding/json"
	"testing"

	"github.com/ramd-project/ramd/consul"
)

// FuzzMemberAndFailoverRecords feeds arbitrary member and failover records through what the
// loop derives from them (the member's view for the decision, its PostgreSQL address, the
// switchover's due time): a corrupted record never panics the loop, and a member record
// whose position fields are not numbers is not read at all (treated as absent).
func FuzzMemberAndFailoverRecords(f *testing.F) {
	for _, s := range []string{
		`{"conn_url":"postgres://127.0.0.1:5432/postgres","state":"running","role":"replica","xlog_location":100,"receive_lsn":200,"replay_lsn":150,"timeline":2,"tags":{"nofailover":true,"failover_priority":3}}`,
		`{"conn_url":"postgres://[::1]:x/postgres","tags":{"failover_priority":1e300,"nofailover":"yes"}}`,
		`{"conn_url":"%zz","receive_lsn":-1}`, `{"xlog_location":"0/3000060"}`, `{"tags":null}`,
		`{"leader":"n1","member":"n2","scheduled_at":"2030-01-01T00:00:00Z"}`, `{"scheduled_at":"yesterday"}`,
		`null`, `[]`, `{`,
	} {
		f.Add("n1", []byte(s))
	}
	f.Fuzz(func(t *testing.T, name string, b []byte) {
		var m consul.Member
		if err := json.Unmarshal(b, &m); err == nil {
			v := memberView(name, m)
			if v.Name != name {
				t.Fatalf("view of %q is named %q", name, v.Name)
			}
			if m.ReceiveLSN == nil && m.ReplayLSN == nil && v.LSN != m.XLogLocation {
				t.Fatalf("LSN %d, want xlog_location %d", v.LSN, m.XLogLocation)
			}
			if _, port := connHostPort(m.ConnURL); port < 0 {
				t.Fatalf("negative port from %q", m.ConnURL)
			}
		}
		var fo consul.Failover
		if json.Unmarshal(b, &fo) == nil {
			_ = due(fo.ScheduledAt)
		}
	})
}
