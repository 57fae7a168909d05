package daemon

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/ramd-project/ramd/consul"
	"github.com/ramd-project/ramd/daemon/dynconf"
)

// ErrNoConfig is returned when the config key does not exist yet.
var ErrNoConfig = errors.New("daemon: no dynamic configuration in Consul")

// DynamicConfig reads the config key (consistent) and its index, the CAS token for updates.
func (n *Node) DynamicConfig(ctx context.Context) (map[string]any, uint64, error) {
	raw := map[string]any{}
	idx, err := n.store.GetJSON(ctx, consul.KeyConfig, true, &raw)
	if errors.Is(err, consul.ErrNotFound) {
		return map[string]any{}, 0, ErrNoConfig
	}
	if err != nil {
		return nil, 0, fmt.Errorf("read config: %w", err)
	}
	return raw, idx, nil
}

// PatchConfig merges patch into the config key (JSON merge patch: null deletes a key, objects
// merge), validates the result and writes it by CAS against the version read now; ifMatch,
// when set, must be that version (0: no config written yet). A concurrent change gives
// consul.ErrConflict; a bad value a *FieldError; either way nothing is written.
func (n *Node) PatchConfig(ctx context.Context, patch map[string]any, ifMatch *uint64) (map[string]any, error) {
	cur, idx, err := n.DynamicConfig(ctx)
	if err != nil && !errors.Is(err, ErrNoConfig) {
		return nil, err
	}
	if ifMatch != nil && *ifMatch != idx {
		return nil, fmt.Errorf("config changed since index %d: %w", *ifMatch, consul.ErrConflict)
	}
	merged := mergePatch(cur, patch)
	return merged, n.writeConfig(ctx, merged, idx)
}

// ReplaceConfig validates and writes a whole configuration by CAS against the version read
// now; ifMatch as for PatchConfig.
func (n *Node) ReplaceConfig(ctx context.Context, cfg map[string]any, ifMatch *uint64) (map[string]any, error) {
	_, idx, err := n.DynamicConfig(ctx)
	if err != nil && !errors.Is(err, ErrNoConfig) {
		return nil, err
	}
	if ifMatch != nil && *ifMatch != idx {
		return nil, fmt.Errorf("config changed since index %d: %w", *ifMatch, consul.ErrConflict)
	}
	return cfg, n.writeConfig(ctx, cfg, idx)
}

func (n *Node) writeConfig(ctx context.Context, cfg map[string]any, idx uint64) error {
	c, err := dynconf.Validate(cfg)
	if err != nil {
		return err
	}
	warnings, err := n.checkParameters(ctx, c)
	if err != nil {
		return err
	}
	b, err := json.Marshal(cfg)
	if err != nil {
		return fmt.Errorf("encode config: %w", err)
	}
	if err := n.store.CAS(ctx, consul.KeyConfig, b, idx); err != nil {
		return fmt.Errorf("write config: %w", err)
	}
	addWarnings(ctx, warnings)
	n.Wake()
	return nil
}

// ValidateDynamicConfig checks a whole configuration document against the schema
// (dynconf): every refusal is returned at once (dynconf.Errors), each naming its field.
func ValidateDynamicConfig(cfg map[string]any) error {
	_, err := dynconf.Validate(cfg)
	return err
}

// mergePatch applies an RFC 7386 JSON merge patch.
func mergePatch(target, patch map[string]any) map[string]any {
	out := make(map[string]any, len(target))
	for k, v := range target {
		out[k] = v
	}
	for k, v := range patch {
		if v == nil {
			delete(out, k)
			continue
		}
		if pm, ok := v.(map[string]any); ok {
			tm, _ := out[k].(map[string]any)
			out[k] = mergePatch(tm, pm)
			continue
		}
		out[k] = v
	}
	return out
}

// History reads the history key (empty when none).
func (n *Node) History(ctx context.Context) ([]consul.HistoryEntry, error) {
	var h []consul.HistoryEntry
	if _, err := n.store.GetJSON(ctx, consul.KeyHistory, false, &h); err != nil && !errors.Is(err, consul.ErrNotFound) {
		return nil, fmt.Errorf("read history: %w", err)
	}
	if h == nil {
		h = []consul.HistoryEntry{}
	}
	return h, nil
}
