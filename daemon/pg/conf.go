package pg

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
)

// MinMajorVersion is the oldest PostgreSQL major version ramd manages: primary_conninfo and
// primary_slot_name became reloadable and wal_keep_size appeared in 13, and pg_rewind
// runs crash recovery itself since 13.
const MinMajorVersion = 13

const (
	ramdConf      = "ramd.conf"
	standbySignal = "standby.signal"
)

// Settings are the per-role settings WriteConfig renders next to the fixed managed ones.
type Settings struct {
	// Standby writes standby.signal. When false, standby.signal is removed only while
	// the server is stopped: a running standby leaves its server to PostgreSQL, which
	// removes the file itself at promotion (use Promote).
	Standby bool
	// PrimaryConnInfo is primary_conninfo (see PrimaryConnInfo); empty clears it.
	PrimaryConnInfo string
	// PrimarySlotName is primary_slot_name; empty clears it.
	PrimarySlotName string
	// Parameters are extra GUCs (e.g. from the dynamic cluster config), written quoted.
	// They may override the tunable defaults (max_wal_senders, max_replication_slots,
	// hot_standby_feedback, wal_keep_size, wal_retrieve_retry_interval,
	// password_encryption, wal_level to logical) but not the settings ramd relies on
	// (listen_addresses, port, unix_socket_directories, hot_standby, wal_log_hints,
	// recovery_target_timeline, primary_conninfo, primary_slot_name, file locations);
	// those are ignored with a warning. A name that is not a GUC name is an error.
	Parameters map[string]string
}

// protectedParams cannot be set through Settings.Parameters.
var protectedParams = map[string]bool{
	"listen_addresses": true, "port": true, "unix_socket_directories": true,
	"hot_standby": true, "wal_log_hints": true, "recovery_target_timeline": true,
	"primary_conninfo": true, "primary_slot_name": true,
	"data_directory": true, "config_file": true, "hba_file": true, "ident_file": true,
	"external_pid_file": true,
}

// restartOnly lists the parameters of context "postmaster" (a change needs a restart)
// across PostgreSQL 13 to 18. primary_conninfo and primary_slot_name are reloadable
// since 13 and are not listed.
var restartOnly = toSet(`archive_mode autovacuum_freeze_max_age autovacuum_max_workers
autovacuum_multixact_freeze_max_age autovacuum_worker_slots bonjour bonjour_name
cluster_name commit_timestamp_buffers data_directory data_sync_retry debug_io_direct
dynamic_shared_memory_type event_source external_pid_file hba_file hot_standby
huge_page_size huge_pages ident_file io_max_concurrency io_method jit_provider
listen_addresses logging_collector max_active_replication_origins max_connections
max_files_per_process max_locks_per_transaction max_logical_replication_workers
max_notify_queue_pages max_pred_locks_per_transaction max_prepared_transactions
max_replication_slots max_wal_senders max_worker_processes min_dynamic_shared_memory
multixact_member_buffers multixact_offset_buffers notify_buffers old_snapshot_threshold
port recovery_target recovery_target_action recovery_target_inclusive recovery_target_lsn
recovery_target_name recovery_target_time recovery_target_timeline recovery_target_xid
serializable_buffers shared_buffers shared_memory_type shared_preload_libraries
subtransaction_buffers superuser_reserved_connections reserved_connections
track_activity_query_size track_commit_timestamp transaction_buffers
unix_socket_directories unix_socket_group unix_socket_permissions wal_buffers
wal_decode_buffer_size wal_level wal_log_hints`)

func toSet(s string) map[string]bool {
	m := map[string]bool{}
	for _, f := range strings.Fields(s) {
		m[f] = true
	}
	return m
}

