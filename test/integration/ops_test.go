package integration

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/ramd-project/ramd/test/harness"
	"github.com/ramd-project/ramd/test/testenv"
)

// opsDoc is the part of GET /patroni the operations test reads.
type opsDoc struct {
	Role             string          `json:"role"`
	PostmasterStart  string          `json:"postmaster_start_time"`
	PendingRestart   bool            `json:"pending_restart"`
	ScheduledRestart json.RawMessage `json:"scheduled_restart"`
	SystemID         string          `json:"database_system_identifier"`
}

func getOps(t *testing.T, n *harness.Node) (opsDoc, error) {
	t.Helper()
	var d opsDoc
	resp, err := (&http.Client{Timeout: 2 * time.Second}).Get(n.APIURL() + "/patroni")
	if err != nil {
		return d, err
	}
	defer resp.Body.Close()
	return d, json.NewDecoder(resp.Body).Decode(&d)
}

func deleteReq(t *testing.T, url string) int {
	t.Helper()
	code, _ := request(t, http.MethodDelete, url, "")
	return code
}

// jobState follows GET /api/v1/jobs/{id}?wait=true until the job ends, bounded by timeout.
func jobState(t *testing.T, n *harness.Node, id string, timeout time.Duration) (state string, body string) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for time.Now().Before(deadline) {
		resp, err := (&http.Client{Timeout: 40 * time.Second}).Get(n.APIURL() + "/api/v1/jobs/" + id + "?wait=true&timeout=30s")
		if err == nil {
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			var j struct {
				State string `json:"state"`
			}
			if json.Unmarshal(b, &j) == nil && (j.State == "succeeded" || j.State == "failed") {
				return j.State, string(b)
			}
			body = string(b)
		}
		time.Sleep(200 * time.Millisecond)
	}
	t.Fatalf("job %s did not end within %s: %s", id, timeout, body)
	return "", ""
}

// listedJob is the part of GET /api/v1/jobs the tests read.
type listedJob struct {
	Kind, State string
	ScheduledAt string    `json:"scheduled_at"`
	CreatedAt   time.Time `json:"created_at"`
}

func listJobs(t *testing.T, n *harness.Node) []listedJob {
	t.Helper()
	resp, err := (&http.Client{Timeout: 5 * time.Second}).Get(n.APIURL() + "/api/v1/jobs")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var jobs []listedJob
	if err := json.NewDecoder(resp.Body).Decode(&jobs); err != nil {
		t.Fatal(err)
	}
	return jobs
}

func jobID(t *testing.T, body string) string {
	t.Helper()
	var a struct {
		JobID string `json:"job_id"`
	}
	if err := json.Unmarshal([]byte(body), &a); err != nil || a.JobID == "" {
		t.Fatalf("no job id in %q", body)
	}
	return a.JobID
}

