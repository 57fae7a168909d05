package backup

import (
	"context"
	"errors"

	"github.com/ramd-project/ramd/daemon/dynconf"
)

// PLACEHOLDER: replaced by the real pgbackrest adapter.
var errNotBuiltPgBackRest = errors.New("backup: pgbackrest is not built yet")

type pgbackrestTool struct {
	cfg dynconf.Backup
	run Runner
}

func newPgBackRest(b dynconf.Backup, r Runner) *pgbackrestTool {
	return &pgbackrestTool{cfg: b, run: r}
}

func (t *pgbackrestTool) Name() string                            { return "pgbackrest" }
func (t *pgbackrestTool) Configure(context.Context, Member) error { return errNotBuiltPgBackRest }
func (t *pgbackrestTool) ArchiveCommand(Member) string            { return "" }
func (t *pgbackrestTool) RestoreCommand(Member) string            { return "" }
func (t *pgbackrestTool) Init(context.Context, Member) error      { return errNotBuiltPgBackRest }
func (t *pgbackrestTool) Maintain(context.Context, Member) error  { return nil }
func (t *pgbackrestTool) Expire(context.Context, Member) error    { return errNotBuiltPgBackRest }
func (t *pgbackrestTool) Check(context.Context, Member) error     { return errNotBuiltPgBackRest }
func (t *pgbackrestTool) List(context.Context, Member) (Catalog, error) {
	return Catalog{}, errNotBuiltPgBackRest
}
func (t *pgbackrestTool) Backup(context.Context, BackupRequest, func(Progress)) (Info, error) {
	return Info{}, errNotBuiltPgBackRest
}
func (t *pgbackrestTool) Restore(context.Context, RestoreRequest, func(Progress)) error {
	return errNotBuiltPgBackRest
}