var gucNameRe = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_$]*(\.[A-Za-z_][A-Za-z0-9_$]*)?$`)

type param struct{ name, value string }

// managedParams returns the settings ramd always writes, in file order.
func (i *Instance) managedParams(s Settings) []param {
	sock := i.cfg.SocketDir
	if sock == SocketDirNone {
		sock = ""
	}
	return append([]param{
		{"listen_addresses", i.cfg.ListenAddr},
		{"port", strconv.Itoa(i.cfg.Port)},
		{"unix_socket_directories", sock},
		{"wal_level", "replica"},
		{"hot_standby", "on"},
		{"wal_log_hints", "on"},
		{"max_wal_senders", "10"},
		{"max_replication_slots", "10"},
		{"hot_standby_feedback", "on"},
		{"wal_keep_size", "128MB"},
		// The default 5s would delay the switch of a standby to a promoted primary.
		{"wal_retrieve_retry_interval", "500ms"},
		{"recovery_target_timeline", "latest"},
		// scram-sha-256 is the default since 14; 13 still defaults to md5.
		{"password_encryption", "scram-sha-256"},
		{"primary_conninfo", s.PrimaryConnInfo},
		{"primary_slot_name", s.PrimarySlotName},
	}, i.tlsParams()...)
}

// WriteConfig writes <DataDir>/ramd.conf atomically (temporary file, fsync, rename; owned
// by the OS user, mode 0600) with the managed settings (listen_addresses, port,
// unix_socket_directories, wal_level=replica, hot_standby, wal_log_hints,
// max_wal_senders=10, max_replication_slots=10, hot_standby_feedback, wal_keep_size=128MB,
// wal_retrieve_retry_interval=500ms, recovery_target_timeline=latest,
// password_encryption=scram-sha-256, primary_conninfo, primary_slot_name) followed by
// s.Parameters, makes sure postgresql.conf includes ramd.conf, and creates or removes
// standby.signal (see Settings.Standby).
//
// restartNeeded reports whether a setting of context "postmaster" differs from the file's
// previous contents, or standby.signal was created: a reload is not enough. It is a
// prediction from a static list; after a reload Status.PendingRestart is authoritative
// (unknown extension settings are assumed reloadable). The data directory must be
// initialized with a supported major version (>= 13, read from PG_VERSION).
func (i *Instance) WriteConfig(s Settings) (restartNeeded bool, err error) {
	st, err := i.DataDirState()
	if err != nil {
		return false, fmt.Errorf("write config: %w", err)
	}
	if !st.Initialized {
		return false, fmt.Errorf("write config: %w: %s", ErrNotInitialized, i.cfg.DataDir)
	}
	if st.MajorVersion < MinMajorVersion {
		return false, fmt.Errorf("write config: %w: %d (need >= %d)", ErrUnsupportedVersion, st.MajorVersion, MinMajorVersion)
	}
	params := i.managedParams(s)
	index := map[string]int{}
	for n, p := range params {
		index[p.name] = n
	}
	names := make([]string, 0, len(s.Parameters))
	for name := range s.Parameters {
		names = append(names, name)
	}
	sort.Strings(names)
	for _, name := range names {
		value := s.Parameters[name]
		if !gucNameRe.MatchString(name) {
			return false, fmt.Errorf("write config: %w: %q", ErrInvalidParameter, name)
		}
		key := strings.ToLower(name)
		// With RAMD_PG_TLS_* set, ramd owns ssl and its files (tls.go); without, an operator may
		// configure TLS through the parameters as before.
		tlsOwned := i.cfg.TLSEnabled() && (key == "ssl" || strings.HasPrefix(key, "ssl_"))
		if protectedParams[key] || tlsOwned || key == "wal_level" && !strings.EqualFold(value, "logical") {
			i.logger.Warn("ignoring parameter managed by ramd", "param", key)
			continue
		}
		if n, ok := index[key]; ok {
			params[n].value = value
			continue
		}
		index[key] = len(params)
		params = append(params, param{key, value})
	}

	var b bytes.Buffer
	b.WriteString("# Written by ramd; every change is overwritten. Included from postgresql.conf.\n")
	for _, p := range params {
		fmt.Fprintf(&b, "%s = %s\n", p.name, quoteConfValue(p.value))
	}

	path := filepath.Join(i.cfg.DataDir, ramdConf)
	old, err := readConf(path)
	if err != nil {
		return false, fmt.Errorf("write config: %w", err)
	}
	next, _ := parseConf(b.Bytes())
	for name := range union(old, next) {
		if restartOnly[name] && old[name] != next[name] {
			restartNeeded = true
		}
	}
	if err := i.writeFileAtomic(path, b.Bytes(), 0o600); err != nil {
		return false, fmt.Errorf("write config: %w", err)
	}
	if err := i.ensureInclude(); err != nil {
		return false, fmt.Errorf("write config: %w", err)
	}
	if err := i.writeHBA(); err != nil {
		return false, fmt.Errorf("write config: %w", err)
	}
	changed, err := i.setStandbySignal(s.Standby)
	if err != nil {
		return false, fmt.Errorf("write config: %w", err)
	}
	return restartNeeded || changed, nil
}

// setStandbySignal creates standby.signal (reporting true: only a restart turns a running
// primary into a standby) or removes it while the server is stopped.
func (i *Instance) setStandbySignal(standby bool) (created bool, err error) {
	path := filepath.Join(i.cfg.DataDir, standbySignal)
	_, err = os.Stat(path)
	exists := err == nil
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		return false, fmt.Errorf("stat %s: %w", standbySignal, err)
	}
	switch {
	case standby && !exists:
		if err := i.writeFileAtomic(path, nil, 0o600); err != nil {
			return false, fmt.Errorf("create %s: %w", standbySignal, err)
		}
		return true, nil
	case !standby && exists && i.PID() == 0:
		if err := os.Remove(path); err != nil && !errors.Is(err, os.ErrNotExist) {
			return false, fmt.Errorf("remove %s: %w", standbySignal, err)
		}
		if err := syncDir(i.cfg.DataDir); err != nil {
			return false, err
		}
	}
	return false, nil
}

// quoteConfValue quotes a value for postgresql.conf: single quotes, with quotes doubled and
// backslashes and line breaks escaped (GUC string escapes).
func quoteConfValue(v string) string {
	r := strings.NewReplacer(`\`, `\\`, `'`, `''`, "\n", `\n`, "\r", `\r`)
	return "'" + r.Replace(v) + "'"
}

// readConf parses ramd.conf as written by WriteConfig; a missing file is empty.
func readConf(path string) (map[string]string, error) {
	b, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return map[string]string{}, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", filepath.Base(path), err)
	}
	return parseConf(b)
}

// parseConf maps each "name = value" line to its raw (still quoted) value; later lines win.
func parseConf(b []byte) (map[string]string, error) {
	m := map[string]string{}
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		name, value, ok := strings.Cut(line, "=")
		if !ok {
			continue
		}
		m[strings.ToLower(strings.TrimSpace(name))] = strings.TrimSpace(value)
	}
	return m, sc.Err()
}

func union(a, b map[string]string) map[string]bool {
	u := map[string]bool{}
	for k := range a {
		u[k] = true
	}
	for k := range b {
		u[k] = true
	}
	return u
}

// ProtectedParameters lists the settings WriteConfig never takes from Settings.Parameters.
func ProtectedParameters() []string {
	out := make([]string, 0, len(protectedParams))
	for k := range protectedParams {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}
