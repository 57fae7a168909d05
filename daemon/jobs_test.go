package daemon

import (
	"testing"
	"time"

	"github.com/ramd-project/ramd/consul"
)

func TestExpiredJobs(t *testing.T) {
	t.Parallel()
	now := time.Date(2026, 11, 26, 12, 0, 0, 0, time.UTC)
	job := func(id, state string, age time.Duration) listedJob {
		return listedJob{Job: consul.Job{ID: id, State: state, CreatedAt: now.Add(-age)}}
	}
	// Newest first, as listJobs returns them.
	jobs := []listedJob{
		job("running", consul.JobRunning, time.Minute),
		job("new-ok", consul.JobSucceeded, time.Hour),
		job("new-failed", consul.JobFailed, 2*time.Hour),
		job("third", consul.JobSucceeded, 3*time.Hour),
		job("old-pending", consul.JobPending, 30*24*time.Hour),
		job("old-ok", consul.JobSucceeded, 8*24*time.Hour),
		job("ancient-running", consul.JobRunning, 40*24*time.Hour),
	}
	ids := func(js []listedJob) []string {
		var out []string
		for _, j := range js {
			out = append(out, j.ID)
		}
		return out
	}
	tests := []struct {
		keep int
		want []string
	}{
		{10, []string{"old-ok", "ancient-running"}},
		{2, []string{"third", "old-ok", "ancient-running"}},
		{0, []string{"new-ok", "new-failed", "third", "old-ok", "ancient-running"}},
	}
	for _, tt := range tests {
		got := ids(expiredJobs(jobs, now, tt.keep, 7*24*time.Hour))
		if len(got) != len(tt.want) {
			t.Fatalf("keep %d: %v, want %v", tt.keep, got, tt.want)
		}
		for i := range got {
			if got[i] != tt.want[i] {
				t.Fatalf("keep %d: %v, want %v", tt.keep, got, tt.want)
			}
		}
	}
}
