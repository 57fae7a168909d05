package api

import (
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gin-gonic/gin"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/ramd-project/ramd/daemon"
	"github.com/ramd-project/ramd/observability"
)

// Node is what the API needs from the node agent (satisfied by *daemon.Node).
type Node interface {
	// Status returns the snapshot the HA loop published last, nil before the first cycle.
	// The API never changes it.
	Status() *daemon.Status
}

// Routes are the route groups of the API, each served by an interface of the node agent.
// *daemon.Node satisfies them all, which cmd/ramd asserts at compile time, so a changed
// method signature fails the build instead of silently dropping routes. Node is required; a
// nil group is not registered (its paths answer 404).
type Routes struct {
	// Node serves the health endpoints, /patroni, /cluster, /api/v1/cluster and /metrics.
	Node Node
	// Admin serves /failsafe, the switchover and failover routes and GET /api/v1/jobs/{id}.
	Admin Admin
	// Jobs serves GET /api/v1/jobs.
	Jobs JobLister
	// Sync serves /api/v1/sync-standbys.
	Sync SyncAdmin
	// Config serves /config, /history (also under /api/v1), and /api/v1/pause and resume.
	Config ConfigAdmin
	// Ops serves /restart, /reload, /reinitialize and their /api/v1 forms.
	Ops OpsAdmin
	// Params serves /api/v1/parameters (catalog, validation, tuning) and /api/v1/parameter.
	Params ParamAdmin
	// Backups serves /api/v1/backups, /api/v1/backup-schedules and /api/v1/backup.
	Backups BackupAdmin
}

// releaseMode sets Gin's process-wide mode once, before the first engine is built.
var releaseMode sync.Once

// NewRouter builds the API's Gin engine: Patroni's health endpoints, /patroni, /cluster and
// /metrics, all answered from rt.Node.Status() without any PostgreSQL or Consul call, and
// the route groups of rt that are set. It
// registers the patroni_* collector on reg, which /metrics serves, so the caller can add its
// own collectors to the same registry. now is the clock /liveness compares the last cycle
// with; nil means time.Now. A nil logger discards the access log. The ramd_* gauges read
// from the status are registered on reg too; opts add tracing (WithTracerProvider).
func NewRouter(rt Routes, reg *prometheus.Registry, logger *slog.Logger, now func() time.Time, opts ...Option) *gin.Engine {
	node := rt.Node
	releaseMode.Do(func() { gin.SetMode(gin.ReleaseMode) })
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	if now == nil {
		now = time.Now
	}
	if reg == nil {
		reg = prometheus.NewRegistry()
	}
	if err := reg.Register(newStatusCollector(node)); err != nil {
		if are := (prometheus.AlreadyRegisteredError{}); !errors.As(err, &are) {
			panic("api: register status collector: " + err.Error()) // programmer error at start-up
		}
	}
	if err := reg.Register(newBackupCollector(node, now)); err != nil {
		if are := (prometheus.AlreadyRegisteredError{}); !errors.As(err, &are) {
			panic("api: register backup collector: " + err.Error()) // programmer error at start-up
		}
	}
	if err := observability.RegisterStatusGauges(reg, statusGauges(node, now)); err != nil {
		panic("api: " + err.Error()) // programmer error at start-up
	}
	var o routerOptions
	for _, opt := range opts {
		opt(&o)
	}

	h := &handlers{
		node: node,
		now:  now,
		metrics: promhttp.HandlerFor(reg, promhttp.HandlerOpts{
			ErrorLog:      promLogger{logger},
			ErrorHandling: promhttp.ContinueOnError,
		}),
		logger: logger,
	}

	r := gin.New()
	// Patroni matches health paths by substring, so "/replica/" must reach the health
	// handler instead of being redirected.
	r.RedirectTrailingSlash = false
	r.RedirectFixedPath = false
	_ = r.SetTrustedProxies(nil) // log the peer address, never a forwarded header
	r.Use(recovery(logger), tracing(o), accessLog(logger), errorResponses(), requireAuth(o.authSource()))

	for _, p := range healthPaths {
		r.GET(p, h.health)
		r.HEAD(p, h.health)
		r.OPTIONS(p, h.health)
	}
	for _, p := range probePaths {
		r.GET(p, h.probe)
		r.HEAD(p, h.probe)
		r.OPTIONS(p, h.probe)
	}
	r.GET("/patroni", h.patroni)
	r.GET("/cluster", h.cluster)
	r.GET("/api/v1/cluster", h.clusterV1)
	r.GET("/metrics", gin.WrapH(h.metrics))
	registerSeedNode(r, h, rt.Config)
	serveOpenAPI(r)
	registerRoutes(r, rt)
	r.NoRoute(h.fallback)
	return r
}

