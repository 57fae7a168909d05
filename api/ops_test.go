package api

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/ramd-project/ramd/consul"
	"github.com/ramd-project/ramd/daemon"
	"github.com/ramd-project/ramd/daemon/params"
)

// opsNode records the local operations the handlers ask for and answers with err.
type opsNode struct {
	configNode
	cat       *params.Catalog
	err       error
	restarts  []daemon.RestartRequest
	scheduled []daemon.RestartRequest
	reinits   [][2]bool
	rolling   []daemon.RollingRestartRequest
	reloads   int
	cancelled int
}

func (o *opsNode) Restart(_ context.Context, r daemon.RestartRequest) (string, error) {
	if o.err != nil {
		return "", o.err
	}
	o.restarts = append(o.restarts, r)
	return "job1", nil
}

func (o *opsNode) ScheduleRestart(_ context.Context, r daemon.RestartRequest) (string, error) {
	if o.err != nil {
		return "", o.err
	}
	o.scheduled = append(o.scheduled, r)
	return "job2", nil
}

func (o *opsNode) CancelScheduledRestart(context.Context) error {
	if o.err != nil {
		return o.err
	}
	o.cancelled++
	return nil
}

func (o *opsNode) Reinitialize(_ context.Context, force, fromLeader bool) (string, error) {
	if o.err != nil {
		return "", o.err
	}
	o.reinits = append(o.reinits, [2]bool{force, fromLeader})
	return "job3", nil
}

func (o *opsNode) Reload() { o.reloads++ }

func (o *opsNode) Jobs(context.Context) ([]consul.Job, error) {
	return []consul.Job{{ID: "job1", Kind: "restart", State: consul.JobSucceeded}}, nil
}

func (o *opsNode) RollingRestart(_ context.Context, r daemon.RollingRestartRequest) (string, error) {
	if o.err != nil {
		return "", o.err
	}
	o.rolling = append(o.rolling, r)
	return "job4", nil
}

// calls counts every operation the node was asked for.
func (o *opsNode) calls() int {
	return len(o.restarts) + len(o.scheduled) + len(o.reinits) + len(o.rolling) + o.reloads + o.cancelled
}

