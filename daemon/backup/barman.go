package backup

import (
	"context"
	"errors"

	"github.com/ramd-project/ramd/daemon/dynconf"
)

// PLACEHOLDER: replaced by the real barman adapter.
var errNotBuiltBarman = errors.New("backup: barman is not built yet")

type barmanTool struct {
	cfg dynconf.Backup
	run Runner
}

func newBarman(b dynconf.Backup, r Runner) *barmanTool { return &barmanTool{cfg: b, run: r} }

func (t *barmanTool) Name() string                            { return "barman" }
func (t *barmanTool) Configure(context.Context, Member) error { return errNotBuiltBarman }
func (t *barmanTool) ArchiveCommand(Member) string            { return "" }
func (t *barmanTool) RestoreCommand(Member) string            { return "" }
func (t *barmanTool) Init(context.Context, Member) error      { return errNotBuiltBarman }
func (t *barmanTool) Maintain(context.Context, Member) error  { return nil }
func (t *barmanTool) Expire(context.Context, Member) error    { return errNotBuiltBarman }
func (t *barmanTool) Check(context.Context, Member) error     { return errNotBuiltBarman }
func (t *barmanTool) List(context.Context, Member) (Catalog, error) {
	return Catalog{}, errNotBuiltBarman
}
func (t *barmanTool) Backup(context.Context, BackupRequest, func(Progress)) (Info, error) {
	return Info{}, errNotBuiltBarman
}
func (t *barmanTool) Restore(context.Context, RestoreRequest, func(Progress)) error {
	return errNotBuiltBarman
}
