package params_test

import (
	"errors"
	"strings"
	"testing"

	"github.com/ramd-project/ramd/daemon/params"
)

// testCatalog is a hand-written catalog with PostgreSQL 16's definitions of a few
// parameters: the pure tests need no server.
func testCatalog(t testing.TB) *params.Catalog {
	t.Helper()
	c, err := params.NewCatalog(160004, []params.Param{
		{Name: "work_mem", Context: params.ContextUser, Type: params.TypeInteger, Unit: "kB", Min: 64, Max: 2147483647, BootVal: "4096"},
		{Name: "shared_buffers", Context: params.ContextPostmaster, Type: params.TypeInteger, Unit: "8kB", Min: 16, Max: 1073741823, BootVal: "16384"},
		{Name: "max_wal_size", Context: params.ContextSighup, Type: params.TypeInteger, Unit: "MB", Min: 2, Max: 2147483647, BootVal: "1024"},
		{Name: "min_wal_size", Context: params.ContextSighup, Type: params.TypeInteger, Unit: "MB", Min: 2, Max: 2147483647, BootVal: "80"},
		{Name: "wal_segment_size", Context: params.ContextInternal, Type: params.TypeInteger, Unit: "B", Min: 1048576, Max: 1073741824, BootVal: "16777216"},
		{Name: "statement_timeout", Context: params.ContextUser, Type: params.TypeInteger, Unit: "ms", Min: 0, Max: 2147483647, BootVal: "0"},
		{Name: "checkpoint_timeout", Context: params.ContextSighup, Type: params.TypeInteger, Unit: "s", Min: 30, Max: 86400, BootVal: "300"},
		{Name: "autovacuum_naptime", Context: params.ContextSighup, Type: params.TypeInteger, Unit: "s", Min: 1, Max: 2147483, BootVal: "60"},
		{Name: "log_rotation_age", Context: params.ContextSighup, Type: params.TypeInteger, Unit: "min", Min: 0, Max: 35791394, BootVal: "1440"},
		{Name: "max_connections", Context: params.ContextPostmaster, Type: params.TypeInteger, Min: 1, Max: 262143, BootVal: "100"},
		{Name: "superuser_reserved_connections", Context: params.ContextPostmaster, Type: params.TypeInteger, Min: 0, Max: 262143, BootVal: "3"},
		{Name: "reserved_connections", Context: params.ContextPostmaster, Type: params.TypeInteger, Min: 0, Max: 262143, BootVal: "0"},
		{Name: "autovacuum_max_workers", Context: params.ContextPostmaster, Type: params.TypeInteger, Min: 1, Max: 262143, BootVal: "3"},
		{Name: "max_worker_processes", Context: params.ContextPostmaster, Type: params.TypeInteger, Min: 0, Max: 262143, BootVal: "8"},
		{Name: "max_wal_senders", Context: params.ContextPostmaster, Type: params.TypeInteger, Min: 0, Max: 262143, BootVal: "10"},
		{Name: "max_replication_slots", Context: params.ContextPostmaster, Type: params.TypeInteger, Min: 0, Max: 262143, BootVal: "10"},
		{Name: "max_stack_depth", Context: params.ContextSuperuser, Type: params.TypeInteger, Unit: "kB", Min: 100, Max: 2147483647, BootVal: "100"},
		{Name: "vacuum_cost_delay", Context: params.ContextUser, Type: params.TypeReal, Unit: "ms", Min: 0, Max: 100, BootVal: "0"},
		{Name: "random_page_cost", Context: params.ContextUser, Type: params.TypeReal, Min: 0, Max: 1.79769e+308, BootVal: "4"},
		{Name: "checkpoint_completion_target", Context: params.ContextSighup, Type: params.TypeReal, Min: 0, Max: 1, BootVal: "0.9"},
		{Name: "fsync", Context: params.ContextSighup, Type: params.TypeBool, BootVal: "on"},
		{Name: "bonjour", Context: params.ContextPostmaster, Type: params.TypeBool, BootVal: "off",
			Refused: map[string]string{"on": "Bonjour is not supported by this build"}},
		{Name: "wal_level", Context: params.ContextPostmaster, Type: params.TypeEnum, EnumVals: []string{"minimal", "replica", "logical"},
			EnumAliases: map[string]string{"archive": "replica", "hot_standby": "replica"}, BootVal: "replica"},
		{Name: "synchronous_commit", Context: params.ContextUser, Type: params.TypeEnum,
			EnumVals: []string{"local", "remote_write", "remote_apply", "on", "off"}, EnumAliases: map[string]string{"1": "on", "no": "off"}, BootVal: "on"},
		{Name: "application_name", Context: params.ContextUser, Type: params.TypeString, BootVal: ""},
		{Name: "server_version", Context: params.ContextInternal, Type: params.TypeString, BootVal: "16.4"},
	})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func TestCheck(t *testing.T) {
	t.Parallel()
	c := testCatalog(t)
	tests := []struct {
		name, param, value string
		shown              string // accepted: what postgres -C would show
		kind               error  // refused: the sentinel
		msg                string // refused: the message
	}{
		// Integers, memory units (case-sensitive), fractions rounded to the next smaller unit.
		{name: "plain", param: "work_mem", value: "65536", shown: "65536"},
		{name: "MB", param: "work_mem", value: "64MB", shown: "65536"},
		{name: "space before unit", param: "work_mem", value: " 64 MB ", shown: "65536"},
		{name: "GB fraction", param: "work_mem", value: "1.5GB", shown: "1572864"},
		{name: "bytes round", param: "work_mem", value: "66047B", shown: "64"},
		{name: "hex", param: "work_mem", value: "0x100", shown: "256"},
		{name: "octal", param: "work_mem", value: "0100", shown: "64"},
		{name: "hex float", param: "work_mem", value: "0x40.8", shown: "64"},
		{name: "exponent", param: "work_mem", value: "1e3", shown: "1000"},
		{name: "half to even", param: "work_mem", value: "64.5", shown: "64"},
		{name: "leading dot", param: "work_mem", value: ".5MB", shown: "512"},
		{name: "blocks", param: "shared_buffers", value: "128MB", shown: "16384"},
		{name: "blocks kB rounds", param: "shared_buffers", value: "1000kB", shown: "125"},
		{name: "TB", param: "max_wal_size", value: "1TB", shown: "1048576"},
		{name: "negative", param: "work_mem", value: "-5", kind: params.ErrOutOfRange,
			msg: `-5 kB is outside the valid range for parameter "work_mem" (64 .. 2147483647)`},
		{name: "below min MB", param: "max_wal_size", value: "1MB", kind: params.ErrOutOfRange,
			msg: `1 MB is outside the valid range for parameter "max_wal_size" (2 .. 2147483647)`},
		{name: "lower-case unit", param: "work_mem", value: "64mb", kind: params.ErrInvalidValue,
			msg: `invalid value for parameter "work_mem": "64mb" (Valid units for this parameter are "B", "kB", "MB", "GB", and "TB")`},
		{name: "time unit on memory", param: "work_mem", value: "1s", kind: params.ErrInvalidValue},
		{name: "overflow", param: "work_mem", value: "3TB", kind: params.ErrInvalidValue},
		{name: "huge", param: "work_mem", value: "99999999999999999999", kind: params.ErrInvalidValue},
		{name: "unit too long", param: "work_mem", value: "1 kBB", kind: params.ErrInvalidValue},
		{name: "garbage after unit", param: "work_mem", value: "1 kB x", kind: params.ErrInvalidValue},
		{name: "empty", param: "work_mem", value: "", kind: params.ErrInvalidValue},
		{name: "space then dot", param: "work_mem", value: " .5MB", kind: params.ErrInvalidValue},
		{name: "sign then dot", param: "work_mem", value: "-.5", kind: params.ErrInvalidValue},
		{name: "nan", param: "work_mem", value: "nan", kind: params.ErrInvalidValue},
		{name: "unit on unitless", param: "max_connections", value: "5kB", kind: params.ErrInvalidValue},
		// Time units.
		{name: "ms", param: "statement_timeout", value: "1.5s", shown: "1500"},
		{name: "min to s", param: "checkpoint_timeout", value: "5min", shown: "300"},
		{name: "ms to s rounds", param: "checkpoint_timeout", value: "30500ms", shown: "30"},
		{name: "us to s", param: "autovacuum_naptime", value: "1500000us", shown: "2"},
		{name: "d to min", param: "log_rotation_age", value: "1d", shown: "1440"},
		{name: "h fraction", param: "log_rotation_age", value: "1.5h", shown: "90"},
		{name: "sec is not a unit", param: "checkpoint_timeout", value: "30 sec", kind: params.ErrInvalidValue},
		{name: "below min s", param: "checkpoint_timeout", value: "10s", kind: params.ErrOutOfRange,
			msg: `10 s is outside the valid range for parameter "checkpoint_timeout" (30 .. 86400)`},
		// Reals.
		{name: "real", param: "checkpoint_completion_target", value: "0.5", shown: "0.5"},
		{name: "real range", param: "checkpoint_completion_target", value: "1.5", kind: params.ErrOutOfRange,
			msg: `1.5 is outside the valid range for parameter "checkpoint_completion_target" (0 .. 1)`},
		{name: "real unit", param: "vacuum_cost_delay", value: "500us", shown: "0.5"},
		{name: "real DBL_MAX bound", param: "random_page_cost", value: "1e308", shown: "1e+308"},
		{name: "real inf", param: "random_page_cost", value: "inf", kind: params.ErrOutOfRange},
		{name: "real overflow", param: "random_page_cost", value: "1e400", kind: params.ErrInvalidValue},
		{name: "real nan", param: "random_page_cost", value: "NaN", kind: params.ErrInvalidValue},
		// Booleans.
		{name: "on", param: "fsync", value: "ON", shown: "on"},
		{name: "prefix", param: "fsync", value: "tr", shown: "on"},
		{name: "of", param: "fsync", value: "of", shown: "off"},
		{name: "1", param: "fsync", value: "1", shown: "on"},
		{name: "o ambiguous", param: "fsync", value: "o", kind: params.ErrInvalidValue,
			msg: `parameter "fsync" requires a Boolean value`},
		{name: "space", param: "fsync", value: " on", kind: params.ErrInvalidValue},
		{name: "build refuses", param: "bonjour", value: "yes", kind: params.ErrInvalidValue, msg: "Bonjour is not supported by this build"},
		{name: "build allows", param: "bonjour", value: "no", shown: "off"},
		// Enums.
		{name: "enum", param: "wal_level", value: "Logical", shown: "logical"},
		{name: "enum alias", param: "wal_level", value: "HOT_STANDBY", shown: "replica"},
		{name: "enum alias bool", param: "synchronous_commit", value: "1", shown: "on"},
		{name: "bad enum", param: "wal_level", value: "archiv", kind: params.ErrInvalidValue,
			msg: `invalid value for parameter "wal_level": "archiv" (Available values: minimal, replica, logical)`},
		// Strings, names.
		{name: "string", param: "application_name", value: "any thing", shown: "any thing"},
		{name: "case-insensitive name", param: "Work_Mem", value: "1MB", shown: "1024"},
		{name: "dash in name", param: "work-mem", value: "1MB", shown: "1024"},
		{name: "internal", param: "wal_segment_size", value: "16MB", kind: params.ErrCannotChange,
			msg: `parameter "wal_segment_size" cannot be changed`},
		{name: "unknown", param: "nosuch", value: "1", kind: params.ErrUnknownParameter,
			msg: `unrecognized configuration parameter "nosuch"`},
		{name: "custom", param: "pg_stat_statements.track", value: "all", shown: "all"},
		{name: "custom three parts", param: "a.b.c", value: "x", shown: "x"},
		{name: "custom empty part", param: "a..b", value: "x", kind: params.ErrUnknownParameter},
		{name: "custom digit first", param: "a.1b", value: "x", kind: params.ErrUnknownParameter},
		{name: "removed", param: "stats_temp_directory", value: "x", kind: params.ErrNotInVersion,
			msg: `parameter "stats_temp_directory" does not exist in PostgreSQL 16 (removed in PostgreSQL 15)`},
		{name: "added later", param: "transaction_timeout", value: "1s", kind: params.ErrNotInVersion,
			msg: `parameter "transaction_timeout" does not exist in PostgreSQL 16 (added in PostgreSQL 17)`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			v, err := c.Check(tc.param, tc.value)
			if tc.kind == nil {
				if err != nil || v.Shown != tc.shown {
					t.Fatalf("Check(%s, %q) = %q, %v; want %q", tc.param, tc.value, v.Shown, err, tc.shown)
				}
				return
			}
			var ve *params.ValueError
			if !errors.As(err, &ve) || !errors.Is(err, tc.kind) {
				t.Fatalf("Check(%s, %q) = %q, %v; want %v", tc.param, tc.value, v.Shown, err, tc.kind)
			}
			if tc.msg != "" && err.Error() != tc.msg {
				t.Errorf("message\n got %s\nwant %s", err.Error(), tc.msg)
			}
			if ve.Name == "" || ve.Value != tc.value {
				t.Errorf("ValueError fields %+v", ve)
			}
		})
	}
}

