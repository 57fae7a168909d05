package api

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"sort"

	"github.com/gin-gonic/gin"

	"github.com/ramd-project/ramd/api/client"
	"github.com/ramd-project/ramd/daemon"
	"github.com/ramd-project/ramd/daemon/dynconf"
	"github.com/ramd-project/ramd/daemon/params"
)

// ParamAdmin serves the parameter routes (satisfied by *daemon.Node).
type ParamAdmin interface {
	// Catalog is the local server's parameter catalog.
	Catalog(ctx context.Context) (*params.Catalog, error)
	// ReviewParameters judges a whole parameter set as the cluster would run it.
	ReviewParameters(ctx context.Context, proposed map[string]string) (params.Report, error)
	// TuneParameters suggests parameters for the node and a workload.
	TuneParameters(ctx context.Context, r daemon.TuneRequest) (daemon.Tuning, error)
}

// registerParams serves the catalog, validation and tuning under /api/v1/parameters and the
// spellings of the product's documents under /api/v1/parameter.
func registerParams(r *gin.Engine, a ParamAdmin) {
	h := &paramHandlers{a: a}
	for _, p := range []string{"/api/v1/parameters", "/api/v1/parameter/list"} {
		r.GET(p, h.list)
	}
	for _, p := range []string{"/api/v1/parameters/:name", "/api/v1/parameter/info/:name"} {
		r.GET(p, h.info)
	}
	for _, p := range []string{"/api/v1/parameters/validate", "/api/v1/parameter/validate"} {
		r.POST(p, h.validate)
	}
	for _, p := range []string{"/api/v1/parameters/tune", "/api/v1/parameter/optimize"} {
		r.POST(p, h.tune)
	}
}

type paramHandlers struct{ a ParamAdmin }

func catalogUnavailable(c *gin.Context, err error) {
	c.JSON(http.StatusServiceUnavailable, client.ErrorBody{Error: "unavailable", Detail: err.Error()})
}

func parameterOf(p params.Param) client.Parameter {
	out := client.Parameter{Name: p.Name, Context: string(p.Context), Type: string(p.Type), Unit: p.Unit,
		Category: p.Category, Description: p.ShortDesc, EnumValues: p.EnumVals, BootValue: p.BootVal,
		ResetValue: p.ResetVal, RestartNeeded: p.RestartNeeded()}
	if p.Type == "integer" || p.Type == "real" {
		lo, hi := p.Min, p.Max
		out.Min, out.Max = &lo, &hi
	}
	return out
}

// list answers the catalog of the local server's version, sorted by name.
func (h *paramHandlers) list(c *gin.Context) {
	cat, err := h.a.Catalog(c.Request.Context())
	if err != nil {
		catalogUnavailable(c, err)
		return
	}
	out := client.ParameterList{ServerVersionNum: cat.VersionNum, Parameters: []client.Parameter{}}
	names := cat.Names()
	sort.Strings(names)
	for _, n := range names {
		if p, ok := cat.Lookup(n); ok {
			out.Parameters = append(out.Parameters, parameterOf(p))
		}
	}
	c.JSON(http.StatusOK, out)
}

// info answers one parameter.
func (h *paramHandlers) info(c *gin.Context) {
	name := c.Param("name")
	if name == "validate" || name == "tune" {
		c.JSON(http.StatusMethodNotAllowed, client.ErrorBody{Error: "method not allowed", Detail: "POST /api/v1/parameters/" + name})
		return
	}
	cat, err := h.a.Catalog(c.Request.Context())
	if err != nil {
		catalogUnavailable(c, err)
		return
	}
	p, ok := cat.Lookup(name)
	if !ok {
		c.JSON(http.StatusNotFound, client.ErrorBody{Error: "not found", Field: "name",
			Detail: fmt.Sprintf("unrecognized configuration parameter %q in PostgreSQL %d", name, cat.Major())})
		return
	}
	c.JSON(http.StatusOK, parameterOf(p))
}

func reportOf(r params.Report) client.ParameterReport {
	out := client.ParameterReport{OK: r.OK(), Refusals: []client.ParameterIssue{}, Warnings: []client.ParameterIssue{}}
	for _, i := range r.Refusals {
		out.Refusals = append(out.Refusals, client.ParameterIssue{Field: i.Field, Value: i.Value, Message: i.Message, Rule: string(i.Rule)})
	}
	for _, i := range r.Warnings {
		out.Warnings = append(out.Warnings, client.ParameterIssue{Field: i.Field, Value: i.Value, Message: i.Message, Rule: string(i.Rule)})
	}
	return out
}

// validate judges {"parameters": {name: value}} without storing anything: 200 with the report
// when every value passes, 422 with it when one is refused.
func (h *paramHandlers) validate(c *gin.Context) {
	var req client.ValidateParametersRequest
	if err := decodeStrict(c, &req); err != nil {
		c.JSON(http.StatusBadRequest, badJSON(err))
		return
	}
	if len(req.Parameters) == 0 {
		c.JSON(http.StatusBadRequest, client.ErrorBody{Error: "invalid value", Field: "parameters", Detail: "name at least one parameter"})
		return
	}
	proposed := map[string]string{}
	for name, v := range req.Parameters {
		s, ok := dynconf.ParameterText(v)
		if !ok {
			c.JSON(http.StatusBadRequest, client.ErrorBody{Error: "invalid value", Field: "parameters." + name, Value: v,
				Detail: "must be a string, a number or a boolean"})
			return
		}
		proposed[name] = s
	}
	r, err := h.a.ReviewParameters(c.Request.Context(), proposed)
	if err != nil {
		catalogUnavailable(c, err)
		return
	}
	code := http.StatusOK
	if !r.OK() {
		code = http.StatusUnprocessableEntity
	}
	c.JSON(code, reportOf(r))
}

// tune answers suggestions for the node and a workload, each beside the value in force.
func (h *paramHandlers) tune(c *gin.Context) {
	var req client.TuneRequest
	if c.Request.ContentLength != 0 {
		if err := decodeStrict(c, &req); err != nil {
			c.JSON(http.StatusBadRequest, badJSON(err))
			return
		}
	}
	t, err := h.a.TuneParameters(c.Request.Context(), daemon.TuneRequest{Workload: req.Workload, MemoryBytes: req.MemoryBytes,
		CPUs: req.CPUs, Storage: req.Storage, MaxConnections: req.MaxConnections})
	var fe *daemon.FieldError
	switch {
	case errors.As(err, &fe):
		c.JSON(http.StatusBadRequest, client.ErrorBody{Error: "invalid value", Field: fe.Field, Value: fe.Value, Detail: fe.Error()})
		return
	case err != nil:
		catalogUnavailable(c, err)
		return
	}
	out := client.TuneResult{Workload: string(t.Input.Workload), MemoryBytes: t.Input.MemoryBytes, CPUs: t.Input.CPUs,
		Storage: string(t.Input.Storage), ServerMajor: t.Input.Major, Review: reportOf(t.Review), Suggestions: []client.TuneSuggestion{}}
	for _, s := range t.Suggestions {
		out.Suggestions = append(out.Suggestions, client.TuneSuggestion{Name: s.Name, Current: s.Current, Suggested: s.Value,
			Reason: s.Reason, Changes: s.Current != s.Value})
	}
	c.JSON(http.StatusOK, out)
}
