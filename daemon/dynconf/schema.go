package dynconf

import (
	"fmt"
	"math"
	"regexp"
	"strings"
	"time"

	"github.com/ramd-project/ramd/daemon/ha"
)

// Built-in defaults. A key left out of the configuration takes these on every member (never a
// member's own environment, so members cannot drift apart). The RAMD_* variables of the
// timings default to the same values and only seed the configuration at bootstrap.
const (
	DefaultTTL          = 3 * time.Second
	DefaultLoopWait     = time.Second
	DefaultRetryTimeout = time.Second
	DefaultFenceMargin  = time.Second
	// DefaultPGUnresponsiveTimeout is how long a leader's PostgreSQL may run without
	// answering before the leader kills it and hands over (DefaultUnresponsive).
	DefaultPGUnresponsiveTimeout = 30 * time.Second
	// DefaultMaximumLagOnFailover is Patroni's default: 1 MiB.
	DefaultMaximumLagOnFailover = 1 << 20
	// DefaultMemberSlotsTTL is Patroni's: a stopped member's slot is kept 30 minutes.
	DefaultMemberSlotsTTL = 30 * time.Minute
)

// Bounds of the timings. loop_wait is at most 10s because every member renews its Consul
// session once per loop and sessions live RAMD_SESSION_TTL (10s by default, Consul reaps them
// after twice that); a TTL above 10 minutes would make a failover slower than any operator
// waits for.
const (
	minTTL          = time.Second
	maxTTL          = 10 * time.Minute
	minLoopWait     = 100 * time.Millisecond
	maxLoopWait     = 10 * time.Second
	minRetryTimeout = 100 * time.Millisecond
	maxRetryTimeout = time.Minute
	maxSlotsTTL     = 7 * 24 * time.Hour
	// maxUnresponsive: a primary that answers nothing for an hour is down for its clients;
	// 0 turns the rule off for those who want no limit.
	maxUnresponsive = time.Hour
)

// Config is a validated dynamic configuration. A zero or nil field was not set; the methods
// return the value in force.
type Config struct {
	TTL, LoopWait, RetryTimeout, FenceMargin time.Duration
	// PGUnresponsiveTimeout is postgres_unresponsive_timeout (nil: unset; 0: off).
	PGUnresponsiveTimeout *time.Duration

	MaximumLagOnFailover *uint64
	FailsafeMode         *bool
	Pause                bool
	// SynchronousMode is "off", "on" (FIRST n) or "quorum" (ANY n); "" when unset.
	SynchronousMode       string
	SynchronousNodeCount  int
	SynchronousModeStrict bool
	SynchronousCommit     string
	MaxTimelinesHistory   int
	MemberSlotsTTL        *time.Duration
	// Parameters are postgresql.parameters as text (booleans on/off, numbers as written).
	// Their values are judged against the installed server elsewhere.
	Parameters map[string]string
	// Backup is the backup configuration; nil when backups are not configured.
	Backup *Backup
	// Bootstrap says how the cluster was (or is to be) created; nil means initdb.
	Bootstrap *Bootstrap
}

// Timings returns the HA timings in force.
func (c Config) Timings() ha.Timings {
	pick := func(v, d time.Duration) time.Duration {
		if v == 0 {
			return d
		}
		return v
	}
	t := ha.Timings{TTL: pick(c.TTL, DefaultTTL), LoopWait: pick(c.LoopWait, DefaultLoopWait),
		RetryTimeout: pick(c.RetryTimeout, DefaultRetryTimeout), FenceMargin: pick(c.FenceMargin, DefaultFenceMargin)}
	t.PGUnresponsiveTimeout = DefaultUnresponsive(t)
	if c.PGUnresponsiveTimeout != nil {
		t.PGUnresponsiveTimeout = *c.PGUnresponsiveTimeout
	}
	return t
}

// DefaultUnresponsive is postgres_unresponsive_timeout when it is not set: 30 s, or twice
// ttl + loop_wait when that is longer, so that long timings (Patroni's ttl 30 s and
// loop_wait 10 s give 80 s) stay valid without setting it.
func DefaultUnresponsive(t ha.Timings) time.Duration {
	return max(DefaultPGUnresponsiveTimeout, 2*(t.TTL+t.LoopWait))
}

