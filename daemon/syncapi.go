package daemon

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"

	"github.com/ramd-project/ramd/consul"
)

// ErrInvalid is returned for a refused setting; FieldError names the field.
var ErrInvalid = errors.New("daemon: invalid value")

// FieldError is a refused value of one field.
type FieldError struct {
	Field  string
	Value  any
	Reason string
}

func (e *FieldError) Error() string {
	return fmt.Sprintf("%s=%v: %s", e.Field, e.Value, e.Reason)
}

// Unwrap makes errors.Is(err, ErrInvalid) true.
func (e *FieldError) Unwrap() error { return ErrInvalid }

// SyncSettings are the synchronous-replication settings of the dynamic configuration. Nil
// fields are left as they are.
type SyncSettings struct {
	Mode   *string `json:"synchronous_mode,omitempty"`
	Count  *int    `json:"synchronous_node_count,omitempty"`
	Strict *bool   `json:"synchronous_mode_strict,omitempty"`
	Commit *string `json:"synchronous_commit,omitempty"`
}

// SyncMember is one published synchronous standby with its position.
type SyncMember struct {
	Name       string `json:"name"`
	ReceiveLSN uint64 `json:"receive_lsn"`
	ReplayLSN  uint64 `json:"replay_lsn"`
	State      string `json:"state"`
}

// SyncView is the synchronous-replication state of the cluster.
type SyncView struct {
	Mode     string       `json:"synchronous_mode"`
	Count    int          `json:"synchronous_node_count"`
	Strict   bool         `json:"synchronous_mode_strict"`
	Commit   string       `json:"synchronous_commit"`
	Leader   string       `json:"leader"`
	Quorum   int          `json:"quorum"`
	Standbys []SyncMember `json:"sync_standbys"`
}

// Validate checks the settings' values.
func (s SyncSettings) Validate() error {
	if s.Mode != nil && *s.Mode != "off" && *s.Mode != "on" && *s.Mode != "quorum" {
		return &FieldError{"synchronous_mode", *s.Mode, "must be off, on or quorum"}
	}
	if s.Count != nil && (*s.Count < 1 || *s.Count > 64) {
		return &FieldError{"synchronous_node_count", *s.Count, "must be between 1 and 64"}
	}
	if s.Commit != nil && *s.Commit != "on" && *s.Commit != "remote_write" && *s.Commit != "remote_apply" {
		return &FieldError{"synchronous_commit", *s.Commit, "must be on, remote_write or remote_apply"}
	}
	return nil
}

// SyncStandbys reads the synchronous-replication state with consistent reads.
func (n *Node) SyncStandbys(ctx context.Context) (SyncView, error) {
	raw := map[string]any{}
	if _, err := n.store.GetJSON(ctx, consul.KeyConfig, true, &raw); err != nil && !errors.Is(err, consul.ErrNotFound) {
		return SyncView{}, fmt.Errorf("read config: %w", err)
	}
	b, _ := json.Marshal(raw)
	dyn, err := parseDynamicConfig(b)
	if err != nil {
		return SyncView{}, err
	}
	v := SyncView{Mode: dyn.syncModeValue(), Count: dyn.syncCount(), Strict: dyn.SynchronousModeStrict, Commit: dyn.syncCommit(), Standbys: []SyncMember{}}
	var k consul.Sync
	if _, err := n.store.GetJSON(ctx, consul.KeySync, true, &k); err == nil {
		v.Leader, v.Quorum = k.Leader, k.Quorum
		for _, name := range strings.Split(k.SyncStandby, ",") {
			if name = strings.TrimSpace(name); name == "" {
				continue
			}
			sm := SyncMember{Name: name}
			var m consul.Member
			if _, err := n.store.GetJSON(ctx, consul.MemberKey(name), false, &m); err == nil {
				sm.ReceiveLSN, sm.ReplayLSN, sm.State = deref(m.ReceiveLSN), deref(m.ReplayLSN), m.State
			}
			v.Standbys = append(v.Standbys, sm)
		}
	} else if !errors.Is(err, consul.ErrNotFound) {
		return SyncView{}, fmt.Errorf("read sync key: %w", err)
	}
	return v, nil
}

// SetSync validates the settings and merges them into the config key by CAS: a concurrent
// change is refused with consul.ErrConflict and nothing is written.
func (n *Node) SetSync(ctx context.Context, s SyncSettings) (SyncView, error) {
	if err := s.Validate(); err != nil {
		return SyncView{}, err
	}
	raw := map[string]any{}
	idx, err := n.store.GetJSON(ctx, consul.KeyConfig, true, &raw)
	if err != nil && !errors.Is(err, consul.ErrNotFound) {
		return SyncView{}, fmt.Errorf("read config: %w", err)
	}
	if s.Mode != nil {
		raw["synchronous_mode"] = *s.Mode
	}
	if s.Count != nil {
		raw["synchronous_node_count"] = *s.Count
	}
	if s.Strict != nil {
		raw["synchronous_mode_strict"] = *s.Strict
	}
	if s.Commit != nil {
		raw["synchronous_commit"] = *s.Commit
	}
	b, err := json.Marshal(raw)
	if err != nil {
		return SyncView{}, fmt.Errorf("encode config: %w", err)
	}
	if _, err := parseDynamicConfig(b); err != nil {
		return SyncView{}, &FieldError{"config", string(b), err.Error()}
	}
	if err := n.store.CAS(ctx, consul.KeyConfig, b, idx); err != nil {
		return SyncView{}, fmt.Errorf("write config: %w", err)
	}
	n.Wake()
	return n.SyncStandbys(ctx)
}
