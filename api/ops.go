package api

import (
	"bytes"
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
	"github.com/ramd-project/ramd/daemon"
)

// OpsAdmin is what the restart, reload and reinitialize endpoints need (satisfied by
// *daemon.Node).
type OpsAdmin interface {
	Restart(ctx context.Context, r daemon.RestartRequest) (string, error)
	ScheduleRestart(ctx context.Context, r daemon.RestartRequest) (string, error)
	CancelScheduledRestart(ctx context.Context) error
	Reinitialize(ctx context.Context, force, fromLeader bool) (string, error)
	Reload()
	RollingRestart(ctx context.Context, r daemon.RollingRestartRequest) (string, error)
}

// restartWait bounds how long POST /restart waits for PostgreSQL to run again before it
// answers 503 "postgres is still starting" (the restart goes on; its job tells the end).
const restartWait = 50 * time.Second

func registerOps(r *gin.Engine, a OpsAdmin) {
	h := &opsHandlers{a: a}
	r.POST("/restart", h.restart)
	r.DELETE("/restart", h.cancelRestart)
	r.POST("/reload", h.reload)
	r.POST("/reinitialize", h.reinitialize)
	r.POST("/api/v1/restart", h.rollingRestart)
	r.POST("/api/v1/reinitialize", h.reinitializeV1)
}

type opsHandlers struct{ a OpsAdmin }

// errBodyTooLarge: a request body over maxBody.
var errBodyTooLarge = fmt.Errorf("body larger than %d bytes", maxBody)

// readBody reads a request body of at most maxBody bytes; nil when it is empty or blank.
func readBody(c *gin.Context) ([]byte, error) {
	b, err := io.ReadAll(io.LimitReader(c.Request.Body, maxBody+1))
	switch {
	case err != nil:
		return nil, fmt.Errorf("read body: %w", err)
	case len(b) > maxBody:
		return nil, errBodyTooLarge
	case strings.TrimSpace(string(b)) == "":
		return nil, nil
	}
	return b, nil
}

// readOptionalJSON decodes an optional JSON object body (empty means {}).
func readOptionalJSON(c *gin.Context) (map[string]any, error) {
	b, err := readBody(c)
	if err != nil {
		return nil, err
	}
	if b == nil {
		return map[string]any{}, nil
	}
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil || m == nil {
		return nil, errors.New("the body must be a JSON object")
	}
	return m, nil
}

// parseRestart checks Patroni's restart filters. It returns the status code and message of
// a refusal (0 when accepted), with Patroni's wording.
func parseRestart(body map[string]any, now time.Time) (daemon.RestartRequest, int, string) {
	var r daemon.RestartRequest
	for k, v := range body {
		switch k {
		case "schedule":
			s, _ := v.(string)
			at, code, msg := parseSchedule(s, "restart", now)
			if code != 0 {
				return r, code, msg
			}
			r.Schedule = at
		case "role":
			s, _ := v.(string)
			switch s {
			case "master", "primary":
				r.Role = string(daemon.RolePrimary)
			case "replica":
				r.Role = s
			default:
				return r, http.StatusBadRequest, "PostgreSQL role should be either primary or replica"
			}
		case "postgres_version":
			s := fmt.Sprint(v)
			ver, err := daemon.ParsePostgresVersion(s)
			if err != nil {
				return r, http.StatusBadRequest, err.Error()
			}
			r.PostgresVersion = ver
		case "timeout":
			d, ok := parseSeconds(v)
			if !ok || d <= 0 {
				return r, http.StatusBadRequest, "Timeout should be a positive number of seconds"
			}
			r.Timeout = d
		case "restart_pending":
			b, ok := v.(bool)
			if !ok {
				return r, http.StatusBadRequest, "restart_pending should be true or false"
			}
			r.RestartPending = b
		default:
			return r, http.StatusBadRequest, "Unknown filter for the scheduled restart: " + k
		}
	}
	return r, 0, ""
}

