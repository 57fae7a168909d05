package params_test

import (
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/ramd-project/ramd/daemon/params"
)

// issue is the comparable part of an Issue (the message is checked for presence only).
type issue struct {
	Field string
	Rule  params.Rule
}

func issues(is []params.Issue) []issue {
	var out []issue
	for _, i := range is {
		out = append(out, issue{i.Field, i.Rule})
	}
	return out
}

func TestReview(t *testing.T) {
	t.Parallel()
	c := testCatalog(t)
	const gib = int64(1) << 30
	node := params.Facts{MemoryBytes: 24 * gib, StackLimitBytes: 8 << 20, Members: 3}
	tests := []struct {
		name     string
		set      map[string]string
		facts    params.Facts
		refusals []issue
		warnings []issue
	}{
		{name: "nothing", set: map[string]string{}, facts: node},
		{name: "sane", set: map[string]string{"work_mem": "8MB", "shared_buffers": "6GB", "max_wal_senders": "10"}, facts: node},
		{name: "value refused", set: map[string]string{"work_mem": "-5", "nosuch": "1"}, facts: node,
			refusals: []issue{{"nosuch", params.RuleValue}, {"work_mem", params.RuleValue}}},
		{name: "other version", set: map[string]string{"stats_temp_directory": "x"}, facts: node,
			refusals: []issue{{"stats_temp_directory", params.RuleNotInVersion}}},
		{name: "wal_level minimal", set: map[string]string{"wal_level": "minimal"}, facts: node,
			refusals: []issue{{"wal_level", params.RuleWALLevel}}},
		{name: "wal_level logical", set: map[string]string{"wal_level": "logical"}, facts: node},
		{name: "senders and slots short", set: map[string]string{"max_wal_senders": "4", "max_replication_slots": "4"}, facts: node,
			refusals: []issue{{"max_replication_slots", params.RuleSlots}, {"max_wal_senders", params.RuleWALSenders}}},
		{name: "senders enough", set: map[string]string{"max_wal_senders": "5", "max_replication_slots": "5"}, facts: node},
		{name: "senders, members unknown", set: map[string]string{"max_wal_senders": "0"}, facts: params.Facts{}},
		{name: "min wal equal max", set: map[string]string{"min_wal_size": "1GB"}, facts: node,
			refusals: []issue{{"min_wal_size", params.RuleWALSize}}},
		{name: "max wal below min", set: map[string]string{"max_wal_size": "64MB"}, facts: node,
			refusals: []issue{{"max_wal_size", params.RuleWALSize}}},
		{name: "shared_buffers above memory", set: map[string]string{"shared_buffers": "1TB"}, facts: node,
			refusals: []issue{{"shared_buffers", params.RuleMemory}}},
		{name: "shared_buffers, memory unknown", set: map[string]string{"shared_buffers": "1TB"}, facts: params.Facts{}},
		{name: "work_mem times connections", set: map[string]string{"shared_buffers": "8GB", "work_mem": "1GB", "max_connections": "100"}, facts: node,
			warnings: []issue{{"shared_buffers", params.RuleMemory}}},
		{name: "few client connections", set: map[string]string{"max_connections": "5"}, facts: node,
			warnings: []issue{{"max_connections", params.RuleClientConns}}},
		{name: "reserved connections count", set: map[string]string{"max_connections": "10", "reserved_connections": "3"}, facts: node,
			warnings: []issue{{"max_connections", params.RuleClientConns}}},
		{name: "too many processes", set: map[string]string{"max_connections": "262143"}, facts: node,
			refusals: []issue{{"max_connections", params.RuleMaxBackends}},
			warnings: []issue{{"max_connections", params.RuleMemory}}},
		{name: "stack depth", set: map[string]string{"max_stack_depth": "8MB"}, facts: node,
			refusals: []issue{{"max_stack_depth", params.RuleStackDepth}}},
		{name: "stack depth fits", set: map[string]string{"max_stack_depth": "7680kB"}, facts: node},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			rep := params.Review(c, tc.set, tc.facts)
			if d := cmp.Diff(tc.refusals, issues(rep.Refusals)); d != "" {
				t.Errorf("refusals (-want +got):\n%s\n%+v", d, rep.Refusals)
			}
			if d := cmp.Diff(tc.warnings, issues(rep.Warnings)); d != "" {
				t.Errorf("warnings (-want +got):\n%s\n%+v", d, rep.Warnings)
			}
			for _, i := range append(rep.Refusals, rep.Warnings...) {
				if i.Message == "" || i.Value == "" && i.Field != "" {
					t.Errorf("issue without message or value: %+v", i)
				}
			}
			if rep.OK() != (len(tc.refusals) == 0) {
				t.Errorf("OK() = %v", rep.OK())
			}
		})
	}
}