func TestFormatUnits(t *testing.T) {
	t.Parallel()
	c := testCatalog(t)
	for _, tc := range []struct {
		param string
		n     int64
		want  string
	}{
		{"work_mem", 4096, "4MB"}, {"work_mem", 20164, "20164kB"}, {"work_mem", 4 << 20, "4GB"},
		{"shared_buffers", 16384, "128MB"}, {"shared_buffers", 17, "136kB"}, {"checkpoint_timeout", 300, "5min"},
		{"checkpoint_timeout", 301, "301s"}, {"statement_timeout", 0, "0"}, {"max_connections", 100, "100"},
	} {
		p, _ := c.Lookup(tc.param)
		if got := p.FormatUnits(tc.n); got != tc.want {
			t.Errorf("%s FormatUnits(%d) = %q, want %q", tc.param, tc.n, got, tc.want)
		}
		if v, err := c.Check(tc.param, p.FormatUnits(tc.n)); err != nil || v.Int() != tc.n {
			t.Errorf("%s: %q does not read back as %d: %v %v", tc.param, p.FormatUnits(tc.n), tc.n, v, err)
		}
	}
}

func TestInVersion(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name          string
		major         int
		exists, known bool
	}{
		{"stats_temp_directory", 14, true, true}, {"stats_temp_directory", 15, false, true},
		{"reserved_connections", 15, false, true}, {"reserved_connections", 16, true, true},
		{"work_mem", 15, false, false},
	} {
		e, k := params.InVersion(tc.name, tc.major)
		if e != tc.exists || k != tc.known {
			t.Errorf("InVersion(%s, %d) = %v, %v", tc.name, tc.major, e, k)
		}
	}
}