// parseSchedule parses an ISO 8601 time with a zone that lies in the future.
func parseSchedule(s, action string, now time.Time) (time.Time, int, string) {
	at, err := time.Parse(time.RFC3339, strings.TrimSpace(s))
	if err != nil {
		if _, errNoZone := time.Parse("2006-01-02T15:04:05", strings.TrimSpace(s)); errNoZone == nil {
			return at, http.StatusBadRequest, "Timezone information is mandatory for the scheduled " + action
		}
		return at, http.StatusUnprocessableEntity, "Unable to parse scheduled timestamp. It should be in an unambiguous format, e.g. ISO 8601"
	}
	if at.Before(now) {
		return at, http.StatusUnprocessableEntity, "Cannot schedule " + action + " in the past"
	}
	return at, 0, ""
}

// parseSeconds reads Patroni's timeout: a number of seconds or a string like "30s", "2min".
func parseSeconds(v any) (time.Duration, bool) {
	switch x := v.(type) {
	case float64:
		return time.Duration(x * float64(time.Second)), true
	case string:
		if f, err := strconv.ParseFloat(x, 64); err == nil {
			return time.Duration(f * float64(time.Second)), true
		}
		d, err := time.ParseDuration(strings.Replace(x, "min", "m", 1))
		return d, err == nil
	}
	return 0, false
}

// restart answers Patroni's POST /restart: now (200 once PostgreSQL runs again, 503 when
// the filters do not match or it failed) or at a schedule (202, 409 when one exists).
func (h *opsHandlers) restart(c *gin.Context) {
	body, err := readOptionalJSON(c)
	if err != nil {
		c.String(http.StatusBadRequest, err.Error())
		return
	}
	r, code, msg := parseRestart(body, time.Now())
	if code != 0 {
		c.String(code, msg)
		return
	}
	if !r.Schedule.IsZero() {
		id, err := h.a.ScheduleRestart(c.Request.Context(), r)
		switch {
		case errors.Is(err, daemon.ErrPausedSchedule):
			c.String(http.StatusInternalServerError, "Can't schedule restart in the paused state") // Patroni's code
		case errors.Is(err, daemon.ErrRestartScheduled):
			c.String(http.StatusConflict, "Another restart is already scheduled")
		case err != nil:
			c.String(http.StatusServiceUnavailable, err.Error())
		default:
			c.Header(client.HeaderJobID, id)
			c.String(http.StatusAccepted, "Restart scheduled")
		}
		return
	}
	ctx, cancel := context.WithTimeout(c.Request.Context(), restartWait)
	defer cancel()
	id, err := h.a.Restart(ctx, r)
	if id != "" {
		c.Header(client.HeaderJobID, id)
	}
	switch {
	case err == nil:
		c.String(http.StatusOK, "restarted successfully")
	case errors.Is(err, daemon.ErrConditions):
		c.String(http.StatusServiceUnavailable, "restart conditions are not satisfied")
	case errors.Is(err, daemon.ErrBusy):
		c.String(http.StatusServiceUnavailable, strings.TrimPrefix(err.Error(), daemon.ErrBusy.Error()+": "))
	case errors.Is(err, daemon.ErrStillRunning):
		c.String(http.StatusServiceUnavailable, "postgres is still starting")
	case errors.Is(err, daemon.ErrConsulDown), errors.Is(err, daemon.ErrShuttingDown), errors.Is(err, daemon.ErrNotReady):
		c.String(http.StatusServiceUnavailable, opMessage(err))
	default:
		c.String(http.StatusServiceUnavailable, "restart failed: %v", err)
	}
}

// cancelRestart answers Patroni's DELETE /restart.
func (h *opsHandlers) cancelRestart(c *gin.Context) {
	if err := h.a.CancelScheduledRestart(c.Request.Context()); err != nil {
		c.String(http.StatusNotFound, "no restarts are scheduled")
		return
	}
	c.String(http.StatusOK, "scheduled restart deleted")
}

// reload answers Patroni's POST /reload: the loop sends PostgreSQL a SIGHUP.
func (h *opsHandlers) reload(c *gin.Context) {
	h.a.Reload()
	c.String(http.StatusAccepted, "reload scheduled")
}

