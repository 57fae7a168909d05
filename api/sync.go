package api

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"strings"

	"github.com/gin-gonic/gin"

	"github.com/ramd-project/ramd/api/client"
	"github.com/ramd-project/ramd/consul"
	"github.com/ramd-project/ramd/daemon"
	"github.com/ramd-project/ramd/daemon/dynconf"
)

// SyncAdmin is what /api/v1/sync-standbys needs (satisfied by *daemon.Node).
type SyncAdmin interface {
	SyncStandbys(ctx context.Context) (daemon.SyncView, error)
	SetSync(ctx context.Context, s daemon.SyncSettings) (daemon.SyncView, error)
}

// refusalBody describes refused values: the first in field, value and detail, and all of them
// in errors.
func refusalBody(fes []*daemon.FieldError) client.ErrorBody {
	b := client.ErrorBody{Error: "invalid value", Field: fes[0].Field, Value: fes[0].Value}
	details := make([]string, len(fes))
	for i, fe := range fes {
		b.Errors = append(b.Errors, client.FieldRefusal{Field: fe.Field, Value: fe.Value, Reason: fe.Reason})
		details[i] = fe.Error()
	}
	b.Detail = strings.Join(details, "; ")
	return b
}

func registerSync(r *gin.Engine, s SyncAdmin) {
	r.GET("/api/v1/sync-standbys", func(c *gin.Context) {
		v, err := s.SyncStandbys(c.Request.Context())
		if err != nil {
			c.JSON(http.StatusServiceUnavailable, client.ErrorBody{Error: "unavailable", Detail: err.Error()})
			return
		}
		c.JSON(http.StatusOK, syncView(v))
	})
	r.PUT("/api/v1/sync-standbys", func(c *gin.Context) {
		var in client.SyncSettings
		dec := json.NewDecoder(io.LimitReader(c.Request.Body, maxBody))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&in); err != nil {
			c.JSON(http.StatusBadRequest, badJSON(err))
			return
		}
		v, err := s.SetSync(c.Request.Context(), daemon.SyncSettings{Mode: in.Mode, Count: in.Count, Strict: in.Strict, Commit: in.Commit})
		writeResult(c, syncView(v), err)
	})
}

// writeResult answers a validated CAS write: 200 with v, 400 naming the refused field, 409
// when the data changed meanwhile, 503 when Consul could not be asked.
func writeResult(c *gin.Context, v any, err error) {
	fes := dynconf.Fields(err)
	switch {
	case len(fes) > 0 && errors.Is(err, daemon.ErrParameterRefused):
		// Well-formed, but PostgreSQL or ramd's rules would not run it.
		c.JSON(http.StatusUnprocessableEntity, refusalBody(fes))
	case len(fes) > 0:
		c.JSON(http.StatusBadRequest, refusalBody(fes))
	case errors.Is(err, consul.ErrConflict):
		c.JSON(http.StatusConflict, client.ErrorBody{Error: "conflict", Detail: "the configuration changed meanwhile; read it again"})
	case err != nil:
		c.JSON(http.StatusServiceUnavailable, client.ErrorBody{Error: "unavailable", Detail: err.Error()})
	default:
		c.JSON(http.StatusOK, v)
	}
}

// badJSON describes a JSON decoding error, naming the field when Go's decoder does.
func badJSON(err error) client.ErrorBody {
	b := client.ErrorBody{Error: "invalid JSON", Detail: err.Error()}
	var te *json.UnmarshalTypeError
	if errors.As(err, &te) {
		b.Field = te.Field
	}
	if strings.HasPrefix(err.Error(), "json: unknown field ") {
		b.Field = strings.Trim(strings.TrimPrefix(err.Error(), "json: unknown field "), `"`)
	}
	return b
}

// syncView is the wire form of the sync view.
func syncView(v daemon.SyncView) client.SyncView {
	out := client.SyncView{Mode: v.Mode, Count: v.Count, Strict: v.Strict, Commit: v.Commit, Leader: v.Leader, Quorum: v.Quorum}
	if v.Standbys != nil {
		out.Standbys = make([]client.SyncMember, len(v.Standbys))
		for i, m := range v.Standbys {
			out.Standbys[i] = client.SyncMember{Name: m.Name, ReceiveLSN: m.ReceiveLSN, ReplayLSN: m.ReplayLSN, State: m.State}
		}
	}
	return out
}
