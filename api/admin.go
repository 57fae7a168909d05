package api

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/ramd-project/ramd/api/client"
	"github.com/ramd-project/ramd/consul"
	"github.com/ramd-project/ramd/daemon"
)

// Admin is what the administrative endpoints need from the node agent (satisfied by
// *daemon.Node). Handlers record intent in Consul through it and the HA loop acts.
type Admin interface {
	// ConfirmLeader records a direct confirmation from the leader while Consul is away.
	ConfirmLeader(name string) bool
	// RequestSwitchover records a switchover or failover request and returns its job id.
	RequestSwitchover(ctx context.Context, r daemon.SwitchoverRequest) (string, error)
	// Job reads a tracked job.
	Job(ctx context.Context, id string) (consul.Job, error)
	// CancelSwitchover removes a pending switchover.
	CancelSwitchover(ctx context.Context) error
}

// JobLister lists the tracked jobs, newest first (satisfied by *daemon.Node).
type JobLister interface {
	Jobs(ctx context.Context) ([]consul.Job, error)
}

// switchoverWait bounds how long POST /switchover waits for the job before answering 503
// with the job id to follow (Patroni gives up after 20 s with "status unknown").
const switchoverWait = 30 * time.Second

// maxBody bounds request bodies of the admin endpoints.
const maxBody = 64 << 10

// registerRoutes registers the route groups of rt that are set.
func registerRoutes(r *gin.Engine, rt Routes) {
	if rt.Admin != nil {
		registerAdmin(r, rt.Admin)
	}
	if rt.Jobs != nil {
		r.GET("/api/v1/jobs", jobs(rt.Jobs))
	}
	if rt.Sync != nil {
		registerSync(r, rt.Sync)
	}
	if rt.Config != nil {
		registerConfig(r, rt.Config)
	}
	if rt.Sync != nil && rt.Config != nil {
		registerSyncSteps(r, rt.Sync, rt.Config)
	}
	if rt.Ops != nil {
		registerOps(r, rt.Ops)
	}
	if rt.Params != nil {
		registerParams(r, rt.Params)
	}
	if rt.Backups != nil {
		registerBackups(r, rt.Backups)
	}
}

func registerAdmin(r *gin.Engine, a Admin) {
	h := &adminHandlers{a: a}
	r.POST("/failsafe", h.failsafe)
	r.POST("/switchover", h.switchover(false))
	r.POST("/failover", h.switchover(true))
	r.DELETE("/switchover", h.cancel)
	r.GET("/api/v1/jobs/:id", h.job)
	r.GET("/api/v1/backup/status/:id", h.job) // the seed's spelling for backup jobs
	r.POST("/api/v1/switchover", h.switchoverV1(false))
	r.POST("/api/v1/cluster/switchover", h.switchoverV1(false)) // the seed's path
	r.POST("/api/v1/failover", h.switchoverV1(true))
	r.DELETE("/api/v1/switchover", h.cancel)
}

type adminHandlers struct{ a Admin }

func decodeStrict(c *gin.Context, v any) error {
	dec := json.NewDecoder(io.LimitReader(c.Request.Body, maxBody))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return fmt.Errorf("invalid JSON body: %w", err)
	}
	return nil
}

func (h *adminHandlers) failsafe(c *gin.Context) {
	var body struct {
		Name string `json:"name"`
	}
	if err := decodeStrict(c, &body); err != nil || body.Name == "" {
		c.String(http.StatusBadRequest, "a JSON body {\"name\": <leader>} is required")
		return
	}
	if !h.a.ConfirmLeader(body.Name) {
		c.String(http.StatusConflict, "%s is not the leader this node knows", body.Name)
		return
	}
	c.String(http.StatusOK, "Accepted")
}

// switchoverBody is Patroni's request: leader, candidate (alias member), scheduled_at.
type switchoverBody struct {
	Leader        string `json:"leader"`
	Candidate     string `json:"candidate"`
	Member        string `json:"member"`
	ScheduledAt   string `json:"scheduled_at"`
	AllowDataLoss bool   `json:"allow_data_loss"`
}

func (h *adminHandlers) switchover(failover bool) gin.HandlerFunc {
	return func(c *gin.Context) {
		var b switchoverBody
		if err := decodeStrict(c, &b); err != nil {
			c.String(http.StatusBadRequest, err.Error())
			return
		}
		req, bad := checkSwitchover(failover, true, b.Leader, firstNonEmpty(b.Candidate, b.Member), b.ScheduledAt, time.Now())
		if bad != nil {
			c.String(bad.code, bad.patroni)
			return
		}
		req.AllowDataLoss = b.AllowDataLoss
		id, err := h.a.RequestSwitchover(c.Request.Context(), req)
		if err != nil {
			c.String(switchoverCode(err), err.Error())
			return
		}
		c.Header(client.HeaderJobID, id)
		if !req.ScheduledAt.IsZero() {
			c.String(http.StatusAccepted, "Switchover scheduled (job %s)", id)
			return
		}
		h.waitJob(c, id)
	}
}