// SyncMode is the synchronous mode in force: off, on or quorum.
func (c Config) SyncMode() string {
	if c.SynchronousMode == "" {
		return "off"
	}
	return c.SynchronousMode
}

// SyncCount is synchronous_node_count in force (at least 1).
func (c Config) SyncCount() int { return max(1, c.SynchronousNodeCount) }

// SyncCommit is the commit level in synchronous mode (on by default).
func (c Config) SyncCommit() string {
	if c.SynchronousCommit == "" {
		return "on"
	}
	return c.SynchronousCommit
}

// MaximumLag is maximum_lag_on_failover in bytes (0: no limit).
func (c Config) MaximumLag() uint64 {
	if c.MaximumLagOnFailover == nil {
		return DefaultMaximumLagOnFailover
	}
	return *c.MaximumLagOnFailover
}

// Failsafe is on unless switched off: the leader confirms itself through the members when
// Consul is away, so a Consul restart does not cost a demotion.
func (c Config) Failsafe() bool { return c.FailsafeMode == nil || *c.FailsafeMode }

// SlotsTTL is how long a stopped member's replication slot is kept.
func (c Config) SlotsTTL() time.Duration {
	if c.MemberSlotsTTL == nil {
		return DefaultMemberSlotsTTL
	}
	return *c.MemberSlotsTTL
}

// Key describes one key of the dynamic configuration, for validation and for the docs.
type Key struct {
	// Name is the dotted path ("ttl", "postgresql.parameters").
	Name    string
	Type    string
	Default string
	Range   string
	// AppliedBy says who acts on the key, and how soon.
	AppliedBy string
	// Restart says what a change needs beyond the next loop cycle.
	Restart string
	set     func(c *Config, v any) string
}

const (
	everyMember = "every member's loop, next cycle"
	leaderOnly  = "the leader, next cycle"
	noRestart   = "no"
)

// Keys is the schema: every key ramd reads from the config key.
var Keys = []Key{
	{"ttl", "duration", "3s", "1s to 10m", everyMember, noRestart,
		durationKey(minTTL, maxTTL, func(c *Config, d time.Duration) { c.TTL = d })},
	{"loop_wait", "duration", "1s", "100ms to 10s", everyMember, noRestart,
		durationKey(minLoopWait, maxLoopWait, func(c *Config, d time.Duration) { c.LoopWait = d })},
	{"retry_timeout", "duration", "1s", "100ms to 1m", everyMember, noRestart,
		durationKey(minRetryTimeout, maxRetryTimeout, func(c *Config, d time.Duration) { c.RetryTimeout = d })},
	{"fence_margin", "duration", "1s", "500ms to below ttl", everyMember, noRestart,
		durationKey(ha.MinFenceMargin, maxTTL, func(c *Config, d time.Duration) { c.FenceMargin = d })},
	{"postgres_unresponsive_timeout", "duration", "30s (2 × (ttl + loop_wait) when longer)", "0 (off), or above ttl + loop_wait up to 1h", "the leader, next cycle", noRestart,
		func(c *Config, v any) string {
			d, why := duration(v, 0, maxUnresponsive)
			if why == "" {
				c.PGUnresponsiveTimeout = &d
			}
			return why
		}},
	{"maximum_lag_on_failover", "integer (bytes)", "1048576", "0 or more (0: no limit)", "every replica when it races", noRestart,
		func(c *Config, v any) string {
			n, why := wholeNumber(v, 0, math.MaxInt64)
			if why == "" {
				u := uint64(n)
				c.MaximumLagOnFailover = &u
			}
			return why
		}},
	{"failsafe_mode", "boolean", "true", "true or false", leaderOnly, noRestart,
		boolKey(func(c *Config, b bool) { c.FailsafeMode = &b })},
	{"pause", "boolean", "false", "true or false", everyMember, noRestart,
		boolKey(func(c *Config, b bool) { c.Pause = b })},
	{"synchronous_mode", "off, on, quorum or a boolean", "off", "off, on (FIRST n), quorum (ANY n)", leaderOnly, noRestart,
		func(c *Config, v any) string {
			m, ok := ParseSyncMode(v)
			if !ok {
				return "must be off, on, quorum or a boolean"
			}
			c.SynchronousMode = m
			return ""
		}},
	{"synchronous_node_count", "integer", "1", "1 to 64", leaderOnly, noRestart,
		func(c *Config, v any) string {
			n, why := wholeNumber(v, 1, 64)
			c.SynchronousNodeCount = int(n)
			return why
		}},
	{"synchronous_mode_strict", "boolean", "false", "true or false", leaderOnly, noRestart,
		boolKey(func(c *Config, b bool) { c.SynchronousModeStrict = b })},
	{"synchronous_commit", "string", "on", "on, remote_write, remote_apply", leaderOnly, noRestart,
		func(c *Config, v any) string {
			s, ok := v.(string)
			if !ok || (s != "on" && s != "remote_write" && s != "remote_apply") {
				return "must be on, remote_write or remote_apply"
			}
			c.SynchronousCommit = s
			return ""
		}},
	{"max_timelines_history", "integer", "0", "0 or more (0: keep every entry)", "the leader when it records a promotion", noRestart,
		func(c *Config, v any) string {
			n, why := wholeNumber(v, 0, math.MaxInt32)
			c.MaxTimelinesHistory = int(n)
			return why
		}},
	{"member_slots_ttl", "duration", "30min", "0 to 7d", leaderOnly, noRestart,
		func(c *Config, v any) string {
			d, why := duration(v, 0, maxSlotsTTL)
			if why == "" {
				c.MemberSlotsTTL = &d
			}
			return why
		}},
	{"postgresql.parameters", "object of name: value", "{}", "names of PostgreSQL settings, scalar values; not those ramd manages", "stored; values are not applied yet", "depends on the parameter",
		setParameters},
	{"postgresql.use_pg_rewind", "boolean", "true", "true (ramd always rewinds a former primary)", everyMember, noRestart,
		mustBeTrue("ramd always rewinds a former primary with pg_rewind; false is not supported")},
	{"postgresql.use_slots", "boolean", "true", "true (ramd always streams through a replication slot)", leaderOnly, noRestart,
		mustBeTrue("ramd always streams through physical replication slots; false is not supported")},
}

