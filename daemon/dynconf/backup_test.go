package dynconf

import (
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

func TestBackupAccepts(t *testing.T) {
	t.Parallel()
	no, yes := false, true
	zero := time.Duration(0)
	tests := []struct {
		name string
		doc  string
		want Backup
	}{
		{"smallest pgbackrest", `{"backup":{"tool":"pgbackrest","pgbackrest":{"repo_path":"/srv/backups/"}}}`,
			Backup{Tool: ToolPgBackRest, PgBackRest: PgBackRest{RepoPath: "/srv/backups"}}},
		{"full pgbackrest", `{"backup":{"tool":"pgbackrest","run_on":"prefer-standby","archive_timeout":"30s","timeout":"2h",
			"retention":{"full_count":3,"diff_count":6},"replica_methods":["backup","basebackup"],
			"schedules":{"full":"0 1 * * 0","incr":{"cron":"30 0 1 * * 1-6","suspend":true},"diff":"@daily"},
			"pgbackrest":{"repo_path":"/r","stanza":"main-1","start_fast":false,"options":{"compress-type":"lz4","process-max":2,"archive-async":true}}}}`,
			Backup{Tool: ToolPgBackRest, RunOn: RunOnPreferStandby, ArchiveTimeout: ptr(30 * time.Second), Timeout: 2 * time.Hour,
				Retention: Retention{FullCount: 3, DiffCount: 6}, ReplicaMethods: []string{"backup", "basebackup"},
				Schedules:  map[string]Schedule{"full": {Cron: "0 1 * * 0"}, "incr": {Cron: "30 0 1 * * 1-6", Suspend: true}, "diff": {Cron: "@daily"}},
				PgBackRest: PgBackRest{RepoPath: "/r", Stanza: "main-1", StartFast: &no, Options: map[string]string{"compress-type": "lz4", "process-max": "2", "archive-async": "y"}}}},
		{"barman", `{"backup":{"tool":"barman","retention":{"full_days":7},"barman":{"home":"/b","server":"pg","slot_name":"barman_pg"}}}`,
			Backup{Tool: ToolBarman, Retention: Retention{FullDays: 7}, Barman: Barman{Home: "/b", Server: "pg", SlotName: "barman_pg"}}},
		{"custom without archiving", `{"backup":{"tool":"custom","archive":false,"archive_timeout":0,"custom":{"backup":"/x backup","list":"/x list","timeout":"10m"}}}`,
			Backup{Tool: ToolCustom, Archive: &no, ArchiveTimeout: &zero, Custom: Custom{Backup: "/x backup", List: "/x list", Timeout: 10 * time.Minute}}},
		{"custom with archiving", `{"backup":{"tool":"custom","archive":true,"custom":{"backup":"b","list":"l","restore":"r","expire":"e","archive_command":"cp %p /a/%f","restore_command":"cp /a/%f %p"}}}`,
			Backup{Tool: ToolCustom, Archive: &yes, Custom: Custom{Backup: "b", List: "l", Restore: "r", Expire: "e", ArchiveCommand: "cp %p /a/%f", RestoreCommand: "cp /a/%f %p"}}},
		{"tls server with defaults", `{"backup":{"tool":"pgbackrest","pgbackrest":{"repo_path":"/r","tls_server":{"enabled":true}}}}`,
			Backup{Tool: ToolPgBackRest, PgBackRest: PgBackRest{RepoPath: "/r", TLSServer: PgBackRestTLS{Enabled: true}}}},
		{"tls server with files", `{"backup":{"tool":"pgbackrest","pgbackrest":{"repo_path":"/r","tls_server":{"enabled":true,"port":9432,
			"cert_file":"/etc/ramd/pgbr.pem","key_file":"/etc/ramd/pgbr.key","ca_file":"/etc/ramd/ca.pem","client_cert_file":"/etc/ramd/c.pem","client_key_file":"/etc/ramd/c.key"}}}}`,
			Backup{Tool: ToolPgBackRest, PgBackRest: PgBackRest{RepoPath: "/r", TLSServer: PgBackRestTLS{Enabled: true, Port: 9432,
				CertFile: "/etc/ramd/pgbr.pem", KeyFile: "/etc/ramd/pgbr.key", CAFile: "/etc/ramd/ca.pem", ClientCertFile: "/etc/ramd/c.pem", ClientKeyFile: "/etc/ramd/c.key"}}}},
		{"nulls are unset", `{"backup":{"tool":"pgbackrest","run_on":null,"pgbackrest":{"repo_path":"/r","stanza":null}}}`,
			Backup{Tool: ToolPgBackRest, PgBackRest: PgBackRest{RepoPath: "/r"}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got, err := Validate(doc(t, tt.doc))
			if err != nil {
				t.Fatalf("Validate: %v", err)
			}
			if got.Backup == nil {
				t.Fatal("Backup is nil")
			}
			if d := cmp.Diff(tt.want, *got.Backup); d != "" {
				t.Errorf("backup (-want +got):\n%s", d)
			}
		})
	}
}

func ptr[T any](v T) *T { return &v }

func TestBackupRefuses(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name   string
		doc    string
		fields []string
		reason string
	}{
		{"not an object", `{"backup":"pgbackrest"}`, []string{"backup"}, "must be an object"},
		{"no tool", `{"backup":{}}`, []string{"backup.tool"}, "required"},
		{"unknown tool", `{"backup":{"tool":"tar"}}`, []string{"backup.tool"}, "pgbackrest, barman or custom"},
		{"pgbackrest without repo", `{"backup":{"tool":"pgbackrest"}}`, []string{"backup.pgbackrest.repo_path"}, "required"},
		{"relative repo", `{"backup":{"tool":"pgbackrest","pgbackrest":{"repo_path":"backups"}}}`, []string{"backup.pgbackrest.repo_path"}, "absolute"},
		{"bad cron", `{"backup":{"tool":"pgbackrest","pgbackrest":{"repo_path":"/r"},"schedules":{"full":"every sunday"}}}`, []string{"backup.schedules.full"}, "not a cron expression"},
		{"cron minute 61", `{"backup":{"tool":"pgbackrest","pgbackrest":{"repo_path":"/r"},"schedules":{"full":"61 * * * *"}}}`, []string{"backup.schedules.full"}, "not a cron expression"},
		{"schedule without cron", `{"backup":{"tool":"barman","schedules":{"full":{"suspend":true}}}}`, []string{"backup.schedules.full.cron"}, "required"},
		{"unknown backup type", `{"backup":{"tool":"pgbackrest","pgbackrest":{"repo_path":"/r"},"schedules":{"weekly":"@weekly"}}}`, []string{"backup.schedules.weekly"}, "unknown backup type"},
		{"barman incremental", `{"backup":{"tool":"barman","schedules":{"incr":"@daily"}}}`, []string{"backup.schedules.incr"}, "only full"},
		{"retention zero", `{"backup":{"tool":"pgbackrest","pgbackrest":{"repo_path":"/r"},"retention":{"full_count":0}}}`, []string{"backup.retention.full_count"}, "from 1 to 1000"},
		{"retention both", `{"backup":{"tool":"pgbackrest","pgbackrest":{"repo_path":"/r"},"retention":{"full_count":2,"full_days":3}}}`, []string{"backup.retention.full_days"}, "not both"},
		{"owned option", `{"backup":{"tool":"pgbackrest","pgbackrest":{"repo_path":"/r","options":{"pg1-path":"/x"}}}}`, []string{"backup.pgbackrest.options.pg1-path"}, "set by ramd"},
		{"tls server option is owned", `{"backup":{"tool":"pgbackrest","pgbackrest":{"repo_path":"/r","options":{"tls-server-port":"1"}}}}`, []string{"backup.pgbackrest.options.tls-server-port"}, "set by ramd"},
		{"tls server not an object", `{"backup":{"tool":"pgbackrest","pgbackrest":{"repo_path":"/r","tls_server":true}}}`, []string{"backup.pgbackrest.tls_server"}, "must be an object"},
		{"tls server port", `{"backup":{"tool":"pgbackrest","pgbackrest":{"repo_path":"/r","tls_server":{"enabled":true,"port":70000}}}}`, []string{"backup.pgbackrest.tls_server.port"}, "from 1 to 65535"},
		{"tls server enabled not a boolean", `{"backup":{"tool":"pgbackrest","pgbackrest":{"repo_path":"/r","tls_server":{"enabled":"yes"}}}}`, []string{"backup.pgbackrest.tls_server.enabled"}, "true or false"},
		{"tls server relative file", `{"backup":{"tool":"pgbackrest","pgbackrest":{"repo_path":"/r","tls_server":{"ca_file":"ca.pem"}}}}`, []string{"backup.pgbackrest.tls_server.ca_file"}, "absolute file path"},
		{"tls server cert without key", `{"backup":{"tool":"pgbackrest","pgbackrest":{"repo_path":"/r","tls_server":{"cert_file":"/c.pem"}}}}`, []string{"backup.pgbackrest.tls_server.key_file"}, "set together"},
		{"tls server client key without cert", `{"backup":{"tool":"pgbackrest","pgbackrest":{"repo_path":"/r","tls_server":{"client_key_file":"/c.key"}}}}`, []string{"backup.pgbackrest.tls_server.client_key_file"}, "set together"},
		{"tls server unknown key", `{"backup":{"tool":"pgbackrest","pgbackrest":{"repo_path":"/r","tls_server":{"address":"0.0.0.0"}}}}`, []string{"backup.pgbackrest.tls_server.address"}, "unknown key"},
		{"queue max is owned", `{"backup":{"tool":"pgbackrest","pgbackrest":{"repo_path":"/r","options":{"archive-push-queue-max":"1GB"}}}}`, []string{"backup.pgbackrest.options.archive-push-queue-max"}, "set by ramd"},
		{"option with newline", `{"backup":{"tool":"pgbackrest","pgbackrest":{"repo_path":"/r","options":{"compress-type":"lz4\n[x]"}}}}`, []string{"backup.pgbackrest.options.compress-type"}, "one line"},
		{"custom needs commands", `{"backup":{"tool":"custom"}}`, []string{"backup.custom.archive_command", "backup.custom.backup", "backup.custom.list"}, "required"},
		{"custom archive without %p", `{"backup":{"tool":"custom","custom":{"backup":"b","list":"l","archive_command":"true"}}}`, []string{"backup.custom.archive_command"}, "%p"},
		{"settings of another tool", `{"backup":{"tool":"barman","pgbackrest":{"repo_path":"/r"}}}`, []string{"backup.pgbackrest"}, "while backup.tool is barman"},
		{"run_on", `{"backup":{"tool":"barman","run_on":"anywhere"}}`, []string{"backup.run_on"}, "prefer-standby"},
		{"replica methods", `{"backup":{"tool":"barman","replica_methods":["rsync"]}}`, []string{"backup.replica_methods"}, "basebackup"},
		{"replica method twice", `{"backup":{"tool":"barman","replica_methods":["backup","backup"]}}`, []string{"backup.replica_methods"}, "twice"},
		{"timeout too short", `{"backup":{"tool":"barman","timeout":"1s"}}`, []string{"backup.timeout"}, "between 1m0s"},
		{"unknown key", `{"backup":{"tool":"barman","compress":true}}`, []string{"backup.compress"}, "unknown key"},
		{"bad slot", `{"backup":{"tool":"barman","barman":{"slot_name":"Barman-1"}}}`, []string{"backup.barman.slot_name"}, "replication slot name"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			c, err := Validate(doc(t, tt.doc))
			fes := Fields(err)
			var got []string
			for _, fe := range fes {
				got = append(got, fe.Field)
			}
			slices.Sort(got)
			if d := cmp.Diff(tt.fields, got); d != "" {
				t.Fatalf("refused fields (-want +got):\n%s\nerr: %v", d, err)
			}
			if !strings.Contains(fes[0].Reason, tt.reason) {
				t.Errorf("reason %q does not contain %q", fes[0].Reason, tt.reason)
			}
			if c.Backup != nil {
				t.Errorf("a refused backup object was kept: %+v", c.Backup)
			}
		})
	}
}

