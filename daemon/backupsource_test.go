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
		name     string
		runOn    string
		supports bool
		cands    []backupCandidate
		want     string // standby chosen, "" the primary
		refused  bool
		reason   string // a part of the reason or error
	}{
		{"primary asked", "primary", true, []backupCandidate{standby("n2", at)}, "", false, "run_on is primary"},
		{"default is the primary", "", true, []backupCandidate{standby("n2", at)}, "", false, "primary"},
		{"prefer-standby takes the standby", "prefer-standby", true, []backupCandidate{primary, standby("n2", at)}, "n2", false, "lag 0"},
		{"the least lag wins", "prefer-standby", true, []backupCandidate{standby("n3", at-100), standby("n2", at-500)}, "n3", false, "lag 100"},
		{"ties by name", "standby", true, []backupCandidate{standby("n3", at), standby("n2", at)}, "n2", false, "n2"},
		{"lagging standby passed over", "prefer-standby", true, []backupCandidate{standby("n2", at-2*limit)}, "", false, "replay lag"},
		{"stopped standby: fallback", "prefer-standby", true, []backupCandidate{primary, standby("n2", at, stopped)}, "", false, "n2: not running"},
		{"stopped standby: standby refuses", "standby", true, []backupCandidate{standby("n2", at, stopped)}, "", true, "not running"},
		{"another machine", "prefer-standby", true, []backupCandidate{standby("n2", at, far)}, "", false, "not on this machine"},
		{"no directory published", "prefer-standby", true, []backupCandidate{standby("n2", at, func(c *backupCandidate) { c.Record.DataDir = "" })}, "", false, "no data directory"},
		{"nobackup tag", "prefer-standby", true, []backupCandidate{standby("n2", at, func(c *backupCandidate) { c.Record.Tags = map[string]any{"nobackup": true} })}, "", false, "nobackup"},
		{"no standby at all", "prefer-standby", true, []backupCandidate{primary}, "", false, "no standby"},
		{"tool without standby backups: fallback", "prefer-standby", false, []backupCandidate{standby("n2", at)}, "", false, "cannot take a backup from a standby"},
		{"tool without standby backups: refused", "standby", false, []backupCandidate{standby("n2", at)}, "", true, "cannot"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			src, err := chooseBackupSource(tt.runOn, tt.supports, "barman", at, limit, tt.cands)
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
