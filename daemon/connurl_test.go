package daemon

import (
	"testing"
	"time"
)

func TestConnURL(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		host     string
		port     int
		tls      bool
		want     string
		wantHost string
	}{
		{"10.0.0.5", 5432, false, "postgres://10.0.0.5:5432/postgres", "10.0.0.5"},
		{"10.0.0.5", 5433, true, "postgres://10.0.0.5:5433/postgres?sslmode=require", "10.0.0.5"},
		{"::1", 5432, true, "postgres://[::1]:5432/postgres?sslmode=require", "::1"},
		{"db1.example", 6432, false, "postgres://db1.example:6432/postgres", "db1.example"},
	} {
		got := connURL(tt.host, tt.port, tt.tls)
		if got != tt.want {
			t.Errorf("connURL(%q, %d, %v) = %q, want %q", tt.host, tt.port, tt.tls, got, tt.want)
		}
		// What members read back from a published conn_url is the address, with or without
		// the query.
		if h, p := connHostPort(got); h != tt.wantHost || p != tt.port {
			t.Errorf("connHostPort(%q) = %q, %d", got, h, p)
		}
	}
}

// TestStatusAsOf: a leader's snapshot stops holding the lock at the fencing deadline of its
// last confirmation, whatever the loop published last; other snapshots are returned as is.
func TestStatusAsOf(t *testing.T) {
	t.Parallel()
	leader := &Status{HasLock: true, Leader: "n1", Role: RolePrimary, State: "running", PGRunning: true}
	for _, tt := range []struct {
		name         string
		st           *Status
		now, fenceAt time.Duration
		gone         bool // the postmaster ended since the snapshot
		wantLock     bool
		wantRole     Role
		wantRunning  bool
	}{
		{"before the deadline", leader, 10 * time.Second, 11 * time.Second, false, true, RolePrimary, true},
		{"at the deadline", leader, 11 * time.Second, 11 * time.Second, false, false, RoleDemoted, false},
		{"past the deadline", leader, 15 * time.Second, 11 * time.Second, false, false, RoleDemoted, false},
		{"never confirmed", leader, 15 * time.Second, 0, false, true, RolePrimary, true},
		{"a replica", &Status{Role: RoleReplica}, 15 * time.Second, 11 * time.Second, false, false, RoleReplica, false},
		{"a lock holder in recovery past the deadline", &Status{HasLock: true, Role: RoleReplica}, 15 * time.Second, 11 * time.Second, false, false, RoleReplica, false},
		{"a leader whose postmaster is gone before the deadline", leader, 10 * time.Second, 11 * time.Second, true, true, RoleDemoted, false},
		{"a leader whose postmaster is gone, never confirmed", leader, 15 * time.Second, 0, true, true, RoleDemoted, false},
		{"a streaming replica whose postmaster is gone", &Status{Role: RoleReplica, State: "streaming", PGRunning: true}, 15 * time.Second, 0, true, false, RoleReplica, false},
		{"a stopped replica", &Status{Role: RoleReplica, State: "stopped"}, 15 * time.Second, 0, true, false, RoleReplica, false},
	} {
		got := statusAsOf(tt.st, tt.now, tt.fenceAt, !tt.gone)
		if got.HasLock != tt.wantLock || got.Role != tt.wantRole || got.PGRunning != tt.wantRunning {
			t.Errorf("%s: HasLock %v role %s running %v, want %v %s %v", tt.name, got.HasLock, got.Role, got.PGRunning, tt.wantLock, tt.wantRole, tt.wantRunning)
		}
		if !got.PGRunning && tt.st.PGRunning && got.State != "stopped" {
			t.Errorf("%s: not running but state %q", tt.name, got.State)
		}
		if got.Role == RoleDemoted && (got.PGRunning || got.State != "stopped") {
			t.Errorf("%s: demoted but %s, running %v", tt.name, got.State, got.PGRunning)
		}
		if !got.HasLock && got.Leader != "" {
			t.Errorf("%s: leader %q without the lock", tt.name, got.Leader)
		}
	}
	if !leader.HasLock || leader.Leader != "n1" || leader.Role != RolePrimary {
		t.Error("statusAsOf changed the published snapshot")
	}
	if statusAsOf(nil, time.Second, time.Second, false) != nil {
		t.Error("a nil snapshot is not nil")
	}
}