// Unsupported lists Patroni's keys that ramd does not implement, with what to use instead.
// They are refused by name, never stored and ignored.
var Unsupported = map[string]string{
	"primary_start_timeout":                "a leader whose PostgreSQL fails to start RAMD_PG_MAX_START_FAILURES times hands over",
	"master_start_timeout":                 "a leader whose PostgreSQL fails to start RAMD_PG_MAX_START_FAILURES times hands over",
	"primary_stop_timeout":                 "ramd stops PostgreSQL with a fast shutdown and fences it at the fencing deadline",
	"master_stop_timeout":                  "ramd stops PostgreSQL with a fast shutdown and fences it at the fencing deadline",
	"primary_race_backoff":                 "a replica races only after ttl without a heartbeat and after asking the leader's API",
	"maximum_lag_on_syncnode":              "the leader replaces a synchronous standby that stops streaming",
	"check_timeline":                       "candidates are compared by timeline and position in every mode",
	"standby_cluster":                      "standby clusters are not implemented",
	"slots":                                "permanent replication slots are not implemented",
	"ignore_slots":                         "permanent replication slots are not implemented",
	"postgresql.pg_hba":                    "pg_hba.conf is written from RAMD_PG_HBA_ALLOW",
	"postgresql.pg_ident":                  "pg_ident.conf is not managed",
	"postgresql.recovery_conf":             "recovery settings are written by ramd",
	"postgresql.parameters_primary":        "role-specific parameters are not implemented",
	"postgresql.parameters_replica":        "role-specific parameters are not implemented",
	"postgresql.parameters_standby_leader": "role-specific parameters are not implemented",
	"postgresql.pg_hba_primary":            "pg_hba.conf is written from RAMD_PG_HBA_ALLOW",
	"postgresql.pg_hba_replica":            "pg_hba.conf is written from RAMD_PG_HBA_ALLOW",
	"postgresql.pg_hba_standby_leader":     "pg_hba.conf is written from RAMD_PG_HBA_ALLOW",
	"postgresql.pg_ident_primary":          "pg_ident.conf is not managed",
	"postgresql.pg_ident_replica":          "pg_ident.conf is not managed",
	"postgresql.pg_ident_standby_leader":   "pg_ident.conf is not managed",
}

