package dynconf

import (
	"fmt"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/robfig/cron/v3"
)

// Backup tools.
const (
	ToolPgBackRest = "pgbackrest"
	ToolBarman     = "barman"
	ToolCustom     = "custom"
)

// Where backups run.
const (
	RunOnPrimary       = "primary"
	RunOnPreferStandby = "prefer-standby"
	RunOnStandby       = "standby"
)

// Backup types. Barman has only full backups.
const (
	BackupFull = "full"
	BackupDiff = "diff"
	BackupIncr = "incr"
)

// Replica creation methods, tried in order.
const (
	ReplicaBasebackup = "basebackup"
	ReplicaBackup     = "backup"
)

// Backup defaults.
const (
	DefaultBackupTimeout  = 6 * time.Hour
	DefaultArchiveTimeout = time.Minute
	DefaultRetentionFull  = 2
	DefaultBarmanHome     = "/var/lib/barman"
	DefaultBarmanSlot     = "barman"
	DefaultCustomTimeout  = time.Hour
	// DefaultTLSServerPort is pgBackRest's own default port of its TLS server.
	DefaultTLSServerPort     = 8432
	maxBackupTimeout         = 7 * 24 * time.Hour
	maxArchiveTimeout        = time.Hour
	maxRetentionCount        = 1000
	maxRetentionDays         = 3650
	maxCommandLength         = 4096
	maxPgBackRestOptionCount = 64
)

// Backup is the validated backup object of the configuration. Unset fields are zero; the
// methods return the values in force.
type Backup struct {
	Tool  string
	RunOn string
	// Archive is false only when archiving was switched off explicitly.
	Archive        *bool
	ArchiveTimeout *time.Duration
	Timeout        time.Duration
	Retention      Retention
	// Schedules by backup type (full, diff, incr).
	Schedules      map[string]Schedule
	ReplicaMethods []string

	PgBackRest PgBackRest
	Barman     Barman
	Custom     Custom
}

// Retention keeps full backups by count or by age, and differential ones by count.
type Retention struct {
	FullCount, FullDays, DiffCount int
}

// Schedule is one cron schedule.
type Schedule struct {
	Cron    string
	Suspend bool
}

// PgBackRest is the pgBackRest repository. Options are extra pgBackRest options written
// to the generated configuration's [global] section.
type PgBackRest struct {
	RepoPath  string
	Stanza    string
	StartFast *bool
	Options   map[string]string
	// TLSServer runs pgBackRest's TLS server on every member, so that a backup from a
	// standby reaches a standby on another host.
	TLSServer PgBackRestTLS
}

// PgBackRestTLS is pgBackRest's TLS server (`pgbackrest server`), run by ramd on every
// member while Enabled, on the member's advertised address and Port. The files are paths on
// each member; empty ones default there to the member's PostgreSQL TLS files: CertFile,
// KeyFile and CAFile to RAMD_PG_TLS_CERTFILE, _KEYFILE and _CAFILE, ClientCertFile and
// ClientKeyFile (what the leader presents to the standby's server; the server admits the
// common name of its own ClientCertFile) to RAMD_PG_TLS_REPLICATION_CERTFILE and _KEYFILE.
type PgBackRestTLS struct {
	Enabled                       bool
	Port                          int
	CertFile, KeyFile, CAFile     string
	ClientCertFile, ClientKeyFile string
}

// PortValue is the TLS server's port (8432 unless set).
func (t PgBackRestTLS) PortValue() int {
	if t.Port == 0 {
		return DefaultTLSServerPort
	}
	return t.Port
}

// Barman is a local Barman server (backup_method postgres, streaming archiver through a slot).
type Barman struct {
	Home     string
	Server   string
	SlotName string
}

// Custom are the user's commands (see docs/BACKUPS.md for their contract).
type Custom struct {
	Backup, Restore, List, Expire string
	// ArchiveCommand and RestoreCommand are PostgreSQL's archive_command and restore_command.
	ArchiveCommand, RestoreCommand string
	Timeout                        time.Duration
}