// switchoverRefusal is a switchover or failover request refused before it reaches the node:
// the status code, the refused field, and the reason in Patroni's words (its routes) and in
// ours (/api/v1).
type switchoverRefusal struct {
	code    int
	field   string
	patroni string
	detail  string
}

// checkSwitchover is the one validation of a switchover (or failover) request, for
// Patroni's routes and /api/v1 alike: a failover names its candidate and is never scheduled,
// the candidate is not the leader, a schedule has a zone and lies in the future. patroni adds
// Patroni's rule that a switchover names its leader (/api/v1 takes the current one). The
// node checks the request against Consul afterwards (RequestSwitchover).
func checkSwitchover(failover, patroni bool, leader, candidate, scheduledAt string, now time.Time) (daemon.SwitchoverRequest, *switchoverRefusal) {
	req := daemon.SwitchoverRequest{From: leader, To: candidate}
	bad := func(code int, field, patroni, detail string) (daemon.SwitchoverRequest, *switchoverRefusal) {
		return req, &switchoverRefusal{code: code, field: field, patroni: patroni, detail: detail}
	}
	switch {
	case failover && candidate == "":
		return bad(http.StatusBadRequest, "candidate", "failover could be performed only to a specific candidate", "a failover needs a candidate")
	case patroni && !failover && leader == "":
		return bad(http.StatusBadRequest, "leader", "Switchover could be performed only from a specific leader", "a switchover needs a leader")
	case failover && scheduledAt != "":
		return bad(http.StatusBadRequest, "scheduled_at", "Failover can't be scheduled", "a failover can't be scheduled")
	case leader != "" && leader == candidate:
		return bad(http.StatusBadRequest, "candidate", "Switchover target and source are the same", "the candidate is the leader")
	}
	if scheduledAt != "" {
		at, code, msg := parseSchedule(scheduledAt, "switchover", now)
		if code != 0 {
			return bad(code, "scheduled_at", msg, msg)
		}
		req.ScheduledAt = at
	}
	return req, nil
}

func switchoverCode(err error) int {
	switch {
	case errors.Is(err, daemon.ErrSwitchoverPending):
		return http.StatusConflict
	case errors.Is(err, daemon.ErrNotLeader), errors.Is(err, daemon.ErrBadCandidate), errors.Is(err, daemon.ErrNoLeader):
		return http.StatusPreconditionFailed
	case errors.Is(err, consul.ErrUnavailable):
		return http.StatusServiceUnavailable
	}
	return http.StatusInternalServerError
}

// waitJob waits for the job until it ends or switchoverWait passes, and answers as Patroni.
func (h *adminHandlers) waitJob(c *gin.Context, id string) {
	j, err := h.waitFinished(c.Request.Context(), id, switchoverWait)
	switch {
	case err == nil && j.State == client.JobSucceeded:
		c.String(http.StatusOK, "Successfully switched over to %q (job %s)", j.To, id)
	case err == nil && j.State == client.JobFailed:
		c.String(http.StatusPreconditionFailed, "Switchover failed: %s (job %s)", j.Error, id)
	default:
		c.String(http.StatusServiceUnavailable, "Switchover still in progress after %s; follow GET /api/v1/jobs/%s", switchoverWait, id)
	}
}

// cancel answers Patroni's DELETE /switchover: 200 deleted, 404 none, 409 changed meanwhile.
func (h *adminHandlers) cancel(c *gin.Context) {
	err := h.a.CancelSwitchover(c.Request.Context())
	switch {
	case errors.Is(err, daemon.ErrNoSwitchover):
		c.String(http.StatusNotFound, "No switchover is scheduled")
	case errors.Is(err, consul.ErrConflict):
		c.String(http.StatusConflict, "The switchover changed meanwhile; try again")
	case err != nil:
		c.String(http.StatusServiceUnavailable, err.Error())
	default:
		c.String(http.StatusOK, "Scheduled switchover deleted")
	}
}

func (h *adminHandlers) job(c *gin.Context) {
	id := strings.TrimSpace(c.Param("id"))
	wait, timeout, ok := waitParams(c)
	if !ok {
		return
	}
	cj, err := h.a.Job(c.Request.Context(), id)
	if errors.Is(err, consul.ErrNotFound) {
		c.JSON(http.StatusNotFound, client.ErrorBody{Error: "not found", Detail: "no job " + id})
		return
	}
	j := job(cj)
	if err == nil && wait {
		j, err = h.waitFinished(c.Request.Context(), id, timeout)
	}
	if err != nil {
		c.JSON(http.StatusServiceUnavailable, client.ErrorBody{Error: "unavailable", Detail: err.Error()})
		return
	}
	c.JSON(http.StatusOK, j)
}

// jobs answers GET /api/v1/jobs, newest first.
func jobs(jl JobLister) gin.HandlerFunc {
	return func(c *gin.Context) {
		js, err := jl.Jobs(c.Request.Context())
		if err != nil {
			c.JSON(http.StatusServiceUnavailable, client.ErrorBody{Error: "unavailable", Detail: err.Error()})
			return
		}
		var out []client.Job // null when there are none, as before
		if js != nil {
			out = make([]client.Job, len(js))
		}
		for i, j := range js {
			out[i] = job(j)
		}
		c.JSON(http.StatusOK, out)
	}
}