// FuzzCheck: Check never panics, answers quickly and accepts only values it can show, and
// what it shows for a number reads back to the same number.
func FuzzCheck(f *testing.F) {
	for _, s := range []string{"64MB", "-5", "0x1.8p3", "1e400", " 1 kB ", "nan(abc)", "0x", "on", "1.5GB", "\x00", "9223372036854775808", ".e1", "-0x"} {
		f.Add("work_mem", s)
		f.Add("checkpoint_completion_target", s)
	}
	f.Add("fsync", "of")
	f.Add("wal_level", "HOT_STANDBY")
	c := testCatalog(f)
	f.Fuzz(func(t *testing.T, name, value string) {
		if len(value) > 256 || len(name) > 64 {
			return
		}
		v, err := c.Check(name, value)
		if err != nil {
			var ve *params.ValueError
			if !errors.As(err, &ve) || ve.Message == "" {
				t.Fatalf("Check(%q, %q) = %v", name, value, err)
			}
			return
		}
		p, known := c.Lookup(strings.ReplaceAll(name, "-", "_"))
		if !known {
			return
		}
		if p.Type == params.TypeInteger || p.Type == params.TypeReal {
			if v.Num < p.Min || v.Num > p.Max {
				t.Fatalf("Check(%s, %q) accepted %v outside %v .. %v", name, value, v.Num, p.Min, p.Max)
			}
			back, err := c.Check(name, v.Shown)
			if err != nil || (p.Type == params.TypeInteger && back.Num != v.Num) {
				t.Fatalf("shown %q of %q does not read back: %v %v", v.Shown, value, back, err)
			}
		}
	})
}
