package api

import "net/http"

// backupDocs are the backup routes.
var backupDocs = []routeDoc{
	{http.MethodPost, "/api/v1/backups", "Queue a backup {type: full|diff|incr} (full when empty): 202 {job_id, job_url}; 409 when no tool is configured, 400 naming the field."},
	{http.MethodGet, "/api/v1/backups", "The repository's backups (oldest first) with type, status, LSN and WAL range, sizes and job id; the archive's WAL range, the first recoverability point and the age of the newest good backup."},
	{http.MethodGet, "/api/v1/backups/{id}", "One backup, by the tool's label or by the id of the job that took it; 404 when absent."},
	{http.MethodPost, "/api/v1/backups/expire", "Queue a job that applies the retention: 202 {job_id, job_url}."},
	{http.MethodPost, "/api/v1/backups/check", "Queue a job that checks the repository and WAL archiving from the primary: 202 {job_id, job_url}."},
	{http.MethodGet, "/api/v1/backup-schedules", "The backup schedules: type, cron expression, suspended, last and next tick."},
	{http.MethodPost, "/api/v1/backup-schedules/{type}/run", "Run a scheduled backup type now: 202 {job_id, job_url}."},
	{http.MethodPost, "/api/v1/backup/start", "The same as POST /api/v1/backups."},
	{http.MethodGet, "/api/v1/backup/list", "The same as GET /api/v1/backups."},
	{http.MethodGet, "/api/v1/backup/jobs", "The backup, expire, check and restore jobs, newest first."},
	{http.MethodPost, "/api/v1/restore", "In-place restore of the running cluster as a job {backup_id?, target?: {type: end|immediate|time|xid|lsn|name, value, exclusive?}, confirm: the cluster's name}: 202 {job_id, job_url}. The job holds failover, stops the replicas and the primary, restores on the leader, which promotes at the target on a new timeline, and has the replicas clone it again. 400 names the field (confirm missing or wrong, a target in the future or before the first recoverability point, an unknown backup), 409 when another backup job is queued or running or the cluster is paused; a refusal changes nothing."},
	{http.MethodPost, "/api/v1/backup/restore", "The same as POST /api/v1/restore."},
	{http.MethodGet, "/api/v1/backup/status/{id}", "A backup, expire, check or restore job (the same as GET /api/v1/jobs/{id}): phases, member, tool record, restore target and new timeline."},
	{http.MethodPost, "/api/v1/backup/schedule", "Set, suspend, resume or remove a schedule {type, cron?, suspend?, remove?}; written into the configuration (validated, 400 naming the field)."},
}

// backupConfigSchema is the JSON schema of the configuration's backup object.
func backupConfigSchema() map[string]any {
	str := func(desc string) map[string]any { return map[string]any{"type": "string", "description": desc} }
	dur := func(desc string) map[string]any {
		return map[string]any{"oneOf": []any{map[string]any{"type": "number"}, map[string]any{"type": "string"}}, "description": desc}
	}
	count := func(lo, hi int, desc string) map[string]any {
		return map[string]any{"type": "integer", "minimum": lo, "maximum": hi, "description": desc}
	}
	schedule := map[string]any{"oneOf": []any{
		str("a cron expression: minute hour day month weekday, an optional leading seconds field, or @daily and the like (UTC)"),
		map[string]any{"type": "object", "additionalProperties": false, "required": []string{"cron"}, "properties": map[string]any{
			"cron": str("the cron expression"), "suspend": map[string]any{"type": "boolean"}}},
	}}
	obj := func(props map[string]any, required ...string) map[string]any {
		o := map[string]any{"type": "object", "additionalProperties": false, "properties": props}
		if len(required) > 0 {
			o["required"] = required
		}
		return o
	}
	return obj(map[string]any{
		"tool":            map[string]any{"type": "string", "enum": []string{"pgbackrest", "barman", "custom"}},
		"run_on":          map[string]any{"type": "string", "enum": []string{"primary", "prefer-standby", "standby"}, "default": "primary"},
		"archive":         map[string]any{"type": "boolean", "default": true, "description": "archive WAL with the tool's archive_command (archive_mode is always on)"},
		"archive_timeout": dur("archive_timeout while a tool is configured (default 60s, 0 off, at most 1h)"),
		"timeout":         dur("bound of one backup job (default 6h, 1m to 7d)"),
		"retention": obj(map[string]any{
			"full_count": count(1, 1000, "keep this many full backups (default 2)"),
			"full_days":  count(1, 3650, "keep full backups this many days (instead of full_count)"),
			"diff_count": count(1, 1000, "keep this many differential backups (pgBackRest)"),
		}),
		"schedules": obj(map[string]any{"full": schedule, "diff": schedule, "incr": schedule}),
		"replica_methods": map[string]any{"type": "array", "minItems": 1, "uniqueItems": true,
			"items": map[string]any{"type": "string", "enum": []string{"backup", "basebackup"}}, "default": []string{"basebackup"}},
		"pgbackrest": obj(map[string]any{
			"repo_path":  str("absolute path of the repository (required)"),
			"stanza":     str("stanza name (default: the cluster's scope)"),
			"start_fast": map[string]any{"type": "boolean", "default": true},
			"options":    map[string]any{"type": "object", "description": "extra pgBackRest options for [global], except those ramd sets per node", "additionalProperties": map[string]any{"oneOf": []any{map[string]any{"type": "string"}, map[string]any{"type": "number"}, map[string]any{"type": "boolean"}}}},
			"tls_server": obj(map[string]any{
				"enabled":          map[string]any{"type": "boolean", "default": false, "description": "run pgBackRest's TLS server on every member (on its advertised address), so backups from a standby reach standbys on other hosts"},
				"port":             count(1, 65535, "port of the TLS server (default 8432)"),
				"cert_file":        str("server certificate on each member; must name the member's advertised address as a DNS name or the common name (pgBackRest 2.45 ignores IP SANs) (default RAMD_PG_TLS_CERTFILE)"),
				"key_file":         str("key of cert_file (default RAMD_PG_TLS_KEYFILE)"),
				"ca_file":          str("CA bundle both sides verify against (default RAMD_PG_TLS_CAFILE)"),
				"client_cert_file": str("client certificate the leader presents; the servers admit its common name for the stanza (default RAMD_PG_TLS_REPLICATION_CERTFILE)"),
				"client_key_file":  str("key of client_cert_file (default RAMD_PG_TLS_REPLICATION_KEYFILE)"),
			}),
		}),
		"barman": obj(map[string]any{
			"home":      str("barman_home (default /var/lib/barman), shared by the members"),
			"server":    str("Barman server name (default: the cluster's scope)"),
			"slot_name": str("replication slot of the streaming archiver (default barman)"),
		}),
		"custom": obj(map[string]any{
			"backup": str("command that takes a backup (required)"), "list": str("command that lists backups (required)"),
			"restore": str("command that restores"), "expire": str("command that applies the retention"),
			"archive_command": str("PostgreSQL's archive_command (%p, %f); required while archive is true"),
			"restore_command": str("PostgreSQL's restore_command"), "timeout": dur("bound of one command (default 1h)"),
		}),
	}, "tool")
}