// TestRestartReloadReinitialize drives the local operations on a live cluster under writes:
// a reload makes a pending restart visible; restart filters refuse what does not match; the
// primary restarts in place without a failover; a scheduled restart can be deleted and runs
// when due; the leader refuses to reinitialize and a replica is wiped and cloned again; a
// rolling restart clears every pending restart with one switchover. No two nodes ever take
// writes together.
func TestRestartReloadReinitialize(t *testing.T) {
	t.Parallel()
	addr := needReal(t)
	c, p, w := writing(t, addr, harness.Options{})
	ctx := context.Background()
	var replica *harness.Node
	for _, n := range c.Nodes {
		if n != p {
			replica = n
			break
		}
	}

	// A postmaster-level change plus a reload shows up as pending_restart.
	if err := p.Exec(ctx, "ALTER SYSTEM SET track_activity_query_size = 2048"); err != nil {
		t.Fatal(err)
	}
	if code, body := post(t, p.APIURL()+"/reload", ``); code != http.StatusAccepted {
		t.Fatalf("reload: %d %s", code, body)
	}
	testenv.Eventually(t, 20*time.Second, 100*time.Millisecond, func() error {
		d, err := getOps(t, p)
		if err != nil || !d.PendingRestart {
			return fmt.Errorf("pending_restart not shown yet (%w)", err)
		}
		return nil
	})

	// Filters that do not match are refused and restart nothing.
	before, _ := getOps(t, replica)
	if code, body := post(t, replica.APIURL()+"/restart", `{"restart_pending": true}`); code != http.StatusServiceUnavailable || !strings.Contains(body, "conditions are not satisfied") {
		t.Fatalf("restart of a replica without pending restart: %d %s", code, body)
	}
	if code, body := post(t, p.APIURL()+"/restart", `{"role": "replica"}`); code != http.StatusServiceUnavailable {
		t.Fatalf("restart with role replica on the primary: %d %s", code, body)
	}
	if code, body := post(t, p.APIURL()+"/restart", `{"postgres_version": "13.0"}`); code != http.StatusServiceUnavailable {
		t.Fatalf("restart with an older postgres_version: %d %s", code, body)
	}
	if after, _ := getOps(t, replica); after.PostmasterStart != before.PostmasterStart {
		t.Fatal("a refused restart restarted the replica")
	}

	// The primary restarts in place: same leader, same timeline, new postmaster, no pending.
	tl := timeline(t, p)
	oldPID := p.PostmasterPID()
	code, body := post(t, p.APIURL()+"/restart", `{"restart_pending": true, "role": "primary"}`)
	if code != http.StatusOK {
		t.Fatalf("restart of the primary: %d %s", code, body)
	}
	if now := c.WaitPrimary(30 * time.Second); now != p {
		t.Fatalf("primary moved to %s during an in-place restart", now.Name)
	}
	if pid := p.PostmasterPID(); pid == oldPID || pid == 0 {
		t.Fatalf("postmaster pid %d -> %d: not restarted", oldPID, pid)
	}
	if got := timeline(t, p); got != tl {
		t.Fatalf("timeline %d -> %d across an in-place restart", tl, got)
	}
	testenv.Eventually(t, 10*time.Second, 100*time.Millisecond, func() error {
		if d, _ := getOps(t, p); d.PendingRestart {
			return fmt.Errorf("still pending restart")
		}
		return nil
	})
	w.WaitAcked(t, 10, 30*time.Second)

	// Scheduled restart: shown, a second one refused, deleted; then one that runs.
	later := time.Now().Add(time.Hour).UTC().Format(time.RFC3339)
	if code, body := post(t, replica.APIURL()+"/restart", fmt.Sprintf(`{"schedule": %q}`, later)); code != http.StatusAccepted {
		t.Fatalf("schedule: %d %s", code, body)
	}
	if code, _ := post(t, replica.APIURL()+"/restart", fmt.Sprintf(`{"schedule": %q}`, later)); code != http.StatusConflict {
		t.Fatalf("second schedule: %d, want 409", code)
	}
	testenv.Eventually(t, 10*time.Second, 100*time.Millisecond, func() error {
		if d, _ := getOps(t, replica); len(d.ScheduledRestart) == 0 {
			return fmt.Errorf("scheduled_restart not shown")
		}
		return nil
	})
	if code := deleteReq(t, replica.APIURL()+"/restart"); code != http.StatusOK {
		t.Fatalf("DELETE /restart: %d", code)
	}
	if code := deleteReq(t, replica.APIURL()+"/restart"); code != http.StatusNotFound {
		t.Fatalf("second DELETE /restart: %d, want 404", code)
	}
	before, _ = getOps(t, replica)
	soon := time.Now().Add(2 * time.Second).UTC().Format(time.RFC3339)
	if code, body := post(t, replica.APIURL()+"/restart", fmt.Sprintf(`{"schedule": %q}`, soon)); code != http.StatusAccepted {
		t.Fatalf("schedule soon: %d %s", code, body)
	}
	testenv.Eventually(t, 60*time.Second, 200*time.Millisecond, func() error {
		d, err := getOps(t, replica)
		if err != nil || d.PostmasterStart == before.PostmasterStart || d.Role != "replica" || len(d.ScheduledRestart) != 0 {
			return fmt.Errorf("scheduled restart not done yet: %+v %w", d, err)
		}
		// Its job ends in the same cycle, just after the status shows the new postmaster.
		for _, j := range listJobs(t, replica) {
			if j.Kind == "restart" && j.ScheduledAt == soon && j.State != "succeeded" {
				return fmt.Errorf("scheduled restart job %s", j.State)
			}
		}
		return nil
	})

	// Reinitialize: refused on the leader, done on a replica (same system, streaming again).
	if code, body := post(t, p.APIURL()+"/reinitialize", `{}`); code != http.StatusServiceUnavailable || !strings.Contains(body, "I am the leader") {
		t.Fatalf("reinitialize on the leader: %d %s", code, body)
	}
	code, body = post(t, replica.APIURL()+"/api/v1/reinitialize", `{"from_leader": true}`)
	if code != http.StatusAccepted {
		t.Fatalf("reinitialize: %d %s", code, body)
	}
	if state, job := jobState(t, replica, jobID(t, body), 3*time.Minute); state != "succeeded" {
		t.Fatalf("reinitialize job: %s", job)
	}
	c.WaitReplicas(120 * time.Second)
	if d, _ := getOps(t, replica); d.SystemID == "" || d.SystemID != before.SystemID {
		t.Fatalf("system identifier %q after reinitialize, want %q", d.SystemID, before.SystemID)
	}

	// Rolling restart of every member with a pending change: replicas, a switchover, the
	// old primary.
	for _, n := range c.Nodes {
		if err := n.Exec(ctx, "ALTER SYSTEM SET track_activity_query_size = 4096"); err != nil {
			t.Fatalf("%s: %v", n.Name, err)
		}
		if code, body := post(t, n.APIURL()+"/reload", ``); code != http.StatusAccepted {
			t.Fatalf("reload %s: %d %s", n.Name, code, body)
		}
	}
	testenv.Eventually(t, 20*time.Second, 100*time.Millisecond, func() error {
		for _, n := range c.Nodes {
			if d, _ := getOps(t, n); !d.PendingRestart {
				return fmt.Errorf("%s: no pending restart yet", n.Name)
			}
		}
		return nil
	})
	code, body = post(t, replica.APIURL()+"/api/v1/restart", `{"restart_pending": true}`)
	if code != http.StatusAccepted {
		t.Fatalf("rolling restart: %d %s", code, body)
	}
	state, job := jobState(t, replica, jobID(t, body), 5*time.Minute)
	if state != "succeeded" {
		t.Fatalf("rolling restart job: %s", job)
	}
	t.Logf("rolling restart job: %s", job)
	if !strings.Contains(job, "switchover from "+p.Name) {
		t.Errorf("rolling restart did not switch over from %s: %s", p.Name, job)
	}
	next := c.WaitPrimary(60 * time.Second)
	if next == p {
		t.Errorf("primary is still %s after a rolling restart with switchover", p.Name)
	}
	c.WaitReplicas(120 * time.Second)
	testenv.Eventually(t, 20*time.Second, 100*time.Millisecond, func() error {
		for _, n := range c.Nodes {
			if d, _ := getOps(t, n); d.PendingRestart {
				return fmt.Errorf("%s still waits for a restart", n.Name)
			}
		}
		return nil
	})
	w.WaitAcked(t, 10, 30*time.Second)

	// Every operation above left a job, listed newest first.
	jobs := listJobs(t, replica)
	kinds := map[string]int{}
	for i, j := range jobs {
		kinds[j.Kind]++
		if i > 0 && j.CreatedAt.After(jobs[i-1].CreatedAt) {
			t.Errorf("jobs not newest first: %v after %v", j.CreatedAt, jobs[i-1].CreatedAt)
		}
	}
	if kinds["restart"] < 2 || kinds["reinitialize"] != 1 || kinds["rolling-restart"] != 1 || kinds["switchover"] != 1 {
		t.Errorf("jobs listed: %v", kinds)
	}
	report(t, c, w)
}