// Bounds of ?wait=true: the default and the longest wait (below the server's write timeout).
const (
	defaultJobWait = 30 * time.Second
	maxJobWait     = 55 * time.Second
)

// waitParams reads ?wait=true and ?timeout=<duration>; a bad value is answered with 400.
func waitParams(c *gin.Context) (bool, time.Duration, bool) {
	wait := false
	if v := c.Query("wait"); v != "" {
		b, err := strconv.ParseBool(v)
		if err != nil {
			c.JSON(http.StatusBadRequest, client.ErrorBody{Error: "invalid query", Detail: "wait must be true or false", Field: "wait"})
			return false, 0, false
		}
		wait = b
	}
	timeout := defaultJobWait
	if v := c.Query("timeout"); v != "" {
		d, err := time.ParseDuration(v)
		if err != nil || d <= 0 || d > maxJobWait {
			c.JSON(http.StatusBadRequest, client.ErrorBody{Error: "invalid query",
				Detail: fmt.Sprintf("timeout must be a duration like 20s, at most %s", maxJobWait), Field: "timeout"})
			return false, 0, false
		}
		timeout = d
	}
	return wait, timeout, true
}

// waitFinished polls the job until it succeeded or failed, or timeout passed (then the job
// as it is, still pending or running; an error only when it could never be read).
func (h *adminHandlers) waitFinished(ctx context.Context, id string, timeout time.Duration) (client.Job, error) {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	var last client.Job
	var lastErr error
	for i := 0; i < 100_000; i++ {
		j, err := h.a.Job(ctx, id)
		if err == nil {
			last = job(j)
			if last.Ended() {
				return last, nil
			}
		} else if ctx.Err() == nil {
			lastErr = err // a read that failed is tried again
		}
		select {
		case <-ctx.Done():
			if last.ID == "" && lastErr != nil {
				return last, lastErr
			}
			return last, nil
		case <-time.After(250 * time.Millisecond):
		}
	}
	return last, nil
}

// switchoverV1 starts a switchover (or failover) as a job: 202 with its id, or with
// ?wait=true the job once it ended (200) or as it is after the timeout (202).
func (h *adminHandlers) switchoverV1(failover bool) gin.HandlerFunc {
	return func(c *gin.Context) {
		wait, timeout, ok := waitParams(c)
		if !ok {
			return
		}
		var b client.SwitchoverRequest
		if !decodeV1(c, &b) {
			return
		}
		req, bad := checkSwitchover(failover, false, b.Leader, b.Candidate, b.ScheduledAt, time.Now())
		if bad != nil {
			c.JSON(bad.code, client.ErrorBody{Error: "invalid value", Detail: bad.detail, Field: bad.field})
			return
		}
		req.AllowDataLoss = b.AllowDataLoss
		id, err := h.a.RequestSwitchover(c.Request.Context(), req)
		if err != nil {
			c.JSON(switchoverCode(err), client.ErrorBody{Error: "refused", Detail: err.Error()})
			return
		}
		if !wait || !req.ScheduledAt.IsZero() {
			accepted(c, id)
			return
		}
		j, err := h.waitFinished(c.Request.Context(), id, timeout)
		c.Header(client.HeaderJobID, id)
		switch {
		case err != nil:
			accepted(c, id)
		case j.Ended():
			c.JSON(http.StatusOK, j)
		default:
			c.JSON(http.StatusAccepted, j)
		}
	}
}

// job is the wire form of a tracked job.
func job(j consul.Job) client.Job {
	out := client.Job{ID: j.ID, Kind: j.Kind, From: j.From, To: j.To, ScheduledAt: j.ScheduledAt, State: j.State,
		Error: j.Error, CreatedAt: j.CreatedAt, FinishedAt: j.FinishedAt, TraceParent: j.TraceParent, Node: j.Node}
	if b := j.Backup; b != nil {
		out.Backup = &client.JobBackup{Tool: b.Tool, Type: b.Type, Schedule: b.Schedule, Label: b.Label,
			StartLSN: b.StartLSN, StopLSN: b.StopLSN, WALStart: b.WALStart, WALStop: b.WALStop, Size: b.Size,
			RepoSize: b.RepoSize, StartedAt: b.StartedAt, StoppedAt: b.StoppedAt, Progress: b.Progress,
			Output: b.Output, Attempts: b.Attempts, Timeline: b.Timeline, Member: b.Member, MemberReason: b.MemberReason}
		if t := b.Target; t != nil {
			out.Backup.Target = &client.RestoreTarget{Type: t.Type, Value: t.Value, Exclusive: t.Exclusive}
		}
	}
	if j.Phases != nil {
		out.Phases = make([]client.JobPhase, len(j.Phases))
		for i, p := range j.Phases {
			out.Phases[i] = client.JobPhase{Name: p.Name, At: p.At, Node: p.Node}
		}
	}
	return out
}

// firstNonEmpty is the first of v that is not empty.
func firstNonEmpty(v ...string) string {
	for _, s := range v {
		if s != "" {
			return s
		}
	}
	return ""
}
