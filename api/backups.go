package api

import (
	"context"
	"errors"
	"net/http"
	"slices"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/ramd-project/ramd/api/client"
	"github.com/ramd-project/ramd/consul"
	"github.com/ramd-project/ramd/daemon"
	"github.com/ramd-project/ramd/daemon/backup"
	"github.com/ramd-project/ramd/daemon/dynconf"
)

// BackupAdmin serves the backup routes (satisfied by *daemon.Node).
type BackupAdmin interface {
	StartBackup(ctx context.Context, r daemon.BackupRequest) (string, error)
	StartBackupExpire(ctx context.Context) (string, error)
	StartBackupCheck(ctx context.Context) (string, error)
	StartRestore(ctx context.Context, r daemon.RestoreRequest) (string, error)
	BackupCatalog(ctx context.Context) (backup.Catalog, string, error)
	BackupSchedules(ctx context.Context) ([]daemon.ScheduleView, error)
	ChangeSchedule(ctx context.Context, ch daemon.ScheduleChange) ([]daemon.ScheduleView, error)
	RunScheduleNow(ctx context.Context, typ string) (string, error)
	Jobs(ctx context.Context) ([]consul.Job, error)
}

// registerBackups serves /api/v1/backups, /api/v1/backup-schedules and the spellings of the
// product's documents under /api/v1/backup.
func registerBackups(r *gin.Engine, a BackupAdmin) {
	h := &backupHandlers{a: a}
	r.POST("/api/v1/backups", h.start)
	r.POST("/api/v1/backup/start", h.start)
	r.GET("/api/v1/backups", h.list)
	r.GET("/api/v1/backup/list", h.list)
	r.GET("/api/v1/backups/:id", h.show)
	r.POST("/api/v1/backups/expire", h.task(a.StartBackupExpire))
	r.POST("/api/v1/backups/check", h.task(a.StartBackupCheck))
	r.GET("/api/v1/backup/jobs", h.jobs)
	r.POST("/api/v1/restore", h.restore)
	r.POST("/api/v1/backup/restore", h.restore)
	r.GET("/api/v1/backup-schedules", h.schedules)
	r.POST("/api/v1/backup/schedule", h.changeSchedule)
	r.POST("/api/v1/backup-schedules/:type/run", h.runNow)
}

type backupHandlers struct{ a BackupAdmin }

// backupError answers a refusal: no tool configured is 409, a refused field 400, anything
// else (Consul, the tool) 503.
func backupError(c *gin.Context, err error) {
	var fe *dynconf.FieldError
	switch {
	case errors.As(err, &fe) && fe.Field == "backup.tool":
		c.JSON(http.StatusConflict, client.ErrorBody{Error: "no backup tool", Detail: fe.Reason, Field: fe.Field})
	case errors.As(err, &fe) && (fe.Field == "queue" || fe.Field == "pause"):
		c.JSON(http.StatusConflict, client.ErrorBody{Error: "busy", Detail: fe.Reason, Field: fe.Field})
	case errors.As(err, &fe):
		c.JSON(http.StatusBadRequest, client.ErrorBody{Error: "invalid request", Detail: fe.Reason, Field: fe.Field})
	default:
		c.JSON(http.StatusServiceUnavailable, client.ErrorBody{Error: "unavailable", Detail: err.Error()})
	}
}

func (h *backupHandlers) start(c *gin.Context) {
	var body client.BackupRequest
	if c.Request.ContentLength != 0 {
		if err := decodeStrict(c, &body); err != nil {
			c.JSON(http.StatusBadRequest, client.ErrorBody{Error: "invalid JSON", Detail: err.Error()})
			return
		}
	}
	id, err := h.a.StartBackup(c.Request.Context(), daemon.BackupRequest{Type: body.Type})
	if err != nil {
		backupError(c, err)
		return
	}
	accepted(c, id)
}

// restore queues an in-place restore of the running cluster. The body must confirm the
// cluster's name; a refusal changes nothing.
func (h *backupHandlers) restore(c *gin.Context) {
	var body client.RestoreRequest
	if err := decodeStrict(c, &body); err != nil {
		c.JSON(http.StatusBadRequest, client.ErrorBody{Error: "invalid JSON", Detail: err.Error()})
		return
	}
	r := daemon.RestoreRequest{BackupID: body.BackupID, Confirm: body.Confirm}
	if t := body.Target; t != nil {
		r.Target = dynconf.RecoveryTarget{Type: t.Type, Value: t.Value, Exclusive: t.Exclusive}
	}
	id, err := h.a.StartRestore(c.Request.Context(), r)
	if err != nil {
		backupError(c, err)
		return
	}
	accepted(c, id)
}

func (h *backupHandlers) task(start func(context.Context) (string, error)) gin.HandlerFunc {
	return func(c *gin.Context) {
		id, err := start(c.Request.Context())
		if err != nil {
			backupError(c, err)
			return
		}
		accepted(c, id)
	}
}

