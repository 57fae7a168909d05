package consul

import (
	"strings"
	"testing"
)

func TestDecodeSnapshot(t *testing.T) {
	t.Parallel()
	pairs := []Pair{
		{Key: KeyLeader, Value: []byte("n1\n"), Session: "s1", ModifyIndex: 10},
		{Key: KeyInitialize, Value: []byte("7345678901234567890"), ModifyIndex: 2},
		{Key: KeyConfig, Value: []byte(`{"ttl":30}`), ModifyIndex: 3},
		{Key: KeyFailover, Value: []byte(`{"leader":"n1","member":"n2"}`), ModifyIndex: 11},
		{Key: KeySync, Value: []byte(`{"leader":"secret-a","quorum":"many"}`), ModifyIndex: 12},
		{Key: KeyHistory, Value: []byte(`[[1,"x"`), ModifyIndex: 13},
		{Key: KeyStatus, Value: []byte(`{"optime":"high"}`), ModifyIndex: 14},
		{Key: KeyBackupSchedules, Value: []byte(`{"fired":{}}`), ModifyIndex: 15},
		{Key: KeyMembers + "n1", Value: []byte(`{"role":"primary","state":"running","conn_url":"postgres://a:1/postgres"}`), ModifyIndex: 16},
		{Key: KeyMembers + "n2", Value: []byte("\x00\xff secret-b"), ModifyIndex: 17},
		{Key: KeyJobs + "j1", Value: []byte(`{"id":"j1"}`), ModifyIndex: 18},
	}
	s := DecodeSnapshot(pairs)
	if !s.LeaderPresent || s.LeaderName != "n1" || s.LeaderSession != "s1" || s.LeaderIndex != 10 {
		t.Errorf("leader: %+v", s)
	}
	if s.Initialize == nil || string(s.Initialize.Value) != "7345678901234567890" {
		t.Errorf("initialize: %+v", s.Initialize)
	}
	if !s.ConfigSeen || string(s.Config) != `{"ttl":30}` || s.ConfigIndex != 3 {
		t.Errorf("config: %v %q %d", s.ConfigSeen, s.Config, s.ConfigIndex)
	}
	if s.Failover == nil || s.Failover.Member != "n2" || s.FailoverIndex != 11 {
		t.Errorf("failover: %+v %d", s.Failover, s.FailoverIndex)
	}
	// Records that do not decode are absent, never half-filled; the indexes that mark a write
	// (status: a heartbeat; history: the next append's CAS) stay.
	if s.Sync != nil || s.SyncIndex != 0 {
		t.Errorf("a sync record that does not decode: %+v %d", s.Sync, s.SyncIndex)
	}
	if s.History != nil || s.HistoryIndex != 13 {
		t.Errorf("history: %v %d", s.History, s.HistoryIndex)
	}
	if s.Status != nil || s.StatusIndex != 14 {
		t.Errorf("status: %+v %d", s.Status, s.StatusIndex)
	}
	if s.BackupSchedulesIndex != 15 {
		t.Errorf("backup schedules index %d", s.BackupSchedulesIndex)
	}
	if len(s.Members) != 1 || s.Members["n1"].Role != "primary" {
		t.Errorf("members: %+v", s.Members)
	}
	var bad []string
	for _, b := range s.Bad {
		bad = append(bad, b.Key)
		if strings.Contains(b.Reason, "secret") || b.Reason == "" || b.Bytes == 0 || b.Index == 0 {
			t.Errorf("bad record %+v", b)
		}
	}
	if want := []string{KeySync, KeyHistory, KeyStatus, KeyMembers + "n2"}; strings.Join(bad, ",") != strings.Join(want, ",") {
		t.Errorf("bad records %v, want %v", bad, want)
	}
	if empty := DecodeSnapshot(nil); empty.LeaderPresent || empty.Initialize != nil || empty.Members == nil {
		t.Errorf("empty snapshot: %+v", empty)
	}
}

func TestDecodeJob(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		value string
		ok    bool
	}{{`{"id":"j1","state":"running"}`, true}, {`{"state":"running"}`, false}, {`{"id":`, false}, {`null`, false}} {
		j, ok := DecodeJob(Pair{Key: KeyJobs + "x", Value: []byte(tt.value)})
		if ok != tt.ok || ok && j.ID != "j1" {
			t.Errorf("DecodeJob(%s) = %+v, %v", tt.value, j, ok)
		}
	}
}

// FuzzDecodeSnapshot: any value under any of the loop's keys decodes without a panic; a record
// either decodes or is listed as bad, and a bad record's reason never quotes the value.
func FuzzDecodeSnapshot(f *testing.F) {
	keys := []string{KeyLeader, KeyInitialize, KeyConfig, KeyFailover, KeySync, KeyHistory, KeyStatus,
		KeyBackupQueue, KeyBackupSchedules, KeyMembers + "n1", KeyJobs + "j1"}
	f.Add(uint8(4), []byte(`{"leader":"n1","sync_standby":"n2"}`))
	f.Add(uint8(9), []byte(`{"role":"replica","state":"running"}`))
	f.Add(uint8(5), []byte(`[[1,"0/3000000","no recovery target specified","2026-01-01T00:00:00Z","n1"]]`))
	f.Add(uint8(6), []byte("\x00\xff"))
	f.Fuzz(func(t *testing.T, k uint8, value []byte) {
		key := keys[int(k)%len(keys)]
		s := DecodeSnapshot([]Pair{{Key: key, Value: value, ModifyIndex: 7}})
		for _, b := range s.Bad {
			if b.Key != key || b.Index != 7 || b.Bytes != len(value) {
				t.Fatalf("bad record %+v for key %s", b, key)
			}
			if len(value) >= 8 && strings.Contains(b.Reason, string(value)) {
				t.Fatalf("reason %q quotes the value", b.Reason)
			}
		}
	})
}
