package daemon

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/ramd-project/ramd/consul"
	"github.com/ramd-project/ramd/daemon/dynconf"
)

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

// Validate checks the settings with the configuration's own validator (dynconf), so the
// sync endpoint and PATCH /config accept and refuse the same values.
func (s SyncSettings) Validate() error {
	_, err := dynconf.Validate(s.patch())
	return err
}

// patch is the settings as a merge patch of the configuration.
func (s SyncSettings) patch() map[string]any {
	p := map[string]any{}
	if s.Mode != nil {
		p["synchronous_mode"] = *s.Mode
	}
	if s.Count != nil {
		p["synchronous_node_count"] = float64(*s.Count)
	}
	if s.Strict != nil {
		p["synchronous_mode_strict"] = *s.Strict
	}
	if s.Commit != nil {
		p["synchronous_commit"] = *s.Commit
	}
	return p
}

// SyncStandbys reads the synchronous-replication state with consistent reads.
func (n *Node) SyncStandbys(ctx context.Context) (SyncView, error) {
	raw := map[string]any{}
	if _, err := n.store.GetJSON(ctx, consul.KeyConfig, true, &raw); err != nil && !errors.Is(err, consul.ErrNotFound) {
		return SyncView{}, fmt.Errorf("read config: %w", err)
	}
	dyn, err := dynconf.Validate(raw)
	if err != nil {
		return SyncView{}, fmt.Errorf("the configuration in Consul is refused: %w", err)
	}
	v := SyncView{Mode: dyn.SyncMode(), Count: dyn.SyncCount(), Strict: dyn.SynchronousModeStrict, Commit: dyn.SyncCommit(), Standbys: []SyncMember{}}
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

// SetSync validates the settings and merges them into the config key by CAS, through the
// same path as PATCH /config: a concurrent change is refused with consul.ErrConflict and
// nothing is written.
func (n *Node) SetSync(ctx context.Context, s SyncSettings) (SyncView, error) {
	if err := s.Validate(); err != nil {
		return SyncView{}, err
	}
	if _, err := n.PatchConfig(ctx, s.patch(), nil); err != nil {
		return SyncView{}, err
	}
	return n.SyncStandbys(ctx)
}
