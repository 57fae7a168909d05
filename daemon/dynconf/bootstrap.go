package dynconf

import (
	"regexp"
	"strings"
	"time"
)

// Bootstrap methods.
const (
	BootstrapInitdb = "initdb"
	BootstrapBackup = "backup"
)

// Recovery target types.
const (
	TargetEnd       = "end"
	TargetImmediate = "immediate"
	TargetTime      = "time"
	TargetXID       = "xid"
	TargetLSN       = "lsn"
	TargetName      = "name"
)

// Bootstrap says how a new cluster is created: initdb (the default) or a restore of another
// cluster's backup, to the end of its archive or to a recovery target. It is read once, by
// the member that bootstraps.
type Bootstrap struct {
	Method string
	// From is the source repository (a backup object: tool and its settings).
	From *Backup
	// BackupID picks a backup ("" the latest that reaches the target).
	BackupID string
	Target   RecoveryTarget
}

// RecoveryTarget is where a restore stops.
type RecoveryTarget struct {
	// Type is end (default), immediate, time, xid, lsn or name.
	Type  string
	Value string
	// Exclusive stops just before the target.
	Exclusive bool
}

var (
	lsnRe     = regexp.MustCompile(`^[0-9A-Fa-f]{1,8}/[0-9A-Fa-f]{1,8}$`)
	xidRe     = regexp.MustCompile(`^[0-9]{1,20}$`)
	restoreRe = regexp.MustCompile(`^[^\x00-\x1f']+$`) // and at most 63 bytes
)

// CheckTarget validates a recovery target; field prefixes the refused field's name. now
// refuses a time in the future.
func CheckTarget(t RecoveryTarget, field string, now time.Time) *FieldError {
	switch t.Type {
	case "", TargetEnd, TargetImmediate:
		if t.Value != "" {
			return &FieldError{field + ".value", t.Value, "takes no value for type " + t.Type}
		}
	case TargetTime:
		at, err := time.Parse(time.RFC3339Nano, t.Value)
		if err != nil {
			return &FieldError{field + ".value", t.Value, "must be a time in RFC 3339 (2026-01-02T15:04:05Z)"}
		}
		if at.After(now) {
			return &FieldError{field + ".value", t.Value, "is in the future: nothing was committed there yet"}
		}
	case TargetXID:
		if !xidRe.MatchString(t.Value) {
			return &FieldError{field + ".value", t.Value, "must be a transaction id (digits)"}
		}
	case TargetLSN:
		if !lsnRe.MatchString(t.Value) {
			return &FieldError{field + ".value", t.Value, "must be an LSN such as 0/3000028"}
		}
	case TargetName:
		if len(t.Value) > 63 || !restoreRe.MatchString(t.Value) {
			return &FieldError{field + ".value", t.Value, "must be a restore point name (1 to 63 characters, no quote)"}
		}
	default:
		return &FieldError{field + ".type", t.Type, "must be end, immediate, time, xid, lsn or name"}
	}
	return nil
}

// checkBootstrap validates the bootstrap object into c.Bootstrap.
func checkBootstrap(c *Config, v any, now time.Time) []*FieldError {
	m, ok := v.(map[string]any)
	if !ok {
		return []*FieldError{{"bootstrap", v, "must be an object"}}
	}
	b := &Bootstrap{Method: BootstrapInitdb}
	var errs []*FieldError
	for key, val := range m {
		if val == nil {
			continue
		}
		switch key {
		case "method":
			s, _ := val.(string)
			if s != BootstrapInitdb && s != BootstrapBackup {
				errs = append(errs, &FieldError{"bootstrap.method", val, "must be initdb or backup"})
				continue
			}
			b.Method = s
		case "from":
			var src Config
			for _, fe := range checkBackup(&src, val) {
				fe.Field = "bootstrap.from" + strings.TrimPrefix(fe.Field, "backup")
				errs = append(errs, fe)
			}
			b.From = src.Backup
		case "backup_id":
			s, _ := val.(string)
			if len(s) > 63 || !restoreRe.MatchString(s) {
				errs = append(errs, &FieldError{"bootstrap.backup_id", val, "must be a backup label or id"})
				continue
			}
			b.BackupID = s
		case "target":
			tm, ok := val.(map[string]any)
			if !ok {
				errs = append(errs, &FieldError{"bootstrap.target", val, "must be an object {type, value, exclusive}"})
				continue
			}
			for tk, tv := range tm {
				switch tk {
				case "type":
					b.Target.Type, _ = tv.(string)
				case "value":
					b.Target.Value, _ = tv.(string)
				case "exclusive":
					b.Target.Exclusive, _ = tv.(bool)
				default:
					errs = append(errs, &FieldError{"bootstrap.target." + tk, tv, "unknown key: type, value or exclusive"})
				}
			}
			if fe := CheckTarget(b.Target, "bootstrap.target", now); fe != nil {
				errs = append(errs, fe)
			}
		default:
			errs = append(errs, &FieldError{"bootstrap." + key, val, "unknown key: method, from, backup_id or target"})
		}
	}
	if b.Method == BootstrapBackup && b.From == nil && len(errs) == 0 {
		errs = append(errs, &FieldError{"bootstrap.from", nil, "required for method backup: the source repository (tool and settings)"})
	}
	if b.From != nil {
		switch {
		case b.From.Tool == ToolPgBackRest && b.From.PgBackRest.Stanza == "":
			errs = append(errs, &FieldError{"bootstrap.from.pgbackrest.stanza", nil, "required: the source cluster's stanza"})
		case b.From.Tool == ToolBarman && b.From.Barman.Server == "":
			errs = append(errs, &FieldError{"bootstrap.from.barman.server", nil, "required: the source cluster's Barman server"})
		}
	}
	if len(errs) == 0 {
		c.Bootstrap = b
	}
	return errs
}

// checkOwnArchive refuses a restored cluster whose archive is its source's: its WAL would
// mix with the source's (a new timeline of the same system in the same stanza).
func checkOwnArchive(c Config, scope string) *FieldError {
	if c.Bootstrap == nil || c.Bootstrap.From == nil || c.Backup == nil || c.Backup.Tool != c.Bootstrap.From.Tool {
		return nil
	}
	from, own := c.Bootstrap.From, c.Backup
	switch own.Tool {
	case ToolPgBackRest:
		if own.PgBackRest.RepoPath == from.PgBackRest.RepoPath && own.PgBackRest.StanzaOr(scope) == from.PgBackRest.Stanza {
			return &FieldError{"backup.pgbackrest.stanza", own.PgBackRest.StanzaOr(scope), "is the source's stanza: a restored cluster archives into a stanza of its own"}
		}
	case ToolBarman:
		if own.Barman.HomeValue() == from.Barman.HomeValue() && own.Barman.ServerOr(scope) == from.Barman.Server {
			return &FieldError{"backup.barman.server", own.Barman.ServerOr(scope), "is the source's server: a restored cluster archives into a server of its own"}
		}
	}
	return nil
}

// CheckBootstrap validates a bootstrap document for the cluster scope: the document itself,
// and that a restored cluster does not archive into its source's archive.
func CheckBootstrap(doc map[string]any, scope string) (Config, error) {
	c, err := Validate(doc)
	if err != nil {
		return c, err
	}
	if fe := checkOwnArchive(c, scope); fe != nil {
		return c, Errors{fe}
	}
	return c, nil
}
