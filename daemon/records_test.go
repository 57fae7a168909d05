package daemon

import (
	"log/slog"
	"strings"
	"testing"

	"github.com/ramd-project/ramd/consul"
)

func TestDecodeRecord(t *testing.T) {
	t.Parallel()
	var logs strings.Builder
	n := &Node{logger: slog.New(slog.NewTextHandler(&logs, nil))}
	good := consul.Sync{Leader: "n1", SyncStandby: "n2"}
	tests := []struct {
		name      string
		pair      consul.Pair
		wantOK    bool
		want      consul.Sync
		wantWarns int // warnings logged so far
	}{
		{"valid", consul.Pair{Key: "sync", Value: []byte(`{"leader":"n3","sync_standby":"n4"}`), ModifyIndex: 1}, true, consul.Sync{Leader: "n3", SyncStandby: "n4"}, 0},
		{"type error leaves the value untouched", consul.Pair{Key: "sync", Value: []byte(`{"leader":"secret-x","quorum":"many"}`), ModifyIndex: 2}, false, good, 1},
		{"same version reported once", consul.Pair{Key: "sync", Value: []byte(`{"leader":"secret-x","quorum":"many"}`), ModifyIndex: 2}, false, good, 1},
		{"syntax error, new version", consul.Pair{Key: "sync", Value: []byte(`{"leader":"secret-y`), ModifyIndex: 3}, false, good, 2},
	}
	for _, tt := range tests {
		got := good
		if ok := decodeRecord(n, tt.pair, &got); ok != tt.wantOK || got != tt.want {
			t.Errorf("%s: %v %+v, want %v %+v", tt.name, ok, got, tt.wantOK, tt.want)
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
