package daemon

import (
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/ramd-project/ramd/consul"
	"github.com/ramd-project/ramd/daemon/dynconf"
	"github.com/ramd-project/ramd/daemon/pg"
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
		{"another machine", "prefer-standby", standbyLocalFiles, []backupCandidate{standby("n2", at, far)}, "", false, "not on this machine (a standby on another host needs backup.pgbackrest.tls_server)"},
		{"another machine: the primary serves", "prefer-standby", standbyLocalFiles, []backupCandidate{primary, standby("n2", at, far)}, "", false, "the primary serves"},
		// pgBackRest over its TLS server: a standby on another host serves; it must
		// publish its directory and an address.
		{"tls: another machine serves", "prefer-standby", standbyTLS, []backupCandidate{primary, standby("n2", at)}, "n2", false, "lag 0"},
		{"tls: no directory published", "prefer-standby", standbyTLS, []backupCandidate{standby("n2", at, func(c *backupCandidate) { c.Record.DataDir = "" })}, "", false, "no data directory"},
		{"tls: no address", "standby", standbyTLS, []backupCandidate{standby("n2", at, far)}, "", true, "names no host and port"},
		{"tls: stopped standby, fallback", "prefer-standby", standbyTLS, []backupCandidate{primary, standby("n2", at, stopped)}, "", false, "the primary serves"},
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

func TestStandbyAccessOf(t *testing.T) {
	t.Parallel()
	tls := dynconf.PgBackRest{TLSServer: dynconf.PgBackRestTLS{Enabled: true}}
	tests := []struct {
		name string
		cfg  dynconf.Backup
		want standbyAccess
	}{
		{"pgbackrest without the tls server", dynconf.Backup{Tool: dynconf.ToolPgBackRest}, standbyLocalFiles},
		{"pgbackrest with the tls server", dynconf.Backup{Tool: dynconf.ToolPgBackRest, PgBackRest: tls}, standbyTLS},
		{"barman", dynconf.Backup{Tool: dynconf.ToolBarman}, standbyNetwork},
		{"custom", dynconf.Backup{Tool: dynconf.ToolCustom}, standbyLocalFiles},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			if got := standbyAccessOf(&tt.cfg); got != tt.want {
				t.Errorf("access %d, want %d", got, tt.want)
			}
		})
	}
}

func TestResolveTLSServer(t *testing.T) {
	t.Parallel()
	pc := pg.Config{TLSCertFile: "/pg/server.pem", TLSKeyFile: "/pg/server.key", TLSCAFile: "/pg/ca.pem",
		TLSReplicationCertFile: "/pg/repl.pem", TLSReplicationKeyFile: "/pg/repl.key"}
	all := dynconf.PgBackRestTLS{Enabled: true, CertFile: "/pgbr/s.pem", KeyFile: "/pgbr/s.key", CAFile: "/pgbr/ca.pem",
		ClientCertFile: "/pgbr/c.pem", ClientKeyFile: "/pgbr/c.key"}
	tests := []struct {
		name string
		in   dynconf.PgBackRestTLS
		want dynconf.PgBackRestTLS
	}{
		{"disabled: untouched", dynconf.PgBackRestTLS{}, dynconf.PgBackRestTLS{}},
		{"enabled: PostgreSQL's files", dynconf.PgBackRestTLS{Enabled: true, Port: 9000}, dynconf.PgBackRestTLS{Enabled: true, Port: 9000,
			CertFile: "/pg/server.pem", KeyFile: "/pg/server.key", CAFile: "/pg/ca.pem", ClientCertFile: "/pg/repl.pem", ClientKeyFile: "/pg/repl.key"}},
		{"enabled: own files kept", all, all},
		{"enabled: own CA only", dynconf.PgBackRestTLS{Enabled: true, CAFile: "/pgbr/ca.pem"}, dynconf.PgBackRestTLS{Enabled: true,
			CertFile: "/pg/server.pem", KeyFile: "/pg/server.key", CAFile: "/pgbr/ca.pem", ClientCertFile: "/pg/repl.pem", ClientKeyFile: "/pg/repl.key"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			b := dynconf.Backup{Tool: dynconf.ToolPgBackRest, PgBackRest: dynconf.PgBackRest{RepoPath: "/r", TLSServer: tt.in}}
			got := resolveTLSServer(b, pc).PgBackRest.TLSServer
			if d := cmp.Diff(tt.want, got); d != "" {
				t.Errorf("tls server (-want +got):\n%s", d)
			}
		})
	}
}

// The primary's view of a standby's replay moves a stale record forward, never back; the
// chosen source then passes the lag limit a stale record failed (an idle standby
// republishes every 30 s, and a WAL switch moves the primary a whole segment ahead).
func TestReplayedPositions(t *testing.T) {
	t.Parallel()
	lsn := func(v uint64) *uint64 { return &v }
	seen := replayedBy([]pg.Replication{
		{ApplicationName: "n2", ReplayLSN: 0x3000000},
		{ApplicationName: "n3", ReplayLSN: 0x1000},
		{ApplicationName: "", ReplayLSN: 0x9000000}, // a client without a name: ignored
		{ApplicationName: "n4"},                     // nothing replayed yet: ignored
	})
	if diff := cmp.Diff(map[string]uint64{"n2": 0x3000000, "n3": 0x1000}, seen); diff != "" {
		t.Errorf("replayedBy (-want +got):\n%s", diff)
	}
	for _, tt := range []struct {
		name   string
		record *uint64
		seen   uint64
		want   *uint64
	}{
		{"stale record moved forward", lsn(0x2019800), 0x3000000, lsn(0x3000000)},
		{"record ahead kept", lsn(0x3000100), 0x3000000, lsn(0x3000100)},
		{"not seen by the primary", lsn(0x2000000), 0, lsn(0x2000000)},
		{"record without a position", nil, 0x1000, lsn(0x1000)},
		{"neither", nil, 0, nil},
	} {
		got := withReplayed(consul.Member{ReplayLSN: tt.record}, tt.seen).ReplayLSN
		if diff := cmp.Diff(tt.want, got); diff != "" {
			t.Errorf("%s (-want +got):\n%s", tt.name, diff)
		}
	}
	// The record alone is 16 MiB behind and refused; with the primary's view it serves.
	stale := consul.Member{Role: "replica", State: "running", ReplicationState: "streaming", DataDir: "/srv/n2", ReplayLSN: lsn(0x2019800)}
	cands := []backupCandidate{{Name: "n2", Record: withReplayed(stale, seen["n2"]), Reachable: true}}
	if _, err := chooseBackupSource(dynconf.RunOnStandby, standbyLocalFiles, 0x3000000, 1<<20, cands); err != nil {
		t.Errorf("standby with the primary's fresh position refused: %v", err)
	}
	cands[0].Record = stale
	if _, err := chooseBackupSource(dynconf.RunOnStandby, standbyLocalFiles, 0x3000000, 1<<20, cands); err == nil {
		t.Error("standby with a stale record 16 MiB behind accepted")
	}
}
