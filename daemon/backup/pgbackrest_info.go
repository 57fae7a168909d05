package backup

import (
	"encoding/json"
	"fmt"
	"sort"
	"strconv"
	"time"
)

// pgBackRest's `info --output=json` (2.45): an array of stanzas. Only the fields ramd uses
// are declared. system-id exceeds 2^53 and is decoded as uint64 straight from the JSON
// text (never through float64).
type pgbrStanza struct {
	Name   string `json:"name"`
	Status struct {
		Code    int    `json:"code"`
		Message string `json:"message"`
	} `json:"status"`
	DB []struct {
		ID       int    `json:"id"`
		SystemID uint64 `json:"system-id"`
		Version  string `json:"version"`
	} `json:"db"`
	Archive []struct {
		Database struct {
			ID int `json:"id"`
		} `json:"database"`
		ID  string `json:"id"`
		Min string `json:"min"`
		Max string `json:"max"`
	} `json:"archive"`
	Backup []pgbrBackup `json:"backup"`
}

type pgbrBackup struct {
	Label      string            `json:"label"`
	Type       string            `json:"type"`
	Prior      string            `json:"prior"`
	Error      bool              `json:"error"`
	Annotation map[string]string `json:"annotation"`
	Archive    struct {
		Start string `json:"start"`
		Stop  string `json:"stop"`
	} `json:"archive"`
	LSN struct {
		Start string `json:"start"`
		Stop  string `json:"stop"`
	} `json:"lsn"`
	Timestamp struct {
		Start int64 `json:"start"`
		Stop  int64 `json:"stop"`
	} `json:"timestamp"`
	Info struct {
		Size       int64 `json:"size"`
		Repository struct {
			Delta int64 `json:"delta"`
		} `json:"repository"`
	} `json:"info"`
}

// pgBackRest stanza status codes that still describe a usable (possibly empty) stanza.
const (
	pgbrStatusOK            = 0
	pgbrStatusMissingStanza = 1 // stanza-create not run yet
	pgbrStatusNoBackup      = 2 // no valid backups
)

// annotationJob is the annotation key that carries ramd's job id.
const annotationJob = "ramd-job"

// parsePgbrInfo reads the catalog of stanza from `info --output=json`.
func parsePgbrInfo(data []byte, stanza string) (Catalog, error) {
	var stanzas []pgbrStanza
	if err := json.Unmarshal(data, &stanzas); err != nil {
		return Catalog{}, fmt.Errorf("pgbackrest info: decode JSON: %w", err)
	}
	var st *pgbrStanza
	for i := range stanzas {
		if stanzas[i].Name == stanza {
			st = &stanzas[i]
		}
	}
	if st == nil {
		return Catalog{}, fmt.Errorf("pgbackrest info: stanza %s not in the output", stanza)
	}
	switch st.Status.Code {
	case pgbrStatusOK, pgbrStatusMissingStanza, pgbrStatusNoBackup:
	default:
		return Catalog{}, fmt.Errorf("pgbackrest info: stanza %s: status %d: %s", stanza, st.Status.Code, st.Status.Message)
	}
	var cat Catalog
	current := 0
	for _, db := range st.DB {
		if db.ID >= current {
			current, cat.SystemID = db.ID, db.SystemID
		}
	}
	for _, a := range st.Archive {
		if a.Database.ID != current || a.Min == "" {
			continue
		}
		if cat.WALMin == "" || a.Min < cat.WALMin {
			cat.WALMin = a.Min
		}
		if a.Max > cat.WALMax {
			cat.WALMax = a.Max
		}
	}
	for _, b := range st.Backup {
		cat.Backups = append(cat.Backups, b.info())
	}
	sort.SliceStable(cat.Backups, func(i, j int) bool { return cat.Backups[i].Start.Before(cat.Backups[j].Start) })
	return cat, nil
}

// info maps one backup. pgBackRest lists only completed backups; one whose copy found
// page checksum errors ("error": true) is reported failed, as it holds corrupt pages.
func (b pgbrBackup) info() Info {
	in := Info{
		ID:       b.Label,
		Type:     b.Type,
		Status:   StatusDone,
		StartLSN: b.LSN.Start,
		StopLSN:  b.LSN.Stop,
		WALStart: b.Archive.Start,
		WALStop:  b.Archive.Stop,
		Timeline: pgbrTimeline(b.Archive.Start),
		Size:     b.Info.Size,
		RepoSize: b.Info.Repository.Delta,
		Prior:    b.Prior,
		JobID:    b.Annotation[annotationJob],
	}
	if b.Error {
		in.Status = StatusFailed
	}
	if b.Timestamp.Start > 0 {
		in.Start = time.Unix(b.Timestamp.Start, 0).UTC()
	}
	if b.Timestamp.Stop > 0 {
		in.Stop = time.Unix(b.Timestamp.Stop, 0).UTC()
	}
	return in
}

// pgbrTimeline is the timeline of a WAL segment name (its first 8 hex digits), 0 when the
// name is not one.
func pgbrTimeline(seg string) int {
	if len(seg) != 24 {
		return 0
	}
	n, err := strconv.ParseUint(seg[:8], 16, 32)
	if err != nil {
		return 0
	}
	return int(n)
}