func TestOpsEndpoints(t *testing.T) {
	t.Parallel()
	future := time.Now().Add(time.Hour).UTC().Format(time.RFC3339)
	past := time.Now().Add(-time.Hour).UTC().Format(time.RFC3339)
	tests := []struct {
		name, method, path, body string
		err                      error
		wantCode                 int
		wantBody                 string // substring
		wantCalls                int
	}{
		{"restart now", "POST", "/restart", ``, nil, 200, "restarted successfully", 1},
		{"restart with filters", "POST", "/restart", `{"role":"master","postgres_version":"16.1","restart_pending":true,"timeout":"30s"}`, nil, 200, "restarted", 1},
		{"restart scheduled", "POST", "/restart", `{"schedule":"` + future + `"}`, nil, 202, "Restart scheduled", 1},
		{"restart in the past", "POST", "/restart", `{"schedule":"` + past + `"}`, nil, 422, "Cannot schedule restart in the past", 0},
		{"restart without zone", "POST", "/restart", `{"schedule":"2030-01-01T10:00:00"}`, nil, 400, "Timezone information is mandatory", 0},
		{"restart bad time", "POST", "/restart", `{"schedule":"soon"}`, nil, 422, "Unable to parse", 0},
		{"restart bad role", "POST", "/restart", `{"role":"boss"}`, nil, 400, "either primary or replica", 0},
		{"restart bad version", "POST", "/restart", `{"postgres_version":"fifteen"}`, nil, 400, "not a PostgreSQL version", 0},
		{"restart bad timeout", "POST", "/restart", `{"timeout":-3}`, nil, 400, "positive number of seconds", 0},
		{"restart unknown filter", "POST", "/restart", `{"colour":"red"}`, nil, 400, "Unknown filter for the scheduled restart: colour", 0},
		{"restart malformed", "POST", "/restart", `{"role":`, nil, 400, "JSON object", 0},
		{"restart conditions", "POST", "/restart", `{}`, daemon.ErrConditions, 503, "restart conditions are not satisfied", 0},
		{"restart busy", "POST", "/restart", `{}`, daemon.ErrBusy, 503, "", 0},
		{"restart still starting", "POST", "/restart", `{}`, daemon.ErrStillRunning, 503, "still starting", 0},
		{"schedule twice", "POST", "/restart", `{"schedule":"` + future + `"}`, daemon.ErrRestartScheduled, 409, "already scheduled", 0},
		{"schedule paused", "POST", "/restart", `{"schedule":"` + future + `"}`, daemon.ErrPausedSchedule, 500, "paused state", 0},
		{"delete scheduled", "DELETE", "/restart", ``, nil, 200, "scheduled restart deleted", 1},
		{"delete none", "DELETE", "/restart", ``, daemon.ErrNoScheduledRestart, 404, "no restarts are scheduled", 0},
		{"reload", "POST", "/reload", ``, nil, 202, "reload scheduled", 1},
		{"reinit", "POST", "/reinitialize", `{"force":true,"from_leader":true}`, nil, 200, "reinitialize started", 1},
		{"reinit leader", "POST", "/reinitialize", ``, daemon.ErrIsLeader, 503, "I am the leader, can not reinitialize", 0},
		{"reinit no leader", "POST", "/reinitialize", ``, daemon.ErrNoLeaderToClone, 503, "Cluster has no leader", 0},
		{"reinit bad field", "POST", "/reinitialize", `{"from-leader":true}`, nil, 400, "unknown field", 0},
		{"reinit bad type", "POST", "/reinitialize", `{"force":"yes"}`, nil, 400, "true or false", 0},
		{"v1 reinit", "POST", "/api/v1/reinitialize", `{"from_leader":true}`, nil, 202, `"job_id":"job3"`, 1},
		{"v1 reinit leader", "POST", "/api/v1/reinitialize", `{}`, daemon.ErrIsLeader, 409, "I am the leader", 0},
		{"v1 reinit unknown field", "POST", "/api/v1/reinitialize", `{"forse":true}`, nil, 400, `"field":"forse"`, 0},
		{"v1 rolling", "POST", "/api/v1/restart", `{"restart_pending":true}`, nil, 202, `"job_url":"/api/v1/jobs/job4"`, 1},
		{"v1 rolling wrong type", "POST", "/api/v1/restart", `{"restart_pending":"yes"}`, nil, 400, `"field":"restart_pending"`, 0},
		{"v1 rolling busy", "POST", "/api/v1/restart", ``, daemon.ErrRollingInProgress, 409, "already in progress", 0},
		{"jobs list", "GET", "/api/v1/jobs", ``, nil, 200, `"id":"job1"`, 0},
		{"v1 rolling too large", "POST", "/api/v1/restart", `{"x":"` + strings.Repeat("a", maxBody) + `"}`, nil, 413, "too large", 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			node := &opsNode{configNode: configNode{cfg: map[string]any{}}, err: tt.err}
			r := NewRouter(routesOf(node), nil, nil, nil)
			rec := httptest.NewRecorder()
			r.ServeHTTP(rec, httptest.NewRequest(tt.method, tt.path, strings.NewReader(tt.body)))
			if rec.Code != tt.wantCode {
				t.Fatalf("%s %s: code %d, want %d (%s)", tt.method, tt.path, rec.Code, tt.wantCode, rec.Body)
			}
			if !strings.Contains(rec.Body.String(), tt.wantBody) {
				t.Errorf("body %q lacks %q", rec.Body, tt.wantBody)
			}
			if node.calls() != tt.wantCalls {
				t.Errorf("node was asked %d times, want %d", node.calls(), tt.wantCalls)
			}
		})
	}
}

func TestParseRestartFilters(t *testing.T) {
	t.Parallel()
	r, code, msg := parseRestart(map[string]any{"role": "master", "postgres_version": "15.4", "restart_pending": true, "timeout": float64(90)}, time.Now())
	if code != 0 {
		t.Fatalf("refused: %d %s", code, msg)
	}
	want := daemon.RestartRequest{Role: "primary", PostgresVersion: 150004, RestartPending: true, Timeout: 90 * time.Second}
	if r != want {
		t.Fatalf("got %+v, want %+v", r, want)
	}
}

func TestPauseResume(t *testing.T) {
	t.Parallel()
	node := &opsNode{configNode: configNode{cfg: map[string]any{"ttl": float64(3)}}}
	r := NewRouter(routesOf(node), nil, nil, nil)
	for _, step := range []struct {
		path string
		want any
	}{{"/api/v1/pause", true}, {"/api/v1/resume", nil}} {
		rec := httptest.NewRecorder()
		r.ServeHTTP(rec, httptest.NewRequest(http.MethodPost, step.path, nil))
		if rec.Code != http.StatusOK {
			t.Fatalf("%s: %d %s", step.path, rec.Code, rec.Body)
		}
		if got := node.cfg["pause"]; got != step.want {
			t.Fatalf("%s: pause = %v, want %v", step.path, got, step.want)
		}
		if node.cfg["ttl"] != float64(3) {
			t.Fatalf("%s changed another key: %v", step.path, node.cfg)
		}
	}
}