// handlers holds what the route handlers share. Handlers only read the snapshot.
type handlers struct {
	node    Node
	now     func() time.Time
	metrics http.Handler
	logger  *slog.Logger
	// doc caches the /patroni document of the last snapshot: load balancers ask many times
	// per cycle, and the snapshot only changes once a cycle.
	doc atomic.Pointer[renderedDoc]
}

// renderedDoc is the /patroni JSON of one snapshot.
type renderedDoc struct {
	st   *daemon.Status
	body []byte
}

// statusJSON returns the /patroni document of st, rendered once per snapshot.
func (h *handlers) statusJSON(st *daemon.Status) ([]byte, error) {
	if d := h.doc.Load(); d != nil && d.st == st {
		return d.body, nil
	}
	b, err := json.Marshal(newNodeStatus(st))
	if err != nil {
		return nil, fmt.Errorf("render status: %w", err)
	}
	h.doc.Store(&renderedDoc{st: st, body: b})
	return b, nil
}

// writeStatus answers code with the /patroni document of st.
func (h *handlers) writeStatus(c *gin.Context, code int, st *daemon.Status) {
	b, err := h.statusJSON(st)
	if err != nil {
		_ = c.Error(err)
		return
	}
	c.Data(code, "application/json; charset=utf-8", b)
}

// health answers a health path: the status code with the /patroni document for GET, the bare
// status line for HEAD and OPTIONS.
func (h *handlers) health(c *gin.Context) {
	st := h.node.Status()
	code := healthCode(c.Request.URL.Path, c.Request.URL.Query(), st, h.now())
	if c.Request.Method != http.MethodGet {
		writeStatusLine(c, code, h.logger)
		return
	}
	if st == nil {
		_ = c.Error(ErrNoStatus)
		return
	}
	h.writeStatus(c, code, st)
}

// probe answers /liveness and /readiness with the bare status line for every method.
func (h *handlers) probe(c *gin.Context) {
	writeStatusLine(c, healthCode(c.Request.URL.Path, c.Request.URL.Query(), h.node.Status(), h.now()), h.logger)
}

// patroni answers GET /patroni with the node's status document.
func (h *handlers) patroni(c *gin.Context) {
	st := h.node.Status()
	if st == nil {
		_ = c.Error(ErrNoStatus)
		return
	}
	h.writeStatus(c, http.StatusOK, st)
}

// cluster answers GET /cluster with the members as last observed.
func (h *handlers) cluster(c *gin.Context) {
	st := h.node.Status()
	if st == nil {
		_ = c.Error(ErrNoStatus)
		return
	}
	c.JSON(http.StatusOK, newClusterView(st))
}

// clusterV1 answers GET /api/v1/cluster.
func (h *handlers) clusterV1(c *gin.Context) {
	st := h.node.Status()
	if st == nil {
		_ = c.Error(ErrNoStatus)
		return
	}
	c.JSON(http.StatusOK, newClusterStatus(st))
}

// fallback routes what no registered route matched the way Patroni does: a GET goes by its
// first path segment ("/patroni/x" is /patroni), and every other GET, HEAD or OPTIONS path
// goes to the health handler, whose substring rules answer it (503 when none matches).
func (h *handlers) fallback(c *gin.Context) {
	method := c.Request.Method
	if method != http.MethodGet && method != http.MethodHead && method != http.MethodOptions ||
		strings.HasPrefix(c.Request.URL.Path, "/api/") {
		// ramd's own routes live under /api/; Patroni's substring matching of health paths
		// applies only to Patroni's paths, so a wrong URL never reads as "healthy".
		_ = c.Error(ErrNotFound)
		return
	}
	switch seg := firstSegment(c.Request.URL.Path); {
	case seg == "liveness" || seg == "readiness":
		h.probe(c)
	case method != http.MethodGet:
		h.health(c)
	case seg == "patroni":
		h.patroni(c)
	case seg == "cluster":
		h.cluster(c)
	case seg == "metrics":
		c.Status(http.StatusOK) // Gin preset 404 for NoRoute; promhttp only sets error codes
		h.metrics.ServeHTTP(c.Writer, c.Request)
	default:
		h.health(c)
	}
}

// promLogger sends promhttp's gathering errors to slog.
type promLogger struct{ logger *slog.Logger }

// Println logs one promhttp error at warn level.
func (l promLogger) Println(v ...any) {
	l.logger.Warn("metrics gathering failed", slog.Any("err", v))
}
