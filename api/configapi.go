package api

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"strconv"
	"strings"

	"github.com/gin-gonic/gin"

	"github.com/ramd-project/ramd/api/client"
	"github.com/ramd-project/ramd/consul"
	"github.com/ramd-project/ramd/daemon"
)

// ConfigAdmin is what the config and history endpoints need (satisfied by *daemon.Node).
type ConfigAdmin interface {
	DynamicConfig(ctx context.Context) (map[string]any, uint64, error)
	// PatchConfig and ReplaceConfig write by CAS; ifMatch, when set, is the version the
	// caller read (the ETag of GET /config).
	PatchConfig(ctx context.Context, patch map[string]any, ifMatch *uint64) (map[string]any, error)
	ReplaceConfig(ctx context.Context, cfg map[string]any, ifMatch *uint64) (map[string]any, error)
	History(ctx context.Context) ([]consul.HistoryEntry, error)
}

func registerConfig(r *gin.Engine, a ConfigAdmin) {
	h := &configHandlers{a: a}
	for _, base := range []string{"", "/api/v1"} {
		r.GET(base+"/config", h.get)
		r.PATCH(base+"/config", h.write(false))
		r.PUT(base+"/config", h.write(true))
		r.GET(base+"/history", h.history)
	}
	r.POST("/api/v1/config", h.write(false)) // the seed's spelling of PATCH
	r.POST("/api/v1/pause", h.pause(true))
	r.POST("/api/v1/resume", h.pause(false))
}

// pause sets (or removes) the dynamic config's pause flag: automatic failover, fencing and
// restarts stop cluster-wide until resume.
func (h *configHandlers) pause(on bool) gin.HandlerFunc {
	return func(c *gin.Context) {
		var v any // null deletes the key
		if on {
			v = true
		}
		_, err := h.a.PatchConfig(c.Request.Context(), map[string]any{"pause": v}, nil)
		writeResult(c, client.Paused{Paused: on}, err)
	}
}

type configHandlers struct{ a ConfigAdmin }

// get answers the dynamic configuration with its Consul index as ETag ({} when none was
// written yet; Patroni answers 502 there, which only makes a fresh cluster look broken).
func (h *configHandlers) get(c *gin.Context) {
	cfg, idx, err := h.a.DynamicConfig(c.Request.Context())
	if err != nil && !errors.Is(err, daemon.ErrNoConfig) {
		c.JSON(http.StatusBadGateway, client.ErrorBody{Error: "unavailable", Detail: err.Error()})
		return
	}
	c.Header("ETag", client.Version(idx))
	c.JSON(http.StatusOK, cfg)
}

// write applies a PATCH (JSON merge patch; null deletes a key) or a PUT (whole document).
// If-Match with the ETag of a GET makes it a CAS against that version.
func (h *configHandlers) write(replace bool) gin.HandlerFunc {
	return func(c *gin.Context) {
		var body map[string]any
		dec := json.NewDecoder(io.LimitReader(c.Request.Body, maxBody))
		if err := dec.Decode(&body); err != nil || body == nil {
			b := client.ErrorBody{Error: "invalid JSON", Detail: "the body must be a JSON object"}
			if err != nil {
				b.Detail = err.Error()
			}
			c.JSON(http.StatusBadRequest, b)
			return
		}
		var index *uint64
		if m := strings.Trim(c.GetHeader("If-Match"), `" `); m != "" {
			v, err := strconv.ParseUint(m, 10, 64)
			if err != nil {
				c.JSON(http.StatusBadRequest, client.ErrorBody{Error: "invalid If-Match", Detail: "If-Match must be the ETag of GET /config", Field: "If-Match"})
				return
			}
			index = &v
		}
		var out map[string]any
		var err error
		ctx, warnings := daemon.CollectWarnings(c.Request.Context())
		if replace {
			out, err = h.a.ReplaceConfig(ctx, body, index)
		} else {
			out, err = h.a.PatchConfig(ctx, body, index)
		}
		// Accepted values that are legal but risky come back as Warning headers (299, as
		// RFC 9111 spells a persistent warning), so the body stays Patroni's document.
		for _, w := range warnings() {
			c.Writer.Header().Add("Warning", `299 ramd "`+strings.ReplaceAll(w, `"`, `'`)+`"`)
		}
		writeResult(c, out, err)
	}
}

// history answers Patroni's [[timeline, lsn, reason, timestamp, new_leader], ...].
func (h *configHandlers) history(c *gin.Context) {
	hist, err := h.a.History(c.Request.Context())
	if err != nil {
		c.JSON(http.StatusServiceUnavailable, client.ErrorBody{Error: "unavailable", Detail: err.Error()})
		return
	}
	var out []client.HistoryEntry // null when there is no history, as before
	if hist != nil {
		out = make([]client.HistoryEntry, len(hist))
	}
	for i, e := range hist {
		out[i] = client.HistoryEntry{Timeline: e.Timeline, LSN: e.LSN, Reason: e.Reason, Timestamp: e.Timestamp, NewLeader: e.NewLeader}
	}
	c.JSON(http.StatusOK, out)
}
