package dynconf

import (
	"encoding/json"
	"errors"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

func doc(t *testing.T, s string) map[string]any {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal([]byte(s), &m); err != nil {
		t.Fatalf("test document %s: %v", s, err)
	}
	return m
}

func TestValidateAccepts(t *testing.T) {
	t.Parallel()
	lag := uint64(2 << 20)
	off := false
	slots := 90 * time.Minute
	unresponsive, zero := 4001*time.Millisecond, time.Duration(0)
	tests := []struct {
		name string
		doc  string
		want Config
	}{
		{"empty", `{}`, Config{}},
		{"patroni bootstrap shape", `{"ttl":3,"loop_wait":1,"retry_timeout":1,"maximum_lag_on_failover":2097152,"postgresql":{"use_pg_rewind":true,"use_slots":true,"parameters":{}}}`,
			Config{TTL: 3 * time.Second, LoopWait: time.Second, RetryTimeout: time.Second, MaximumLagOnFailover: &lag, Parameters: map[string]string{}}},
		{"fractional seconds and strings", `{"ttl":"2s","loop_wait":0.5,"retry_timeout":"500ms","fence_margin":"0.5"}`,
			Config{TTL: 2 * time.Second, LoopWait: 500 * time.Millisecond, RetryTimeout: 500 * time.Millisecond, FenceMargin: 500 * time.Millisecond}},
		{"sync quorum", `{"synchronous_mode":"quorum","synchronous_node_count":2,"synchronous_mode_strict":true,"synchronous_commit":"remote_apply"}`,
			Config{SynchronousMode: "quorum", SynchronousNodeCount: 2, SynchronousModeStrict: true, SynchronousCommit: "remote_apply"}},
		{"sync as boolean", `{"synchronous_mode":true}`, Config{SynchronousMode: "on"}},
		{"unresponsive timeout", `{"postgres_unresponsive_timeout":"4001ms"}`, Config{PGUnresponsiveTimeout: &unresponsive}},
		{"unresponsive timeout off", `{"postgres_unresponsive_timeout":0}`, Config{PGUnresponsiveTimeout: &zero}},
		{"nulls are unset", `{"pause":null,"ttl":null,"postgresql":{"parameters":{"work_mem":null}}}`, Config{Parameters: map[string]string{}}},
		{"flags", `{"pause":true,"failsafe_mode":false,"max_timelines_history":5,"member_slots_ttl":"90min"}`,
			Config{Pause: true, FailsafeMode: &off, MaxTimelinesHistory: 5, MemberSlotsTTL: &slots}},
		{"parameters as text", `{"postgresql":{"parameters":{"work_mem":"8MB","max_connections":200,"jit":false,"random_page_cost":1.1,"pg_stat_statements.track":"all"}}}`,
			Config{Parameters: map[string]string{"work_mem": "8MB", "max_connections": "200", "jit": "off", "random_page_cost": "1.1", "pg_stat_statements.track": "all"}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got, err := Validate(doc(t, tt.doc))
			if err != nil {
				t.Fatalf("Validate: %v", err)
			}
			if d := cmp.Diff(tt.want, got); d != "" {
				t.Errorf("config (-want +got):\n%s", d)
			}
		})
	}
}

func TestValidateRefuses(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name   string
		doc    string
		fields []string // every refused field, sorted
		reason string   // part of the first refusal's reason
	}{
		{"ttl banana", `{"ttl":"banana"}`, []string{"ttl"}, "must be a duration"},
		{"ttl too small", `{"ttl":0.5}`, []string{"ttl"}, "between 1s and 10m"},
		{"ttl boolean", `{"ttl":true}`, []string{"ttl"}, "must be a duration"},
		{"loop_wait zero", `{"loop_wait":0}`, []string{"loop_wait"}, "between 100ms and 10s"},
		{"loop_wait negative string", `{"loop_wait":"-1s"}`, []string{"loop_wait"}, "must be a duration"},
		{"retry_timeout object", `{"retry_timeout":{}}`, []string{"retry_timeout"}, "must be a duration"},
		{"fence margin too small", `{"fence_margin":0.1}`, []string{"fence_margin"}, "between 500ms"},
		{"fencing inequality", `{"ttl":2,"loop_wait":1,"retry_timeout":1}`, []string{"ttl"}, "must not exceed ttl"},
		{"fencing inequality names the set key", `{"loop_wait":2}`, []string{"loop_wait"}, "must not exceed ttl"},
		{"fence margin at ttl", `{"ttl":1,"fence_margin":1,"loop_wait":0.1,"retry_timeout":0.1}`, []string{"ttl"}, "must be below ttl"},
		{"unresponsive timeout at ttl + loop_wait", `{"postgres_unresponsive_timeout":4}`, []string{"postgres_unresponsive_timeout"}, "above ttl"},
		{"unresponsive timeout below a set ttl", `{"ttl":20,"postgres_unresponsive_timeout":"15s"}`, []string{"ttl"}, "above ttl"},
		{"unresponsive timeout negative", `{"postgres_unresponsive_timeout":-1}`, []string{"postgres_unresponsive_timeout"}, "must be a duration"},
		{"unresponsive timeout too long", `{"postgres_unresponsive_timeout":"2h"}`, []string{"postgres_unresponsive_timeout"}, "between"},
		{"unknown top-level key", `{"no_such_key":1}`, []string{"no_such_key"}, "unknown key"},
		{"patroni key not implemented", `{"primary_start_timeout":300}`, []string{"primary_start_timeout"}, "not supported by ramd"},
		{"pg_hba not implemented", `{"postgresql":{"pg_hba":["host all all 0.0.0.0/0 md5"]}}`, []string{"postgresql.pg_hba"}, "RAMD_PG_HBA_ALLOW"},
		{"unknown postgresql key", `{"postgresql":{"bin_dir":"/x"}}`, []string{"postgresql.bin_dir"}, "unknown key"},
		{"postgresql not an object", `{"postgresql":1}`, []string{"postgresql"}, "must be an object"},
		{"use_pg_rewind false", `{"postgresql":{"use_pg_rewind":false}}`, []string{"postgresql.use_pg_rewind"}, "always rewinds"},
		{"parameters not an object", `{"postgresql":{"parameters":["work_mem"]}}`, []string{"postgresql.parameters"}, "must be an object"},
		{"owned parameter port", `{"postgresql":{"parameters":{"port":5433}}}`, []string{"postgresql.parameters.port"}, "RAMD_PG_PORT"},
		{"owned parameter archive_command", `{"postgresql":{"parameters":{"ARCHIVE_COMMAND":"cp %p /x"}}}`, []string{"postgresql.parameters.ARCHIVE_COMMAND"}, "WAL archiving"},
		{"parameter value object", `{"postgresql":{"parameters":{"work_mem":{"v":1}}}}`, []string{"postgresql.parameters.work_mem"}, "string, a number or a boolean"},
		{"parameter name with a space", `{"postgresql":{"parameters":{"work mem":"1MB"}}}`, []string{"postgresql.parameters.work mem"}, "not a valid parameter name"},
		{"maximum lag negative", `{"maximum_lag_on_failover":-5}`, []string{"maximum_lag_on_failover"}, "0 or more"},
		{"maximum lag fraction", `{"maximum_lag_on_failover":1.5}`, []string{"maximum_lag_on_failover"}, "whole number"},
		{"pause string", `{"pause":"yes"}`, []string{"pause"}, "true or false"},
		{"failsafe number", `{"failsafe_mode":1}`, []string{"failsafe_mode"}, "true or false"},
		{"sync mode word", `{"synchronous_mode":"always"}`, []string{"synchronous_mode"}, "off, on, quorum"},
		{"sync count zero", `{"synchronous_node_count":0}`, []string{"synchronous_node_count"}, "from 1 to 64"},
		{"sync count 65", `{"synchronous_node_count":65}`, []string{"synchronous_node_count"}, "from 1 to 64"},
		{"sync commit local", `{"synchronous_commit":"local"}`, []string{"synchronous_commit"}, "remote_write"},
		{"strict string", `{"synchronous_mode_strict":"true"}`, []string{"synchronous_mode_strict"}, "true or false"},
		{"timelines negative", `{"max_timelines_history":-1}`, []string{"max_timelines_history"}, "0 or more"},
		{"slots ttl too long", `{"member_slots_ttl":"8d"}`, []string{"member_slots_ttl"}, "between"},
		{"every refusal at once", `{"ttl":"banana","loop_wait":0,"no_such_key":1,"postgresql":{"parameters":{"port":1}}}`,
			[]string{"loop_wait", "no_such_key", "postgresql.parameters.port", "ttl"}, "between 100ms"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			_, err := Validate(doc(t, tt.doc))
			if !errors.Is(err, ErrInvalid) {
				t.Fatalf("Validate = %v, want a refusal", err)
			}
			fes := Fields(err)
			var got []string
			for _, fe := range fes {
				got = append(got, fe.Field)
			}
			if d := cmp.Diff(tt.fields, got); d != "" {
				t.Errorf("refused fields (-want +got):\n%s", d)
			}
			if !strings.Contains(fes[0].Reason, tt.reason) {
				t.Errorf("reason %q does not say %q", fes[0].Reason, tt.reason)
			}
			var fe *FieldError
			if !errors.As(err, &fe) || fe.Field != tt.fields[0] {
				t.Errorf("errors.As finds %v, want the first refusal", fe)
			}
		})
	}
}