// Archiving reports whether ramd sets archive_mode=on with the tool's archive command.
func (b Backup) Archiving() bool { return b.Archive == nil || *b.Archive }

// ArchiveTimeoutValue is archive_timeout in force (0: off).
func (b Backup) ArchiveTimeoutValue() time.Duration {
	if b.ArchiveTimeout == nil {
		return DefaultArchiveTimeout
	}
	return *b.ArchiveTimeout
}

// RunOnValue is where backups run (primary by default).
func (b Backup) RunOnValue() string {
	if b.RunOn == "" {
		return RunOnPrimary
	}
	return b.RunOn
}

// TimeoutValue bounds one backup job.
func (b Backup) TimeoutValue() time.Duration {
	if b.Timeout == 0 {
		return DefaultBackupTimeout
	}
	return b.Timeout
}

// RetentionValue is the retention in force: two full backups unless set.
func (b Backup) RetentionValue() Retention {
	r := b.Retention
	if r.FullCount == 0 && r.FullDays == 0 {
		r.FullCount = DefaultRetentionFull
	}
	return r
}

// ReplicaMethodsValue are the replica creation methods in order (pg_basebackup by default).
func (b Backup) ReplicaMethodsValue() []string {
	if len(b.ReplicaMethods) == 0 {
		return []string{ReplicaBasebackup}
	}
	return b.ReplicaMethods
}

// StanzaOr is the pgBackRest stanza: the configured one or scope.
func (p PgBackRest) StanzaOr(scope string) string {
	if p.Stanza == "" {
		return scope
	}
	return p.Stanza
}

// StartFastValue asks for an immediate checkpoint (true unless switched off).
func (p PgBackRest) StartFastValue() bool { return p.StartFast == nil || *p.StartFast }

// ServerOr is the Barman server name: the configured one or scope.
func (b Barman) ServerOr(scope string) string {
	if b.Server == "" {
		return scope
	}
	return b.Server
}

// HomeValue is barman_home.
func (b Barman) HomeValue() string {
	if b.Home == "" {
		return DefaultBarmanHome
	}
	return b.Home
}

// SlotValue is the replication slot of Barman's streaming archiver.
func (b Barman) SlotValue() string {
	if b.SlotName == "" {
		return DefaultBarmanSlot
	}
	return b.SlotName
}

// TimeoutValue bounds one custom command.
func (c Custom) TimeoutValue() time.Duration {
	if c.Timeout == 0 {
		return DefaultCustomTimeout
	}
	return c.Timeout
}

// BackupTypes are the types the tool can take.
func BackupTypes(tool string) []string {
	if tool == ToolBarman {
		return []string{BackupFull}
	}
	return []string{BackupFull, BackupDiff, BackupIncr}
}

// CronParser reads schedules: five fields (minute hour day-of-month month day-of-week), an
// optional leading seconds field, or a descriptor such as @daily, in UTC.
var CronParser = cron.NewParser(cron.SecondOptional | cron.Minute | cron.Hour | cron.Dom | cron.Month | cron.Dow | cron.Descriptor)