func TestBackupDefaults(t *testing.T) {
	t.Parallel()
	var b Backup
	if !b.Archiving() || b.ArchiveTimeoutValue() != time.Minute || b.RunOnValue() != RunOnPrimary || b.TimeoutValue() != 6*time.Hour {
		t.Errorf("defaults: archiving %v, archive_timeout %s, run_on %s, timeout %s", b.Archiving(), b.ArchiveTimeoutValue(), b.RunOnValue(), b.TimeoutValue())
	}
	if r := b.RetentionValue(); r.FullCount != 2 || r.FullDays != 0 {
		t.Errorf("default retention %+v, want two full backups", r)
	}
	if got := b.ReplicaMethodsValue(); !slices.Equal(got, []string{"basebackup"}) {
		t.Errorf("default replica methods %v", got)
	}
	if b.PgBackRest.StanzaOr("pg") != "pg" || b.Barman.ServerOr("pg") != "pg" || b.Barman.SlotValue() != "barman" || b.Barman.HomeValue() != "/var/lib/barman" {
		t.Error("names default to the scope and Barman's defaults")
	}
	b.Retention.FullDays = 7
	if r := b.RetentionValue(); r.FullCount != 0 || r.FullDays != 7 {
		t.Errorf("retention by days %+v", r)
	}
}

