package pg

import "testing"

func TestExpandArchiveCommand(t *testing.T) {
	t.Parallel()
	tests := []struct{ cmd, want string }{
		{`pgbackrest --stanza=s archive-push "%p"`, `pgbackrest --stanza=s archive-push "pg_wal/000000010000000000000003"`},
		{`cp %p /a/%f`, `cp pg_wal/000000010000000000000003 /a/000000010000000000000003`},
		{`echo 100%% %x %`, `echo 100% %x %`},
		{`%%p`, `%p`},
		{``, ``},
	}
	for _, tt := range tests {
		if got := ExpandArchiveCommand(tt.cmd, "pg_wal/000000010000000000000003", "000000010000000000000003"); got != tt.want {
			t.Errorf("ExpandArchiveCommand(%q) = %q, want %q", tt.cmd, got, tt.want)
		}
	}
}

func TestRequeueRule(t *testing.T) {
	t.Parallel()
	tests := []struct {
		seg, after string
		want       bool
	}{
		{"000000010000000000000005", "", true},
		{"000000010000000000000005", "000000010000000000000004", true},
		{"000000010000000000000005", "000000010000000000000005", false}, // archived already
		{"000000010000000000000004", "000000010000000000000005", false},
		{"000000020000000000000001", "000000010000000000000005", true}, // a later timeline
		{"000000010000000000000005", "garbage", true},                  // unknown: requeue
		{"00000002.history", "", false},
		{"000000010000000000000005.partial", "", false},
		{"000000010000000000000005.00000028.backup", "", false},
	}
	for _, tt := range tests {
		if got := requeue(tt.seg, tt.after); got != tt.want {
			t.Errorf("requeue(%q, after %q) = %v, want %v", tt.seg, tt.after, got, tt.want)
		}
	}
}
