package params_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/ramd-project/ramd/daemon/params"
)

// TestNamesMatchServer: unknown names, names of other major versions and dotted extension
// names get the same verdict from ramd and from the installed server, and the table of
// parameters added or removed since 13 agrees with the installed version's catalog.
func TestNamesMatchServer(t *testing.T) {
	t.Parallel()
	cat, oracle := realCatalog(t)
	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	defer cancel()

	other := []string{"operator_precedence_warning", "vacuum_cleanup_index_scale_factor", "stats_temp_directory",
		"promote_trigger_file", "vacuum_defer_cleanup_age", "force_parallel_mode", "old_snapshot_threshold",
		"db_user_namespace", "trace_recovery_messages", "compute_query_id", "idle_session_timeout",
		"client_connection_check_interval", "default_toast_compression", "recovery_prefetch", "archive_library",
		"log_startup_progress_interval", "reserved_connections", "debug_parallel_query", "vacuum_buffer_usage_limit",
		"transaction_timeout", "summarize_wal", "sync_replication_slots", "io_method", "io_workers"}
	for _, n := range other {
		exists, known := params.InVersion(n, cat.Major())
		_, inCatalog := cat.Lookup(n)
		if !known || exists != inCatalog {
			t.Errorf("%s: table says exists=%v in %d (known %v), catalog has it: %v", n, exists, cat.Major(), known, inCatalog)
		}
		if !inCatalog {
			_, err := cat.Check(n, "1")
			if !errors.Is(err, params.ErrNotInVersion) {
				t.Errorf("Check(%s) = %v; want ErrNotInVersion", n, err)
			}
		}
	}

	names := append([]string{"nosuch", "work_mem_x", "pg_stat_statements.track", "auto_explain.log_min_duration",
		"my.custom.setting", "a..b", ".a", "a.", "x.1a", "x.a$1", "Work_Mem", "work-mem"}, other...)
	agree := 0
	for _, n := range names {
		_, err := cat.Check(n, "1")
		ok, msg, perr := oracle.Probe(ctx, n, "1")
		if perr != nil {
			t.Fatalf("oracle %s: %v", n, perr)
		}
		if (err == nil) != ok {
			t.Errorf("%s=1: ramd %v, server accepts=%v (%s)", n, err, ok, msg)
			continue
		}
		agree++
	}
	t.Logf("names: %d of %d agree with PostgreSQL %d", agree, len(names), cat.VersionNum)
}