// OwnedParameters are PostgreSQL settings ramd sets itself; postgresql.parameters may not
// name them. The value says who owns it.
var OwnedParameters = map[string]string{
	"listen_addresses":          "RAMD_PG_LISTEN",
	"port":                      "RAMD_PG_PORT",
	"unix_socket_directories":   "RAMD_PG_SOCKET_DIR",
	"hot_standby":               "ramd (replicas must serve reads to be checked)",
	"wal_log_hints":             "ramd (pg_rewind needs it)",
	"primary_conninfo":          "ramd (it follows the leader)",
	"primary_slot_name":         "ramd (it follows the leader)",
	"recovery_target_timeline":  "ramd (replicas follow the latest timeline)",
	"synchronous_standby_names": "ramd, from synchronous_mode and synchronous_node_count",
	"data_directory":            "RAMD_DATA_DIR",
	"config_file":               "ramd",
	"hba_file":                  "ramd",
	"ident_file":                "ramd",
	"external_pid_file":         "ramd",
	"archive_mode":              "ramd's WAL archiving",
	"archive_command":           "ramd's WAL archiving",
	"archive_library":           "ramd's WAL archiving",
	"restore_command":           "ramd's WAL archiving",
	"archive_cleanup_command":   "ramd's WAL archiving",
	"recovery_end_command":      "ramd (restores)",
	"recovery_min_apply_delay":  "ramd (a delayed replica would be a bad failover candidate)",
	"promote_trigger_file":      "ramd (it promotes)",
	"recovery_target":           "ramd (restores)",
	"recovery_target_action":    "ramd (restores)",
	"recovery_target_inclusive": "ramd (restores)",
	"recovery_target_lsn":       "ramd (restores)",
	"recovery_target_name":      "ramd (restores)",
	"recovery_target_time":      "ramd (restores)",
	"recovery_target_xid":       "ramd (restores)",
}

var parameterName = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_$]*(\.[A-Za-z_][A-Za-z0-9_$]*)?$`)

func setParameters(c *Config, v any) string {
	m, ok := v.(map[string]any)
	if !ok {
		return "must be an object of parameter names to values"
	}
	c.Parameters = make(map[string]string, len(m))
	return "" // the names and values are checked one by one in Validate
}

// ParameterText is a JSON scalar as PostgreSQL reads it: strings as they are, booleans
// on/off, numbers as written (whole numbers without an exponent).
func ParameterText(v any) (string, bool) {
	switch x := v.(type) {
	case string:
		return x, true
	case bool:
		if x {
			return "on", true
		}
		return "off", true
	case float64:
		return formatNumber(x), true
	}
	return "", false
}

func formatNumber(f float64) string {
	if f == math.Trunc(f) && math.Abs(f) < 1e15 {
		return fmt.Sprintf("%d", int64(f))
	}
	return fmt.Sprintf("%g", f)
}

func boolKey(set func(*Config, bool)) func(*Config, any) string {
	return func(c *Config, v any) string {
		b, ok := v.(bool)
		if !ok {
			return "must be true or false"
		}
		set(c, b)
		return ""
	}
}

func mustBeTrue(why string) func(*Config, any) string {
	return func(_ *Config, v any) string {
		b, ok := v.(bool)
		if !ok {
			return "must be true"
		}
		if !b {
			return why
		}
		return ""
	}
}

func durationKey(lo, hi time.Duration, set func(*Config, time.Duration)) func(*Config, any) string {
	return func(c *Config, v any) string {
		d, why := duration(v, lo, hi)
		if why == "" {
			set(c, d)
		}
		return why
	}
}

// ParseSyncMode reads synchronous_mode as Patroni writes it: a boolean or off/on/quorum
// (true/false as strings too, any case). It returns off, on or quorum.
func ParseSyncMode(v any) (string, bool) {
	switch x := v.(type) {
	case bool:
		if x {
			return "on", true
		}
		return "off", true
	case string:
		switch strings.ToLower(x) {
		case "off", "false":
			return "off", true
		case "on", "true":
			return "on", true
		case "quorum":
			return "quorum", true
		}
	}
	return "", false
}
