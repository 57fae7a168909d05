package params

import "fmt"

// lifetime is when a parameter appeared or disappeared across the supported versions.
type lifetime struct {
	added   int // first major version that has it; 0 when older than 13
	removed int // first major version without it; 0 when still present
}

// lifetimes lists parameters added or removed between PostgreSQL 13 and 18 (from the
// release notes), so a name missing from the catalog can be refused naming the version
// instead of as a typo. The table test checks it against the installed version's catalog.
var lifetimes = map[string]lifetime{
	"operator_precedence_warning":       {removed: 14},
	"vacuum_cleanup_index_scale_factor": {removed: 14},
	"stats_temp_directory":              {removed: 15},
	"promote_trigger_file":              {removed: 16},
	"vacuum_defer_cleanup_age":          {removed: 16},
	"force_parallel_mode":               {removed: 16},
	"old_snapshot_threshold":            {removed: 17},
	"db_user_namespace":                 {removed: 17},
	"trace_recovery_messages":           {removed: 17},
	"compute_query_id":                  {added: 14},
	"idle_session_timeout":              {added: 14},
	"client_connection_check_interval":  {added: 14},
	"default_toast_compression":         {added: 14},
	"recovery_prefetch":                 {added: 15},
	"archive_library":                   {added: 15},
	"log_startup_progress_interval":     {added: 15},
	"reserved_connections":              {added: 16},
	"debug_parallel_query":              {added: 16},
	"vacuum_buffer_usage_limit":         {added: 16},
	"transaction_timeout":               {added: 17},
	"summarize_wal":                     {added: 17},
	"sync_replication_slots":            {added: 17},
	"io_method":                         {added: 18},
	"io_workers":                        {added: 18},
}

// lifetimeOf describes when name existed, for a name of another major version.
func lifetimeOf(name string) (string, bool) {
	l, ok := lifetimes[asciiLower(name)]
	switch {
	case !ok:
		return "", false
	case l.removed != 0:
		return fmt.Sprintf("removed in PostgreSQL %d", l.removed), true
	}
	return fmt.Sprintf("added in PostgreSQL %d", l.added), true
}

// InVersion reports whether name exists in major version major according to the table of
// parameters added or removed since PostgreSQL 13; known is false for names not in it.
func InVersion(name string, major int) (exists, known bool) {
	l, ok := lifetimes[asciiLower(name)]
	if !ok {
		return false, false
	}
	return (l.added == 0 || major >= l.added) && (l.removed == 0 || major < l.removed), true
}