// A document that is partly refused still yields the sound keys, so a loop reading a broken
// key written behind ramd's back keeps synchronous mode.
func TestValidateKeepsSoundKeys(t *testing.T) {
	t.Parallel()
	c, err := Validate(doc(t, `{"synchronous_mode":"on","ttl":"banana"}`))
	if err == nil {
		t.Fatal("want a refusal")
	}
	if c.SyncMode() != "on" {
		t.Errorf("sync mode %q, want on", c.SyncMode())
	}
	if c.Timings().TTL != DefaultTTL {
		t.Errorf("ttl %s, want the default", c.Timings().TTL)
	}
}

func TestParse(t *testing.T) {
	t.Parallel()
	for _, in := range []string{`[]`, `null`, `{`, `"x"`} {
		if _, err := Parse([]byte(in)); !errors.Is(err, ErrInvalid) {
			t.Errorf("Parse(%s) = %v, want a refusal", in, err)
		}
	}
	if c, err := Parse(nil); err != nil || c.SyncMode() != "off" || c.MaximumLag() != DefaultMaximumLagOnFailover || !c.Failsafe() || c.SlotsTTL() != DefaultMemberSlotsTTL || c.SyncCommit() != "on" || c.SyncCount() != 1 {
		t.Errorf("Parse(empty) = %+v, %v; want the defaults", c, err)
	}
}

