package api

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"strings"

	"github.com/gin-gonic/gin"

	"github.com/ramd-project/ramd/consul"
	"github.com/ramd-project/ramd/daemon"
	"github.com/ramd-project/ramd/daemon/dynconf"
)

// SyncAdmin is what /api/v1/sync-standbys needs (satisfied by *daemon.Node).
type SyncAdmin interface {
	SyncStandbys(ctx context.Context) (daemon.SyncView, error)
	SetSync(ctx context.Context, s daemon.SyncSettings) (daemon.SyncView, error)
}

// fieldErrorBody is the 400 answer naming the refused field.
type fieldErrorBody struct {
	Error  string `json:"error"`
	Detail string `json:"detail"`
	Field  string `json:"field,omitempty"`
	// Value is the refused value of Field, as given.
	Value any `json:"value,omitempty"`
	// Errors lists every refused field when a document was refused (the first is Field).
	Errors []fieldRefusal `json:"errors,omitempty"`
}

// fieldRefusal is one refused field of a document.
type fieldRefusal struct {
	Field  string `json:"field"`
	Value  any    `json:"value"`
	Reason string `json:"reason"`
}

// refusalBody describes refused values: the first in field, value and detail, and all of them
// in errors.
func refusalBody(fes []*daemon.FieldError) fieldErrorBody {
	b := fieldErrorBody{Error: "invalid value", Field: fes[0].Field, Value: fes[0].Value}
	details := make([]string, len(fes))
	for i, fe := range fes {
		b.Errors = append(b.Errors, fieldRefusal{Field: fe.Field, Value: fe.Value, Reason: fe.Reason})
		details[i] = fe.Error()
	}
	b.Detail = strings.Join(details, "; ")
	return b
}

func registerSync(r *gin.Engine, s SyncAdmin) {
	r.GET("/api/v1/sync-standbys", func(c *gin.Context) {
		v, err := s.SyncStandbys(c.Request.Context())
		if err != nil {
			c.JSON(http.StatusServiceUnavailable, fieldErrorBody{Error: "unavailable", Detail: err.Error()})
			return
		}
		c.JSON(http.StatusOK, v)
	})
	r.PUT("/api/v1/sync-standbys", func(c *gin.Context) {
		var in daemon.SyncSettings
		dec := json.NewDecoder(io.LimitReader(c.Request.Body, maxBody))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&in); err != nil {
			c.JSON(http.StatusBadRequest, badJSON(err))
			return
		}
		v, err := s.SetSync(c.Request.Context(), in)
		writeResult(c, v, err)
	})
}

// writeResult answers a validated CAS write: 200 with v, 400 naming the refused field, 409
// when the data changed meanwhile, 503 when Consul could not be asked.
func writeResult(c *gin.Context, v any, err error) {
	fes := dynconf.Fields(err)
	switch {
	case len(fes) > 0:
		c.JSON(http.StatusBadRequest, refusalBody(fes))
	case errors.Is(err, consul.ErrConflict):
		c.JSON(http.StatusConflict, fieldErrorBody{Error: "conflict", Detail: "the configuration changed meanwhile; read it again"})
	case err != nil:
		c.JSON(http.StatusServiceUnavailable, fieldErrorBody{Error: "unavailable", Detail: err.Error()})
	default:
		c.JSON(http.StatusOK, v)
	}
}

// badJSON describes a JSON decoding error, naming the field when Go's decoder does.
func badJSON(err error) fieldErrorBody {
	b := fieldErrorBody{Error: "invalid JSON", Detail: err.Error()}
	var te *json.UnmarshalTypeError
	if errors.As(err, &te) {
		b.Field = te.Field
	}
	if strings.HasPrefix(err.Error(), "json: unknown field ") {
		b.Field = strings.Trim(strings.TrimPrefix(err.Error(), "json: unknown field "), `"`)
	}
	return b
}