// backupList is the wire form of a catalog, with the age of the newest good backup.
func backupList(cat backup.Catalog, tool string, now time.Time) client.BackupList {
	out := client.BackupList{Tool: tool, Backups: []client.BackupInfo{}, WALMin: cat.WALMin, WALMax: cat.WALMax}
	for _, b := range cat.Backups {
		out.Backups = append(out.Backups, backupInfo(b))
		if b.Status != backup.StatusDone || b.Stop.IsZero() {
			continue
		}
		if out.FirstRecoverability.IsZero() || b.Stop.Before(out.FirstRecoverability) {
			out.FirstRecoverability = b.Stop
		}
		if b.Stop.After(out.LastSuccess) {
			out.LastSuccess = b.Stop
		}
	}
	if !out.LastSuccess.IsZero() {
		out.AgeSeconds = max(now.Sub(out.LastSuccess).Seconds(), 0)
	}
	return out
}

func backupInfo(b backup.Info) client.BackupInfo {
	return client.BackupInfo{ID: b.ID, Type: b.Type, Status: b.Status, Start: b.Start, Stop: b.Stop,
		StartLSN: b.StartLSN, StopLSN: b.StopLSN, WALStart: b.WALStart, WALStop: b.WALStop, Timeline: b.Timeline,
		Size: b.Size, RepoSize: b.RepoSize, Prior: b.Prior, JobID: b.JobID, Retention: b.Retention}
}

func (h *backupHandlers) list(c *gin.Context) {
	cat, tool, err := h.a.BackupCatalog(c.Request.Context())
	if err != nil {
		backupError(c, err)
		return
	}
	c.JSON(http.StatusOK, backupList(cat, tool, time.Now()))
}

func (h *backupHandlers) show(c *gin.Context) {
	cat, _, err := h.a.BackupCatalog(c.Request.Context())
	if err != nil {
		backupError(c, err)
		return
	}
	id := c.Param("id")
	i := slices.IndexFunc(cat.Backups, func(b backup.Info) bool { return b.ID == id || (b.JobID != "" && b.JobID == id) })
	if i < 0 {
		c.JSON(http.StatusNotFound, client.ErrorBody{Error: "not found", Detail: "no backup " + id + " in the repository", Field: "id"})
		return
	}
	c.JSON(http.StatusOK, backupInfo(cat.Backups[i]))
}

// backupKinds are the job kinds GET /api/v1/backup/jobs lists.
var backupKinds = []string{consul.JobBackupKind, consul.JobExpireKind, consul.JobCheckKind, consul.JobRestoreKind}

func (h *backupHandlers) jobs(c *gin.Context) {
	js, err := h.a.Jobs(c.Request.Context())
	if err != nil {
		c.JSON(http.StatusServiceUnavailable, client.ErrorBody{Error: "unavailable", Detail: err.Error()})
		return
	}
	out := []client.Job{}
	for _, j := range js {
		if slices.Contains(backupKinds, j.Kind) {
			out = append(out, job(j))
		}
	}
	c.JSON(http.StatusOK, out)
}

func scheduleList(vs []daemon.ScheduleView) []client.BackupSchedule {
	out := make([]client.BackupSchedule, 0, len(vs))
	for _, v := range vs {
		out = append(out, client.BackupSchedule{Type: v.Type, Cron: v.Cron, Suspended: v.Suspended, LastTick: v.LastTick, NextTick: v.NextTick})
	}
	return out
}

func (h *backupHandlers) schedules(c *gin.Context) {
	vs, err := h.a.BackupSchedules(c.Request.Context())
	if err != nil {
		backupError(c, err)
		return
	}
	c.JSON(http.StatusOK, scheduleList(vs))
}

func (h *backupHandlers) changeSchedule(c *gin.Context) {
	var body client.ScheduleChange
	if err := decodeStrict(c, &body); err != nil {
		c.JSON(http.StatusBadRequest, client.ErrorBody{Error: "invalid JSON", Detail: err.Error()})
		return
	}
	if body.Type == "" {
		c.JSON(http.StatusBadRequest, client.ErrorBody{Error: "invalid request", Detail: "type is required: full, diff or incr", Field: "type"})
		return
	}
	vs, err := h.a.ChangeSchedule(c.Request.Context(), daemon.ScheduleChange{Type: body.Type, Cron: body.Cron, Suspend: body.Suspend, Remove: body.Remove})
	if err != nil {
		if fes := dynconf.Fields(err); len(fes) > 0 && fes[0].Field != "backup.tool" {
			c.JSON(http.StatusBadRequest, client.ErrorBody{Error: "invalid request", Detail: fes[0].Reason, Field: fes[0].Field})
			return
		}
		backupError(c, err)
		return
	}
	c.JSON(http.StatusOK, scheduleList(vs))
}

func (h *backupHandlers) runNow(c *gin.Context) {
	id, err := h.a.RunScheduleNow(c.Request.Context(), c.Param("type"))
	if err != nil {
		backupError(c, err)
		return
	}
	accepted(c, id)
}