// Every refusal for a key in the schema names a type the docs promise, and no key is both in
// the schema and refused as unsupported.
func TestSchemaConsistent(t *testing.T) {
	t.Parallel()
	for _, k := range Keys {
		if _, ok := Unsupported[k.Name]; ok {
			t.Errorf("%s is both supported and unsupported", k.Name)
		}
		if k.Type == "" || k.Default == "" || k.Range == "" || k.AppliedBy == "" || k.Restart == "" {
			t.Errorf("%s: incomplete description %+v", k.Name, k)
		}
	}
}

func FuzzValidate(f *testing.F) {
	for _, s := range []string{`{}`, `{"ttl":"banana"}`, `{"postgresql":{"parameters":{"work_mem":"1MB"}}}`, `{"loop_wait":0.1,"ttl":1}`, `{"member_slots_ttl":"1.5d"}`,
		`{"backup":{"tool":"pgbackrest","pgbackrest":{"repo_path":"/r","options":{"process-max":2}},"schedules":{"full":"0 1 * * 0","incr":{"cron":"@daily","suspend":true}},"retention":{"full_count":3}}}`,
		`{"backup":{"tool":"custom","custom":{"backup":"b","list":"l","archive_command":"cp %p /a/%f"}}}`,
		`{"bootstrap":{"method":"backup","from":{"tool":"barman","barman":{"server":"old"}},"target":{"type":"lsn","value":"0/3000028"}}}`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		c, err := Parse(b)
		if err != nil {
			if len(Fields(err)) == 0 {
				t.Fatalf("refusal without a field: %v", err)
			}
			return
		}
		if verr := c.Timings().Validate(); verr != nil {
			t.Fatalf("accepted timings break the fencing inequality: %v", verr)
		}
	})
}

// TestDocsListEveryKey keeps docs/CONFIGURATION.md in step with the schema: every key, every
// refused Patroni key and every parameter ramd owns is named there.
func TestDocsListEveryKey(t *testing.T) {
	t.Parallel()
	b, err := os.ReadFile("../../docs/CONFIGURATION.md")
	if err != nil {
		t.Fatal(err)
	}
	doc := string(b)
	for _, k := range Keys {
		if !strings.Contains(doc, "| `"+k.Name+"` |") {
			t.Errorf("docs/CONFIGURATION.md has no table row for %s", k.Name)
		}
	}
	for k := range Unsupported {
		if !strings.Contains(doc, "`"+k+"`") {
			t.Errorf("docs/CONFIGURATION.md does not name the unsupported key %s", k)
		}
	}
	for p := range OwnedParameters {
		if !strings.Contains(doc, "`"+p+"`") && !(strings.HasPrefix(p, "recovery_target") && strings.Contains(doc, "`recovery_target*`")) {
			t.Errorf("docs/CONFIGURATION.md does not name the owned parameter %s", p)
		}
	}
}
