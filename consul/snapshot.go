package consul

import (
	"encoding/json"
	"strconv"
	"strings"
)

// Snapshot is the cluster's keys as one List of the store read them, decoded into their
// records. A record that does not decode is left out, so it counts as absent, never
// half-filled, and is listed in Bad. The initialize key stays raw: what a bad value means
// depends on what the reader knew before (see the daemon).
type Snapshot struct {
	// Leader is the leader key: the holder's name and session ("" when the key is absent or
	// held by no session).
	LeaderPresent bool
	LeaderName    string
	LeaderSession string
	LeaderIndex   uint64

	Initialize *Pair

	// Config is the raw configuration document (validated by dynconf, not here).
	ConfigSeen  bool
	Config      []byte
	ConfigIndex uint64

	Failover      *Failover
	FailoverIndex uint64
	Sync          *Sync
	SyncIndex     uint64
	// History is nil when the key is absent or does not decode; HistoryIndex is the key's
	// index whenever it exists (the next append CASes against it).
	History      []HistoryEntry
	HistoryIndex uint64
	// Status is the leader's status record; StatusIndex is the key's index whenever it
	// exists (a new index is a heartbeat, even when the value does not decode).
	Status      *Status
	StatusIndex uint64

	BackupQueue          BackupQueue
	BackupSchedules      BackupSchedules
	BackupSchedulesIndex uint64

	// Members are the member records by name.
	Members map[string]Member

	// Bad lists the records that did not decode, with a reason that never quotes the value.
	Bad []BadRecord
}

// BadRecord is a key whose value did not decode.
type BadRecord struct {
	Key    string
	Index  uint64
	Bytes  int
	Reason string
}

// DecodeSnapshot decodes the pairs of one List of the cluster's prefix. Keys it does not know
// (jobs, other tools' keys) are ignored.
func DecodeSnapshot(pairs []Pair) Snapshot {
	s := Snapshot{Members: map[string]Member{}}
	for _, p := range pairs {
		switch {
		case p.Key == KeyLeader:
			s.LeaderPresent = p.Session != ""
			s.LeaderName = strings.TrimSpace(string(p.Value))
			s.LeaderSession = p.Session
			s.LeaderIndex = p.ModifyIndex
		case p.Key == KeyInitialize:
			pc := p
			s.Initialize = &pc
		case p.Key == KeyConfig:
			s.ConfigSeen, s.Config, s.ConfigIndex = true, p.Value, p.ModifyIndex
		case p.Key == KeyFailover:
			var f Failover
			if decode(&s, p, &f) {
				s.Failover, s.FailoverIndex = &f, p.ModifyIndex
			}
		case p.Key == KeySync:
			var sk Sync
			if decode(&s, p, &sk) {
				s.Sync, s.SyncIndex = &sk, p.ModifyIndex
			}
		case p.Key == KeyHistory:
			decode(&s, p, &s.History)
			s.HistoryIndex = p.ModifyIndex
		case p.Key == KeyStatus:
			s.StatusIndex = p.ModifyIndex
			var st Status
			if decode(&s, p, &st) {
				s.Status = &st
			}
		case p.Key == KeyBackupQueue:
			decode(&s, p, &s.BackupQueue)
		case p.Key == KeyBackupSchedules:
			if decode(&s, p, &s.BackupSchedules) {
				s.BackupSchedulesIndex = p.ModifyIndex
			}
		case strings.HasPrefix(p.Key, KeyMembers):
			var m Member
			if decode(&s, p, &m) {
				s.Members[strings.TrimPrefix(p.Key, KeyMembers)] = m
			}
		}
	}
	return s
}

// DecodeJob decodes a job record; ok is false for a value that does not decode or has no id
// (such a record is skipped by listings, never shown half-filled).
func DecodeJob(p Pair) (j Job, ok bool) {
	if json.Unmarshal(p.Value, &j) != nil || j.ID == "" {
		return Job{}, false
	}
	return j, true
}

// decode decodes p into dst, leaving dst untouched when it cannot and noting p as bad.
func decode[T any](s *Snapshot, p Pair, dst *T) bool {
	var v T
	if err := json.Unmarshal(p.Value, &v); err != nil {
		s.Bad = append(s.Bad, BadRecord{Key: p.Key, Index: p.ModifyIndex, Bytes: len(p.Value), Reason: DecodeErrorText(err)})
		return false
	}
	*dst = v
	return true
}

// DecodeErrorText describes a JSON decode error without the record's bytes: encoding/json
// quotes the offending value in some errors, and a record may hold anything.
func DecodeErrorText(err error) string {
	switch e := err.(type) { //nolint:errorlint // the concrete types of encoding/json, unwrapped
	case *json.SyntaxError:
		return "invalid JSON at byte " + strconv.FormatInt(e.Offset, 10)
	case *json.UnmarshalTypeError:
		return "a " + e.Value + " where " + e.Type.String() + " was expected at " + e.Field
	}
	return "not decodable"
}
