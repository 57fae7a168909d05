// Package observability builds the slog logger, the Prometheus registry with ramd's metrics
// and the OpenTelemetry tracer provider. It imports no other ramd package.
package observability
