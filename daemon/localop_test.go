package daemon

import "testing"

func TestParsePostgresVersion(t *testing.T) {
	t.Parallel()
	tests := []struct {
		in   string
		want int
		ok   bool
	}{
		{"15", 150000, true},
		{"15.4", 150004, true},
		{"13.16", 130016, true},
		{"9.6.3", 90603, true},
		{"9.6", 90600, true},
		{"150004", 150004, true},
		{" 16.1 ", 160001, true},
		{"fifteen", 0, false},
		{"15.4.1", 0, false},
		{"", 0, false},
		{"-1", 0, false},
		{"9", 0, false},
	}
	for _, tt := range tests {
		got, err := ParsePostgresVersion(tt.in)
		if (err == nil) != tt.ok || got != tt.want {
			t.Errorf("ParsePostgresVersion(%q) = %d, %v; want %d, ok=%v", tt.in, got, err, tt.want, tt.ok)
		}
	}
}

func TestRestartMismatch(t *testing.T) {
	t.Parallel()
	primary := &Status{Role: RolePrimary, ServerVersion: 150004, PendingRestart: true}
	replica := &Status{Role: RoleReplica, ServerVersion: 150004}
	tests := []struct {
		name string
		r    RestartRequest
		st   *Status
		want string
	}{
		{"no filters", RestartRequest{}, replica, ""},
		{"role matches", RestartRequest{Role: "primary"}, primary, ""},
		{"master is primary", RestartRequest{Role: "master"}, primary, ""},
		{"role differs", RestartRequest{Role: "replica"}, primary, "host role mismatch"},
		{"newer version wanted", RestartRequest{PostgresVersion: 150005}, primary, ""},
		{"same version", RestartRequest{PostgresVersion: 150004}, primary, "postgres version mismatch"},
		{"older version", RestartRequest{PostgresVersion: 130000}, primary, "postgres version mismatch"},
		{"pending wanted and set", RestartRequest{RestartPending: true}, primary, ""},
		{"pending wanted, not set", RestartRequest{RestartPending: true}, replica, "pending restart flag is not set"},
	}
	for _, tt := range tests {
		if got := restartMismatch(tt.r, tt.st); got != tt.want {
			t.Errorf("%s: %q, want %q", tt.name, got, tt.want)
		}
	}
}

func TestPrimaryFirst(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		pending map[string]PendingChange
		want    bool
	}{
		{"nothing pending", nil, false},
		{"max_connections raised", map[string]PendingChange{"max_connections": {OldValue: "100", NewValue: "200"}}, false},
		{"max_connections lowered", map[string]PendingChange{"max_connections": {OldValue: "200", NewValue: "100"}}, true},
		{"max_locks_per_transaction lowered", map[string]PendingChange{"max_locks_per_transaction": {OldValue: "128", NewValue: "64"}}, true},
		{"shared_buffers lowered", map[string]PendingChange{"shared_buffers": {OldValue: "32768", NewValue: "16384"}}, false},
		{"one raised, one lowered", map[string]PendingChange{"max_connections": {OldValue: "100", NewValue: "200"}, "max_wal_senders": {OldValue: "10", NewValue: "8"}}, true},
		{"unreadable values", map[string]PendingChange{"max_connections": {OldValue: "many", NewValue: "100"}}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			if got, why := primaryFirst(tt.pending); got != tt.want || (got && why == "") {
				t.Errorf("primaryFirst = %v %q, want %v", got, why, tt.want)
			}
		})
	}
}