var (
	nameRe   = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9_-]*$`) // and at most 63 bytes
	slotRe   = regexp.MustCompile(`^[a-z0-9_]+$`)                // and at most 63 bytes
	optionRe = regexp.MustCompile(`^[a-z0-9][a-z0-9-]*$`)        // and at most 64 bytes
)

// ownedPgBackRestOptions are written by ramd per node; backup.pgbackrest.options may not set them.
var ownedPgBackRestOptions = []string{"stanza", "config", "config-path", "config-include-path", "repo1-path",
	"log-path", "lock-path", "spool-path", "repo1-retention-full", "repo1-retention-full-type", "repo1-retention-diff",
	"archive-push-queue-max", "start-fast", "backup-standby", "type", "set", "target", "target-action", "delta"}

// ownedPgBackRestPrefixes start the option names ramd sets per node (pgN-*, the TLS server's).
var ownedPgBackRestPrefixes = []string{"pg1-", "pg2-", "tls-server-"}

// checkBackup validates the backup object into c.Backup.
func checkBackup(c *Config, v any) []*FieldError {
	m, ok := v.(map[string]any)
	if !ok {
		return []*FieldError{{"backup", v, "must be an object"}}
	}
	b := &Backup{}
	var errs []*FieldError
	fail := func(field string, val any, why string) {
		errs = append(errs, &FieldError{"backup." + field, val, why})
	}
	for key, val := range m {
		if val == nil {
			continue
		}
		switch key {
		case "tool":
			s, _ := val.(string)
			if s != ToolPgBackRest && s != ToolBarman && s != ToolCustom {
				fail(key, val, "must be pgbackrest, barman or custom")
				continue
			}
			b.Tool = s
		case "run_on":
			s, _ := val.(string)
			if s != RunOnPrimary && s != RunOnPreferStandby && s != RunOnStandby {
				fail(key, val, "must be primary, prefer-standby or standby")
				continue
			}
			b.RunOn = s
		case "archive":
			x, ok := val.(bool)
			if !ok {
				fail(key, val, "must be true or false")
				continue
			}
			b.Archive = &x
		case "archive_timeout":
			d, why := duration(val, 0, maxArchiveTimeout)
			if why != "" {
				fail(key, val, why)
				continue
			}
			b.ArchiveTimeout = &d
		case "timeout":
			d, why := duration(val, time.Minute, maxBackupTimeout)
			if why != "" {
				fail(key, val, why)
				continue
			}
			b.Timeout = d
		case "retention":
			errs = append(errs, checkRetention(b, val)...)
		case "schedules":
			errs = append(errs, checkSchedules(b, val)...)
		case "replica_methods":
			errs = append(errs, checkReplicaMethods(b, val)...)
		case "pgbackrest", "barman", "custom":
			sub, ok := val.(map[string]any)
			if !ok {
				fail(key, val, "must be an object")
				continue
			}
			switch key {
			case "pgbackrest":
				errs = append(errs, checkPgBackRest(&b.PgBackRest, sub)...)
			case "barman":
				errs = append(errs, checkBarman(&b.Barman, sub)...)
			default:
				errs = append(errs, checkCustom(&b.Custom, sub)...)
			}
		default:
			fail(key, val, "unknown key: not part of the backup configuration (see docs/BACKUPS.md)")
		}
	}
	if len(errs) > 0 {
		return errs
	}
	errs = append(errs, checkBackupTool(b, m)...)
	if len(errs) == 0 {
		c.Backup = b
	}
	return errs
}

// checkBackupTool checks what depends on the chosen tool.
func checkBackupTool(b *Backup, m map[string]any) []*FieldError {
	var errs []*FieldError
	fail := func(field string, val any, why string) {
		errs = append(errs, &FieldError{"backup." + field, val, why})
	}
	switch b.Tool {
	case "":
		fail("tool", nil, "required: pgbackrest, barman or custom")
	case ToolPgBackRest:
		if b.PgBackRest.RepoPath == "" {
			fail("pgbackrest.repo_path", nil, "required: the directory of the pgBackRest repository")
		}
	case ToolCustom:
		if b.Custom.Backup == "" {
			fail("custom.backup", nil, "required: the command that takes a backup")
		}
		if b.Custom.List == "" {
			fail("custom.list", nil, "required: the command that lists backups")
		}
		if b.Archiving() && b.Custom.ArchiveCommand == "" {
			fail("custom.archive_command", nil, "required while backup.archive is true (or set backup.archive to false)")
		}
	}
	for _, other := range []string{ToolPgBackRest, ToolBarman, ToolCustom} {
		if other != b.Tool && b.Tool != "" && m[other] != nil {
			fail(other, m[other], "settings of "+other+" while backup.tool is "+b.Tool)
		}
	}
	types := BackupTypes(b.Tool)
	for typ, s := range b.Schedules {
		if b.Tool != "" && !slices.Contains(types, typ) {
			fail("schedules."+typ, s.Cron, b.Tool+" takes only "+strings.Join(types, ", ")+" backups")
		}
	}
	if b.Retention.DiffCount > 0 && b.Tool == ToolBarman {
		fail("retention.diff_count", b.Retention.DiffCount, "barman has no differential backups")
	}
	return errs
}

func checkRetention(b *Backup, v any) []*FieldError {
	m, ok := v.(map[string]any)
	if !ok {
		return []*FieldError{{"backup.retention", v, "must be an object"}}
	}
	var errs []*FieldError
	for key, val := range m {
		if val == nil {
			continue
		}
		field := "backup.retention." + key
		var n int64
		var why string
		switch key {
		case "full_count", "diff_count":
			n, why = wholeNumber(val, 1, maxRetentionCount)
		case "full_days":
			n, why = wholeNumber(val, 1, maxRetentionDays)
		default:
			errs = append(errs, &FieldError{field, val, "unknown key: full_count, full_days or diff_count"})
			continue
		}
		if why != "" {
			errs = append(errs, &FieldError{field, val, why})
			continue
		}
		switch key {
		case "full_count":
			b.Retention.FullCount = int(n)
		case "full_days":
			b.Retention.FullDays = int(n)
		default:
			b.Retention.DiffCount = int(n)
		}
	}
	if b.Retention.FullCount > 0 && b.Retention.FullDays > 0 {
		errs = append(errs, &FieldError{"backup.retention.full_days", m["full_days"], "set either full_count or full_days, not both"})
	}
	return errs
}

func checkSchedules(b *Backup, v any) []*FieldError {
	m, ok := v.(map[string]any)
	if !ok {
		return []*FieldError{{"backup.schedules", v, "must be an object of backup type (full, diff, incr) to a cron expression or {cron, suspend}"}}
	}
	var errs []*FieldError
	b.Schedules = map[string]Schedule{}
	for typ, val := range m {
		if val == nil {
			continue
		}
		field := "backup.schedules." + typ
		if typ != BackupFull && typ != BackupDiff && typ != BackupIncr {
			errs = append(errs, &FieldError{field, val, "unknown backup type: full, diff or incr"})
			continue
		}
		var s Schedule
		switch x := val.(type) {
		case string:
			s.Cron = x
		case map[string]any:
			for k, kv := range x {
				switch k {
				case "cron":
					s.Cron, _ = kv.(string)
					if s.Cron == "" {
						errs = append(errs, &FieldError{field + ".cron", kv, "must be a cron expression"})
					}
				case "suspend":
					sb, ok := kv.(bool)
					if !ok {
						errs = append(errs, &FieldError{field + ".suspend", kv, "must be true or false"})
					}
					s.Suspend = sb
				default:
					errs = append(errs, &FieldError{field + "." + k, kv, "unknown key: cron or suspend"})
				}
			}
		default:
			errs = append(errs, &FieldError{field, val, "must be a cron expression or {cron, suspend}"})
			continue
		}
		if s.Cron == "" {
			if _, ok := val.(string); ok {
				errs = append(errs, &FieldError{field, val, "must be a cron expression"})
			} else if _, given := val.(map[string]any)["cron"]; !given {
				errs = append(errs, &FieldError{field + ".cron", nil, "required: a cron expression"})
			}
			continue
		}
		if _, err := CronParser.Parse(s.Cron); err != nil {
			errs = append(errs, &FieldError{field, val, "not a cron expression (minute hour day month weekday, an optional leading seconds field, or @daily and the like): " + err.Error()})
			continue
		}
		b.Schedules[typ] = s
	}
	return errs
}

func checkReplicaMethods(b *Backup, v any) []*FieldError {
	list, ok := v.([]any)
	if !ok || len(list) == 0 {
		return []*FieldError{{"backup.replica_methods", v, `must be a non-empty list of "backup" and "basebackup"`}}
	}
	for _, x := range list {
		s, _ := x.(string)
		if s != ReplicaBackup && s != ReplicaBasebackup {
			return []*FieldError{{"backup.replica_methods", v, `each method must be "backup" (restore the latest backup) or "basebackup" (pg_basebackup from the leader)`}}
		}
		if slices.Contains(b.ReplicaMethods, s) {
			return []*FieldError{{"backup.replica_methods", v, "a method is listed twice"}}
		}
		b.ReplicaMethods = append(b.ReplicaMethods, s)
	}
	return nil
}

func checkPgBackRest(p *PgBackRest, m map[string]any) []*FieldError {
	var errs []*FieldError
	fail := func(field string, val any, why string) {
		errs = append(errs, &FieldError{"backup.pgbackrest." + field, val, why})
	}
	for key, val := range m {
		if val == nil {
			continue
		}
		switch key {
		case "repo_path":
			s, why := absPath(val)
			if why != "" {
				fail(key, val, why)
			}
			p.RepoPath = s
		case "stanza":
			s, _ := val.(string)
			if len(s) > 63 || !nameRe.MatchString(s) {
				fail(key, val, "must be 1 to 63 letters, digits, '-' or '_', starting with a letter or digit")
			}
			p.Stanza = s
		case "start_fast":
			x, ok := val.(bool)
			if !ok {
				fail(key, val, "must be true or false")
			}
			p.StartFast = &x
		case "options":
			errs = append(errs, checkPgBackRestOptions(p, val)...)
		case "tls_server":
			sub, ok := val.(map[string]any)
			if !ok {
				fail(key, val, "must be an object")
				continue
			}
			errs = append(errs, checkTLSServer(&p.TLSServer, sub)...)
		default:
			fail(key, val, "unknown key: repo_path, stanza, start_fast, options or tls_server")
		}
	}
	return errs
}

// checkPgBackRestOptions validates backup.pgbackrest.options into p.Options.
func checkPgBackRestOptions(p *PgBackRest, val any) []*FieldError {
	var errs []*FieldError
	fail := func(field string, val any, why string) {
		errs = append(errs, &FieldError{"backup.pgbackrest." + field, val, why})
	}
	key := "options"
	opts, ok := val.(map[string]any)
	if !ok || len(opts) > maxPgBackRestOptionCount {
		fail(key, val, fmt.Sprintf("must be an object of at most %d pgBackRest option names to values", maxPgBackRestOptionCount))
		return errs
	}
	p.Options = map[string]string{}
	for name, ov := range opts {
		if ov == nil {
			continue
		}
		switch {
		case len(name) > 64 || !optionRe.MatchString(name):
			fail("options."+name, ov, "not a pgBackRest option name (lower case letters, digits and '-')")
		case slices.Contains(ownedPgBackRestOptions, name) || slices.ContainsFunc(ownedPgBackRestPrefixes, func(p string) bool { return strings.HasPrefix(name, p) }):
			fail("options."+name, ov, "set by ramd per node and job; cannot be set here")
		default:
			s, ok := ParameterText(ov)
			if !ok || strings.ContainsAny(s, "\n\r") {
				fail("options."+name, ov, "must be a string, a number or a boolean on one line")
				continue
			}
			if _, isBool := ov.(bool); isBool {
				s = map[bool]string{true: "y", false: "n"}[ov.(bool)]
			}
			p.Options[name] = s
		}
	}
	return errs
}

// checkTLSServer validates backup.pgbackrest.tls_server into t.
func checkTLSServer(t *PgBackRestTLS, m map[string]any) []*FieldError {
	var errs []*FieldError
	fail := func(field string, val any, why string) {
		errs = append(errs, &FieldError{"backup.pgbackrest.tls_server." + field, val, why})
	}
	files := map[string]*string{"cert_file": &t.CertFile, "key_file": &t.KeyFile, "ca_file": &t.CAFile,
		"client_cert_file": &t.ClientCertFile, "client_key_file": &t.ClientKeyFile}
	for key, val := range m {
		if val == nil {
			continue
		}
		switch key {
		case "enabled":
			x, ok := val.(bool)
			if !ok {
				fail(key, val, "must be true or false")
			}
			t.Enabled = x
		case "port":
			n, why := wholeNumber(val, 1, 65535)
			if why != "" {
				fail(key, val, why)
				continue
			}
			t.Port = int(n)
		case "cert_file", "key_file", "ca_file", "client_cert_file", "client_key_file":
			s, ok := val.(string)
			if !ok || !filepath.IsAbs(s) || strings.ContainsAny(s, "\n\r\x00'\"") {
				fail(key, val, "must be an absolute file path (no quotes)")
				continue
			}
			*files[key] = filepath.Clean(s)
		default:
			fail(key, val, "unknown key: enabled, port, cert_file, key_file, ca_file, client_cert_file or client_key_file")
		}
	}
	if (t.CertFile == "") != (t.KeyFile == "") {
		fail("key_file", t.KeyFile, "cert_file and key_file are set together (or both left to RAMD_PG_TLS_CERTFILE and RAMD_PG_TLS_KEYFILE)")
	}
	if (t.ClientCertFile == "") != (t.ClientKeyFile == "") {
		fail("client_key_file", t.ClientKeyFile, "client_cert_file and client_key_file are set together (or both left to RAMD_PG_TLS_REPLICATION_CERTFILE and _KEYFILE)")
	}
	return errs
}

func checkBarman(b *Barman, m map[string]any) []*FieldError {
	var errs []*FieldError
	fail := func(field string, val any, why string) {
		errs = append(errs, &FieldError{"backup.barman." + field, val, why})
	}
	for key, val := range m {
		if val == nil {
			continue
		}
		switch key {
		case "home":
			s, why := absPath(val)
			if why != "" {
				fail(key, val, why)
			}
			b.Home = s
		case "server":
			s, _ := val.(string)
			if len(s) > 63 || !nameRe.MatchString(s) {
				fail(key, val, "must be 1 to 63 letters, digits, '-' or '_', starting with a letter or digit")
			}
			b.Server = s
		case "slot_name":
			s, _ := val.(string)
			if len(s) > 63 || !slotRe.MatchString(s) {
				fail(key, val, "must be 1 to 63 lower case letters, digits or '_' (a replication slot name)")
			}
			b.SlotName = s
		default:
			fail(key, val, "unknown key: home, server or slot_name")
		}
	}
	return errs
}

func checkCustom(c *Custom, m map[string]any) []*FieldError {
	var errs []*FieldError
	fail := func(field string, val any, why string) {
		errs = append(errs, &FieldError{"backup.custom." + field, val, why})
	}
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, key := range keys {
		val := m[key]
		if val == nil {
			continue
		}
		if key == "timeout" {
			d, why := duration(val, time.Second, maxBackupTimeout)
			if why != "" {
				fail(key, val, why)
			}
			c.Timeout = d
			continue
		}
		var dst *string
		switch key {
		case "backup":
			dst = &c.Backup
		case "restore":
			dst = &c.Restore
		case "list":
			dst = &c.List
		case "expire":
			dst = &c.Expire
		case "archive_command":
			dst = &c.ArchiveCommand
		case "restore_command":
			dst = &c.RestoreCommand
		default:
			fail(key, val, "unknown key: backup, restore, list, expire, archive_command, restore_command or timeout")
			continue
		}
		s, ok := val.(string)
		if !ok || strings.TrimSpace(s) == "" || len(s) > maxCommandLength || strings.ContainsAny(s, "\n\r\x00") {
			fail(key, val, fmt.Sprintf("must be a command line of at most %d characters", maxCommandLength))
			continue
		}
		if (key == "archive_command" || key == "restore_command") && !strings.Contains(s, "%p") {
			fail(key, val, "must contain %p (the WAL file's path), as PostgreSQL substitutes it")
			continue
		}
		*dst = s
	}
	return errs
}

func absPath(v any) (string, string) {
	s, ok := v.(string)
	if !ok || s == "" || !filepath.IsAbs(s) || strings.ContainsAny(s, "\n\r\x00'\"") {
		return "", "must be an absolute directory path (no quotes)"
	}
	return filepath.Clean(s), ""
}
