package daemon

import (
	"errors"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestMergePatch(t *testing.T) {
	t.Parallel()
	target := map[string]any{"pause": true, "postgresql": map[string]any{"parameters": map[string]any{"work_mem": "4MB", "max_connections": 100.0}}}
	patch := map[string]any{"pause": nil, "postgresql": map[string]any{"parameters": map[string]any{"work_mem": nil, "shared_buffers": "1GB"}}, "ttl": 30.0}
	want := map[string]any{"ttl": 30.0, "postgresql": map[string]any{"parameters": map[string]any{"max_connections": 100.0, "shared_buffers": "1GB"}}}
	if diff := cmp.Diff(want, mergePatch(target, patch)); diff != "" {
		t.Fatalf("(-want +got)\n%s", diff)
	}
	if _, ok := target["ttl"]; ok {
		t.Fatal("the target was modified")
	}
}

func TestValidateDynamicConfig(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name  string
		cfg   map[string]any
		field string // "" = valid
	}{
		{"empty", map[string]any{}, ""},
		{"patroni-like", map[string]any{"pause": false, "maximum_lag_on_failover": 1048576.0, "synchronous_mode": true, "postgresql": map[string]any{}}, ""},
		{"quorum", map[string]any{"synchronous_mode": "quorum", "synchronous_node_count": 2.0, "synchronous_commit": "remote_apply"}, ""},
		{"pause not bool", map[string]any{"pause": "yes"}, "pause"},
		{"negative lag", map[string]any{"maximum_lag_on_failover": -1.0}, "maximum_lag_on_failover"},
		{"fractional lag", map[string]any{"maximum_lag_on_failover": 1.5}, "maximum_lag_on_failover"},
		{"bad mode", map[string]any{"synchronous_mode": "sometimes"}, "synchronous_mode"},
		{"bad count", map[string]any{"synchronous_node_count": 0.0}, "synchronous_node_count"},
		{"bad commit", map[string]any{"synchronous_commit": "local"}, "synchronous_commit"},
		{"failsafe not bool", map[string]any{"failsafe_mode": 1.0}, "failsafe_mode"},
	}
	for _, tt := range tests {
		err := ValidateDynamicConfig(tt.cfg)
		var fe *FieldError
		switch {
		case tt.field == "" && err != nil:
			t.Errorf("%s: refused: %v", tt.name, err)
		case tt.field != "" && (!errors.As(err, &fe) || fe.Field != tt.field):
			t.Errorf("%s: error %v, want a refusal of %s", tt.name, err, tt.field)
		}
	}
}
