package backup

import (
	"context"
	"errors"
	"slices"
	"strings"
)

// BarmanListByShow lists tool's (Barman's) repository the way List did up to ramd's first
// release with one Barman process per backup: list-backups, then show-backup of each. The
// tests check that List reads the same fields with one process.
func BarmanListByShow(ctx context.Context, tool Tool, m Member) (Catalog, error) {
	t := tool.(*barmanTool)
	var entries []barmanListEntry
	if err := t.jsonCmd(ctx, m, &entries, "list-backups", t.server(m)); err != nil {
		return Catalog{}, err
	}
	cat := Catalog{Backups: make([]Info, 0, len(entries))}
	slices.SortFunc(entries, func(a, b barmanListEntry) int { return strings.Compare(a.BackupID, b.BackupID) })
	for _, e := range entries {
		info := e.info()
		d, err := t.show(ctx, m, e.BackupID)
		switch {
		case errors.Is(err, ErrNotFound):
			continue
		case err != nil:
			return Catalog{}, err
		}
		d.RepoSize = info.RepoSize
		if d.Retention == "" || d.Retention == "not enforced" {
			d.Retention = info.Retention
		}
		cat.Backups = append(cat.Backups, d.Info)
	}
	t.completeCatalog(m, &cat)
	return cat, nil
}