// reinitialize answers Patroni's POST /reinitialize: 200 "reinitialize started" or 503 with
// the reason.
func (h *opsHandlers) reinitialize(c *gin.Context) {
	body, err := readOptionalJSON(c)
	if err != nil {
		c.String(http.StatusBadRequest, err.Error())
		return
	}
	var b client.ReinitializeRequest
	for k, v := range body {
		x, ok := v.(bool)
		switch {
		case k != "force" && k != "from_leader":
			c.String(http.StatusBadRequest, "unknown field %q", k)
			return
		case !ok:
			c.String(http.StatusBadRequest, "%s should be true or false", k)
			return
		case k == "force":
			b.Force = x
		default:
			b.FromLeader = x
		}
	}
	id, err := h.a.Reinitialize(c.Request.Context(), b.Force, b.FromLeader)
	if err != nil {
		c.String(http.StatusServiceUnavailable, reinitMessage(err))
		return
	}
	c.Header(client.HeaderJobID, id)
	c.String(http.StatusOK, "reinitialize started")
}

// reinitMessage is Patroni's wording of a refused reinitialize.
func reinitMessage(err error) string {
	switch {
	case errors.Is(err, daemon.ErrIsLeader):
		return "I am the leader, can not reinitialize"
	case errors.Is(err, daemon.ErrNoLeaderToClone):
		return "Cluster has no leader, can not reinitialize"
	case errors.Is(err, daemon.ErrBusy):
		return strings.TrimPrefix(err.Error(), daemon.ErrBusy.Error()+": ")
	}
	return opMessage(err)
}

// opMessage is an operation's error without the package prefix.
func opMessage(err error) string {
	return strings.TrimPrefix(err.Error(), "daemon: ")
}

// accepted answers 202 with the job that carries the operation out.
func accepted(c *gin.Context, id string) {
	c.Header("Location", client.JobPath(id))
	c.Header(client.HeaderJobID, id)
	c.JSON(http.StatusAccepted, client.JobAccepted{JobID: id, JobURL: client.JobPath(id)})
}

// rollingRestart starts a rolling restart of the cluster as a job.
func (h *opsHandlers) rollingRestart(c *gin.Context) {
	var r client.RollingRestartRequest
	if !decodeV1(c, &r) {
		return
	}
	id, err := h.a.RollingRestart(c.Request.Context(), daemon.RollingRestartRequest{RestartPending: r.RestartPending, InPlace: r.InPlace})
	switch {
	case errors.Is(err, daemon.ErrRollingInProgress), errors.Is(err, daemon.ErrPaused):
		c.JSON(http.StatusConflict, client.ErrorBody{Error: "conflict", Detail: err.Error()})
	case errors.Is(err, daemon.ErrNoLeader), errors.Is(err, daemon.ErrNotReady):
		c.JSON(http.StatusServiceUnavailable, client.ErrorBody{Error: "unavailable", Detail: err.Error()})
	case err != nil:
		c.JSON(http.StatusServiceUnavailable, client.ErrorBody{Error: "unavailable", Detail: err.Error()})
	default:
		accepted(c, id)
	}
}

// reinitializeV1 reinitializes this node as a job.
func (h *opsHandlers) reinitializeV1(c *gin.Context) {
	var b client.ReinitializeRequest
	if !decodeV1(c, &b) {
		return
	}
	id, err := h.a.Reinitialize(c.Request.Context(), b.Force, b.FromLeader)
	switch {
	case errors.Is(err, daemon.ErrBusy):
		c.JSON(http.StatusConflict, client.ErrorBody{Error: "conflict", Detail: reinitMessage(err)})
	case errors.Is(err, daemon.ErrIsLeader), errors.Is(err, daemon.ErrNoLeaderToClone):
		c.JSON(http.StatusConflict, client.ErrorBody{Error: "refused", Detail: reinitMessage(err)})
	case err != nil:
		c.JSON(http.StatusServiceUnavailable, client.ErrorBody{Error: "unavailable", Detail: err.Error()})
	default:
		accepted(c, id)
	}
}

// decodeV1 decodes a strict JSON body of an /api/v1 endpoint (an empty body is {}); on
// failure it answers 400 {error, detail, field} and returns false.
func decodeV1(c *gin.Context, v any) bool {
	b, err := readBody(c)
	switch {
	case errors.Is(err, errBodyTooLarge):
		c.JSON(http.StatusRequestEntityTooLarge, client.ErrorBody{Error: "body too large", Detail: err.Error()})
		return false
	case err != nil:
		c.JSON(http.StatusBadRequest, client.ErrorBody{Error: "invalid body", Detail: err.Error()})
		return false
	case b == nil:
		return true
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		c.JSON(http.StatusBadRequest, badJSON(err))
		return false
	}
	return true
}
