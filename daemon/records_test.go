package daemon

import (
	"log/slog"
	"strings"
	"testing"

	"github.com/ramd-project/ramd/consul"
)

// TestNoteBadRecords: a record that does not decode is reported once per version of its key,
// again for a new bad version after it decoded in between, and never with its content.
func TestNoteBadRecords(t *testing.T) {
	t.Parallel()
	var logs strings.Builder
	n := &Node{logger: slog.New(slog.NewTextHandler(&logs, nil))}
	sync := func(value string, index uint64) consul.Pair {
		return consul.Pair{Key: consul.KeySync, Value: []byte(value), ModifyIndex: index}
	}
	tests := []struct {
		name      string
		pair      consul.Pair
		wantSync  bool
		wantWarns int // warnings logged so far
	}{
		{"valid", sync(`{"leader":"n3","sync_standby":"n4"}`, 1), true, 0},
		{"type error: absent", sync(`{"leader":"secret-x","quorum":"many"}`, 2), false, 1},
		{"same version reported once", sync(`{"leader":"secret-x","quorum":"many"}`, 2), false, 1},
		{"syntax error, new version", sync(`{"leader":"secret-y`, 3), false, 2},
		{"valid again", sync(`{"leader":"n3"}`, 4), true, 2},
		{"the old bad version once more is reported again", sync(`{"leader":"secret-y`, 3), false, 3},
	}
	for _, tt := range tests {
		snap := consul.DecodeSnapshot([]consul.Pair{tt.pair})
		n.noteBadRecords(snap.Bad)
		if got := snap.Sync != nil; got != tt.wantSync {
			t.Errorf("%s: sync decoded %v, want %v", tt.name, got, tt.wantSync)
		}
		if c := strings.Count(logs.String(), "does not decode"); c != tt.wantWarns {
			t.Errorf("%s: %d warnings, want %d:\n%s", tt.name, c, tt.wantWarns, logs.String())
		}
	}
	if strings.Contains(logs.String(), "secret") {
		t.Errorf("a record's content reached the log:\n%s", logs.String())
	}
}

func TestInitializeValue(t *testing.T) {
	t.Parallel()
	var logs strings.Builder
	n := &Node{logger: slog.New(slog.NewTextHandler(&logs, nil))}
	tests := []struct {
		name  string
		value string
		want  uint64
	}{
		{"bootstrap in progress", "", 0},
		{"garbage before any good value", `{"jobs":"x"}`, 0},
		{"the identifier", "7345678901234567890", 7345678901234567890},
		{"garbage keeps the last good one", "\x00\xff", 7345678901234567890},
		{"zero is no identifier", "0", 7345678901234567890},
		{"blank is a bootstrap", "  ", 0},
	}
	for i, tt := range tests {
		got := n.initializeValue(consul.Pair{Key: consul.KeyInitialize, Value: []byte(tt.value), ModifyIndex: uint64(i + 1)})
		if got != tt.want {
			t.Errorf("%s: %d, want %d", tt.name, got, tt.want)
		}
	}
	if c := strings.Count(logs.String(), "does not decode"); c != 3 {
		t.Errorf("%d reports, want 3:\n%s", c, logs.String())
	}
}

func TestHistoryMissing(t *testing.T) {
	t.Parallel()
	h := []consul.HistoryEntry{{Timeline: 1, NewLeader: "n2"}, {Timeline: 2, NewLeader: "n1"}}
	for _, tt := range []struct {
		history []consul.HistoryEntry
		tl      int
		want    bool
	}{
		{nil, 1, true},
		{h, 2, false},
		{h, 3, true},
		{h[:1], 2, true},
	} {
		if got := historyMissing(tt.history, consul.HistoryEntry{Timeline: tt.tl}); got != tt.want {
			t.Errorf("historyMissing(%v, timeline %d) = %v, want %v", tt.history, tt.tl, got, tt.want)
		}
	}
}
