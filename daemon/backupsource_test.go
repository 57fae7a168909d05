package daemon

import (
	"strings"
	"testing"

	"github.com/ramd-project/ramd/consul"
)

func TestChooseBackupSource(t *testing.T) {
	t.Parallel()
	lsn := func(v uint64) *uint64 { return &v }
	standby := func(name string, replay uint64, opts ...func(*backupCandidate)) backupCandidate {
		c := backupCandidate{Name: name, Reachable: true, Record: consul.Member{Role: "replica", State: "running",
			ReplicationState: "streaming", DataDir: "/data/" + name, ReplayLSN: lsn(replay)}}
		for _, o := range opts {
			o(&c)
		}
		return c
	}
	stopped := func(c *backupCandidate) { c.Record.State, c.Record.ReplicationState = "stopped", "" }
	far := func(c *backupCandidate) { c.Reachable = false }
	primary := backupCandidate{Name: "n1", Reachable: true, Record: consul.Member{Role: "primary", State: "running", DataDir: "/data/n1"}}
	const at, limit = 100 << 20, 1 << 20
	tests := []struct {
		name    string
		runOn   string
		access  standbyAccess
		cands   []backupCandidate
		want    string // standby chosen, "" the primary
		refused bool
		reason  string // a part of the reason or error
	}{
		{"primary asked", "primary", standbyLocalFiles, []backupCandidate{standby("n2", at)}, "", false, "run_on is primary"},
		{"default is the primary", "", standbyLocalFiles, []backupCandidate{standby("n2", at)}, "", false, "primary"},
		{"prefer-standby takes the standby", "prefer-standby", standbyLocalFiles, []backupCandidate{primary, standby("n2", at)}, "n2", false, "lag 0"},
		{"the least lag wins", "prefer-standby", standbyLocalFiles, []backupCandidate{standby("n3", at-100), standby("n2", at-500)}, "n3", false, "lag 100"},
		{"ties by name", "standby", standbyLocalFiles, []backupCandidate{standby("n3", at), standby("n2", at)}, "n2", false, "n2"},
		{"lagging standby passed over", "prefer-standby", standbyLocalFiles, []backupCandidate{standby("n2", at-2*limit)}, "", false, "replay lag"},
		{"stopped standby: fallback", "prefer-standby", standbyLocalFiles, []backupCandidate{primary, standby("n2", at, stopped)}, "", false, "n2: not running"},
		{"stopped standby: standby refuses", "standby", standbyLocalFiles, []backupCandidate{standby("n2", at, stopped)}, "", true, "not running"},
		{"another machine", "prefer-standby", standbyLocalFiles, []backupCandidate{standby("n2", at, far)}, "", false, "not on this machine"},
		{"no directory published", "prefer-standby", standbyLocalFiles, []backupCandidate{standby("n2", at, func(c *backupCandidate) { c.Record.DataDir = "" })}, "", false, "no data directory"},
		{"nobackup tag", "prefer-standby", standbyLocalFiles, []backupCandidate{standby("n2", at, func(c *backupCandidate) { c.Record.Tags = map[string]any{"nobackup": true} })}, "", false, "nobackup"},
		{"no standby at all", "prefer-standby", standbyLocalFiles, []backupCandidate{primary}, "", false, "no standby"},
		// Barman connects to the standby: no data directory needed, an address is.
		{"network: no directory needed", "prefer-standby", standbyNetwork, []backupCandidate{primary, standby("n2", at, func(c *backupCandidate) { c.Record.DataDir = "" })}, "n2", false, "lag 0"},
		{"network: no address", "prefer-standby", standbyNetwork, []backupCandidate{standby("n2", at, far)}, "", false, "n2: its conn_url names no host and port"},
		{"network: lagging standby refused", "standby", standbyNetwork, []backupCandidate{standby("n2", at-2*limit)}, "", true, "replay lag"},
		{"network: stopped standby, fallback", "prefer-standby", standbyNetwork, []backupCandidate{primary, standby("n2", at, stopped)}, "", false, "the primary serves"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			src, err := chooseBackupSource(tt.runOn, tt.access, at, limit, tt.cands)
			if (err != nil) != tt.refused {
				t.Fatalf("err %v, refused %v", err, tt.refused)
			}
			text := src.Reason
			if err != nil {
				text = err.Error()
			}
			if src.Standby != tt.want || !strings.Contains(text, tt.reason) {
				t.Errorf("chose %q (%s), want %q with %q", src.Standby, text, tt.want, tt.reason)
			}
		})
	}
}
