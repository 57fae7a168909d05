package observability

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracegrpc"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracehttp"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	semconv "go.opentelemetry.io/otel/semconv/v1.43.0"
	"go.opentelemetry.io/otel/trace"
	"go.opentelemetry.io/otel/trace/noop"
)

// Exporters NewTracing can choose, as Tracing.Exporter reports them.
const (
	// ExporterNone makes no spans at all: the provider is a no-op.
	ExporterNone = "none"
	// ExporterOTLPHTTP sends OTLP protobuf over HTTP (OTEL_EXPORTER_OTLP_PROTOCOL=http/protobuf,
	// the default).
	ExporterOTLPHTTP = "otlp/http"
	// ExporterOTLPGRPC sends OTLP over gRPC (OTEL_EXPORTER_OTLP_PROTOCOL=grpc).
	ExporterOTLPGRPC = "otlp/grpc"
)

// Identity names this process in the spans' resource. OTEL_SERVICE_NAME and
// OTEL_RESOURCE_ATTRIBUTES override it.
type Identity struct {
	// Service is service.name; "ramd" when empty.
	Service string
	// Instance is service.instance.id: the node name.
	Instance string
	// Version is service.version.
	Version string
	// Scope is the cluster name, as the ramd.scope attribute.
	Scope string
}

// Tracing is the process's tracer provider and how to shut it down.
type Tracing struct {
	provider trace.TracerProvider
	exporter string
	shutdown func(context.Context) error
}

// Provider returns the tracer provider: the SDK's when an exporter is configured, else a
// no-op provider whose spans cost a few nanoseconds and are never recorded.
func (t *Tracing) Provider() trace.TracerProvider { return t.provider }

// Enabled reports whether spans are recorded and exported.
func (t *Tracing) Enabled() bool { return t.exporter != ExporterNone }

// Exporter names the exporter in use: ExporterNone, ExporterOTLPHTTP or ExporterOTLPGRPC.
func (t *Tracing) Exporter() string { return t.exporter }

// Shutdown flushes the spans still queued and stops the exporter, within ctx.
func (t *Tracing) Shutdown(ctx context.Context) error {
	if t.shutdown == nil {
		return nil
	}
	return t.shutdown(ctx)
}

// Propagator is the one propagator ramd uses: W3C trace context (traceparent, tracestate),
// for API requests and for the traceparent a switchover job carries between nodes.
func Propagator() propagation.TextMapPropagator { return propagation.TraceContext{} }

// NewTracing builds the tracer provider from the standard OpenTelemetry variables, read
// through lookup (os.LookupEnv in production):
//   - OTEL_SDK_DISABLED=true, or OTEL_TRACES_EXPORTER=none: no exporter.
//   - OTEL_TRACES_EXPORTER=otlp, or unset while OTEL_EXPORTER_OTLP_ENDPOINT or
//     OTEL_EXPORTER_OTLP_TRACES_ENDPOINT is set: OTLP, over HTTP (protobuf) or gRPC as
//     OTEL_EXPORTER_OTLP_TRACES_PROTOCOL or OTEL_EXPORTER_OTLP_PROTOCOL says (default
//     http/protobuf).
//   - nothing set: no exporter, and a no-op provider.
//
// The exporters read the rest of their settings (endpoint, headers, TLS, timeout,
// compression) from the process environment, the batch span processor reads OTEL_BSP_*
// and the sampler OTEL_TRACES_SAMPLER(_ARG), as the OpenTelemetry specification says.
// Errors wrap ErrInvalidConfig.
func NewTracing(ctx context.Context, lookup func(string) (string, bool), id Identity) (*Tracing, error) {
	kind, err := chooseExporter(lookup)
	if err != nil {
		return nil, err
	}
	if kind == ExporterNone {
		return &Tracing{provider: noop.NewTracerProvider(), exporter: ExporterNone}, nil
	}
	var exp sdktrace.SpanExporter
	switch kind {
	case ExporterOTLPGRPC:
		exp, err = otlptracegrpc.New(ctx)
	default:
		exp, err = otlptracehttp.New(ctx)
	}
	if err != nil {
		return nil, fmt.Errorf("%w: build %s exporter: %w", ErrInvalidConfig, kind, err)
	}
	res, err := newResource(ctx, id)
	if err != nil {
		_ = exp.Shutdown(ctx)
		return nil, err
	}
	tp := sdktrace.NewTracerProvider(sdktrace.WithBatcher(exp), sdktrace.WithResource(res))
	return &Tracing{provider: tp, exporter: kind, shutdown: tp.Shutdown}, nil
}

// chooseExporter applies the selection rules of NewTracing.
func chooseExporter(lookup func(string) (string, bool)) (string, error) {
	get := func(k string) string {
		v, _ := lookup(k)
		return strings.TrimSpace(v)
	}
	if strings.EqualFold(get("OTEL_SDK_DISABLED"), "true") {
		return ExporterNone, nil
	}
	exporters := strings.ToLower(get("OTEL_TRACES_EXPORTER"))
	if exporters == "" {
		if get("OTEL_EXPORTER_OTLP_ENDPOINT") == "" && get("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT") == "" {
			return ExporterNone, nil
		}
		exporters = "otlp"
	}
	otlp := false
	for e := range strings.SplitSeq(exporters, ",") {
		switch strings.TrimSpace(e) {
		case "otlp":
			otlp = true
		case "none", "":
		default:
			return "", fmt.Errorf("%w: OTEL_TRACES_EXPORTER=%q, want \"otlp\" or \"none\"", ErrInvalidConfig, exporters)
		}
	}
	if !otlp {
		return ExporterNone, nil
	}
	name, proto := "OTEL_EXPORTER_OTLP_TRACES_PROTOCOL", get("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL")
	if proto == "" {
		name, proto = "OTEL_EXPORTER_OTLP_PROTOCOL", get("OTEL_EXPORTER_OTLP_PROTOCOL")
	}
	switch strings.ToLower(proto) {
	case "", "http/protobuf":
		return ExporterOTLPHTTP, nil
	case "grpc":
		return ExporterOTLPGRPC, nil
	default:
		return "", fmt.Errorf("%w: %s=%q, want \"http/protobuf\" or \"grpc\"", ErrInvalidConfig, name, proto)
	}
}

// newResource describes this process: service name, version, instance (node) and scope,
// then whatever OTEL_SERVICE_NAME and OTEL_RESOURCE_ATTRIBUTES set.
func newResource(ctx context.Context, id Identity) (*resource.Resource, error) {
	service := id.Service
	if service == "" {
		service = "ramd"
	}
	attrs := []resource.Option{
		resource.WithSchemaURL(semconv.SchemaURL),
		resource.WithAttributes(semconv.ServiceName(service)),
		resource.WithTelemetrySDK(),
	}
	if id.Version != "" {
		attrs = append(attrs, resource.WithAttributes(semconv.ServiceVersion(id.Version)))
	}
	if id.Instance != "" {
		attrs = append(attrs, resource.WithAttributes(semconv.ServiceInstanceID(id.Instance)))
	}
	if id.Scope != "" {
		attrs = append(attrs, resource.WithAttributes(attribute.String("ramd.scope", id.Scope)))
	}
	attrs = append(attrs, resource.WithFromEnv()) // last: the environment wins
	res, err := resource.New(ctx, attrs...)
	if err != nil && !errors.Is(err, resource.ErrPartialResource) {
		return nil, fmt.Errorf("%w: OTEL_RESOURCE_ATTRIBUTES: %w", ErrInvalidConfig, err)
	}
	return res, nil
}