func TestBootstrap(t *testing.T) {
	t.Parallel()
	src := `"from":{"tool":"pgbackrest","pgbackrest":{"repo_path":"/r","stanza":"old"}}`
	tests := []struct {
		name, doc, field string
	}{
		{"initdb", `{"bootstrap":{"method":"initdb"}}`, ""},
		{"restore to the end", `{"bootstrap":{"method":"backup",` + src + `}}`, ""},
		{"restore to a time", `{"bootstrap":{"method":"backup",` + src + `,"target":{"type":"time","value":"2026-01-02T03:04:05Z"}}}`, ""},
		{"restore to an lsn, exclusive", `{"bootstrap":{"method":"backup",` + src + `,"target":{"type":"lsn","value":"0/3000028","exclusive":true}}}`, ""},
		{"restore a named backup", `{"bootstrap":{"method":"backup",` + src + `,"backup_id":"20260102-030405F","target":{"type":"immediate"}}}`, ""},
		{"unknown method", `{"bootstrap":{"method":"rsync"}}`, "bootstrap.method"},
		{"backup without a source", `{"bootstrap":{"method":"backup"}}`, "bootstrap.from"},
		{"source without a stanza", `{"bootstrap":{"method":"backup","from":{"tool":"pgbackrest","pgbackrest":{"repo_path":"/r"}}}}`, "bootstrap.from.pgbackrest.stanza"},
		{"source refused like a backup object", `{"bootstrap":{"method":"backup","from":{"tool":"tar"}}}`, "bootstrap.from.tool"},
		{"a time in the future", `{"bootstrap":{"method":"backup",` + src + `,"target":{"type":"time","value":"2999-01-01T00:00:00Z"}}}`, "bootstrap.target.value"},
		{"a time that is not one", `{"bootstrap":{"method":"backup",` + src + `,"target":{"type":"time","value":"yesterday"}}}`, "bootstrap.target.value"},
		{"a bad lsn", `{"bootstrap":{"method":"backup",` + src + `,"target":{"type":"lsn","value":"3000028"}}}`, "bootstrap.target.value"},
		{"an unknown target", `{"bootstrap":{"method":"backup",` + src + `,"target":{"type":"tomorrow"}}}`, "bootstrap.target.type"},
		{"into the source's stanza", `{"bootstrap":{"method":"backup",` + src + `},"backup":{"tool":"pgbackrest","pgbackrest":{"repo_path":"/r","stanza":"old"}}}`, "backup.pgbackrest.stanza"},
		{"into the source's stanza by scope", `{"bootstrap":{"method":"backup",` + src + `},"backup":{"tool":"pgbackrest","pgbackrest":{"repo_path":"/r"}}}`, "backup.pgbackrest.stanza"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			scope := "new"
			if strings.HasSuffix(tt.name, "by scope") {
				scope = "old"
			}
			c, err := CheckBootstrap(doc(t, tt.doc), scope)
			if tt.field == "" {
				if err != nil || c.Bootstrap == nil {
					t.Fatalf("refused: %v", err)
				}
				return
			}
			fes := Fields(err)
			if len(fes) == 0 || fes[0].Field != tt.field {
				t.Fatalf("refusal %v, want the field %s", err, tt.field)
			}
		})
	}
}