// TestRestartTimeoutHandsOver: a restart of the primary requested with a timeout, whose
// PostgreSQL cannot start again (a library that does not exist), hands the lock over once
// the timeout passed, as Patroni does; the restart answers 503 and a replica takes over.
func TestRestartTimeoutHandsOver(t *testing.T) {
	t.Parallel()
	addr := needReal(t)
	// Start failures alone must not hand over first: the timeout is what is tested.
	c, p, w := writing(t, addr, harness.Options{Env: map[string]string{"RAMD_PG_MAX_START_FAILURES": "1000"}})
	tl := timeline(t, p)
	if err := p.Exec(context.Background(), "ALTER SYSTEM SET shared_preload_libraries = 'ramd_no_such_library'"); err != nil {
		t.Fatal(err)
	}
	code, body := post(t, p.APIURL()+"/restart", `{"timeout": 3}`)
	if code != http.StatusServiceUnavailable || !strings.Contains(body, "restart failed") {
		t.Fatalf("restart that cannot succeed: %d %s", code, body)
	}
	next := c.WaitPrimary(60 * time.Second)
	if next == p {
		t.Fatal("the node whose restart failed is still primary")
	}
	if got := timeline(t, next); got <= tl {
		t.Fatalf("new primary on timeline %d, old %d", got, tl)
	}
	w.WaitAcked(t, 10, 30*time.Second)
	if events := c.LogEvents("exceeded its timeout"); len(events) == 0 {
		t.Error("the old primary did not log the handover after its restart timeout")
	}
	report(t, c, w)
}
