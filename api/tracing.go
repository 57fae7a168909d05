package api

import (
	"github.com/gin-gonic/gin"
	"go.opentelemetry.io/contrib/instrumentation/github.com/gin-gonic/gin/otelgin"
	metricnoop "go.opentelemetry.io/otel/metric/noop"
	"go.opentelemetry.io/otel/trace"

	"github.com/ramd-project/ramd/observability"
)

// Option changes how NewRouter builds the API.
type Option func(*routerOptions)

// routerOptions are the settings Options change.
type routerOptions struct {
	tracerProvider trace.TracerProvider
	auth           Auth
	authFn         func() Auth // when set, read at every request instead of auth
}

// WithTracerProvider gives every request a server span from tp (otelgin), continuing the
// caller's trace when the request carries a traceparent header. Without it the API makes
// no spans and pays nothing for them.
func WithTracerProvider(tp trace.TracerProvider) Option {
	return func(o *routerOptions) { o.tracerProvider = tp }
}

// serverName is the service name otelgin records on request spans.
const serverName = "ramd"

// tracing is the otelgin middleware, or a pass-through handler when no tracer provider was
// given. Span names are the method and the route template ("GET /primary", "POST
// /switchover"), or the method alone for paths the fallback answers: never the raw path.
// The handlers' c.Error values set the span status.
//
// Health checks are not traced unless the caller traces them (sends a traceparent): load
// balancers, Consul and Kubernetes poll them every few seconds on every node, each answer
// comes from memory in a few microseconds, and a span per poll would cost several times
// the answer itself (docs/BENCHMARKS.md) and bury the spans that matter.
func tracing(o routerOptions) gin.HandlerFunc {
	if o.tracerProvider == nil {
		return func(c *gin.Context) { c.Next() }
	}
	return otelgin.Middleware(serverName,
		otelgin.WithTracerProvider(o.tracerProvider),
		otelgin.WithPropagators(observability.Propagator()),
		otelgin.WithMeterProvider(metricnoop.NewMeterProvider()), // metrics are Prometheus's
		otelgin.WithGinFilter(traced),
	)
}

// quietRoutes are the routes of health checks and scrapes.
var quietRoutes = func() map[string]bool {
	m := map[string]bool{"/metrics": true}
	for _, p := range append(append([]string{}, healthPaths...), probePaths...) {
		m[p] = true
	}
	return m
}()

// traced reports whether a request gets a span: always when the caller sends a trace
// context; otherwise unless it is a health check, a probe, a scrape or a path only the
// fallback (Patroni's health matching) answers.
func traced(c *gin.Context) bool {
	if c.Request.Header.Get("traceparent") != "" {
		return true
	}
	route := c.FullPath()
	return route != "" && !quietRoutes[route]
}
