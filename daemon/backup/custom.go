package backup

import (
	"context"
	"errors"

	"github.com/ramd-project/ramd/daemon/dynconf"
)

// PLACEHOLDER: replaced by the real custom adapter.
var errNotBuiltCustom = errors.New("backup: custom is not built yet")

type customTool struct {
	cfg dynconf.Backup
	run Runner
}

func newCustom(b dynconf.Backup, r Runner) *customTool { return &customTool{cfg: b, run: r} }

func (t *customTool) Name() string                            { return "custom" }
func (t *customTool) Configure(context.Context, Member) error { return errNotBuiltCustom }
func (t *customTool) ArchiveCommand(Member) string            { return "" }
func (t *customTool) RestoreCommand(Member) string            { return "" }
func (t *customTool) Init(context.Context, Member) error      { return errNotBuiltCustom }
func (t *customTool) Maintain(context.Context, Member) error  { return nil }
func (t *customTool) Expire(context.Context, Member) error    { return errNotBuiltCustom }
func (t *customTool) Check(context.Context, Member) error     { return errNotBuiltCustom }
func (t *customTool) List(context.Context, Member) (Catalog, error) {
	return Catalog{}, errNotBuiltCustom
}
func (t *customTool) Backup(context.Context, BackupRequest, func(Progress)) (Info, error) {
	return Info{}, errNotBuiltCustom
}
func (t *customTool) Restore(context.Context, RestoreRequest, func(Progress)) error {
	return errNotBuiltCustom
}
