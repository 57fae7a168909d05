package observability

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"strings"
	"testing"

	"go.opentelemetry.io/otel/propagation"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
)

// lookupMap is an environment for tests: the process's own is never read here.
func lookupMap(env map[string]string) func(string) (string, bool) {
	return func(k string) (string, bool) {
		v, ok := env[k]
		return v, ok
	}
}

func TestChooseExporter(t *testing.T) {
	t.Parallel()
	const endpoint = "http://127.0.0.1:4318"
	tests := []struct {
		name    string
		env     map[string]string
		want    string
		wantErr string
	}{
		{"nothing set", nil, ExporterNone, ""},
		{"endpoint only", map[string]string{"OTEL_EXPORTER_OTLP_ENDPOINT": endpoint}, ExporterOTLPHTTP, ""},
		{"traces endpoint only", map[string]string{"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": endpoint + "/v1/traces"}, ExporterOTLPHTTP, ""},
		{"grpc", map[string]string{"OTEL_EXPORTER_OTLP_ENDPOINT": endpoint, "OTEL_EXPORTER_OTLP_PROTOCOL": "grpc"}, ExporterOTLPGRPC, ""},
		{"http/protobuf", map[string]string{"OTEL_EXPORTER_OTLP_ENDPOINT": endpoint, "OTEL_EXPORTER_OTLP_PROTOCOL": "http/protobuf"}, ExporterOTLPHTTP, ""},
		{"traces protocol wins", map[string]string{"OTEL_EXPORTER_OTLP_ENDPOINT": endpoint,
			"OTEL_EXPORTER_OTLP_PROTOCOL": "http/protobuf", "OTEL_EXPORTER_OTLP_TRACES_PROTOCOL": "grpc"}, ExporterOTLPGRPC, ""},
		{"exporter otlp without endpoint", map[string]string{"OTEL_TRACES_EXPORTER": "otlp"}, ExporterOTLPHTTP, ""},
		{"exporter none beats endpoint", map[string]string{"OTEL_TRACES_EXPORTER": "none", "OTEL_EXPORTER_OTLP_ENDPOINT": endpoint}, ExporterNone, ""},
		{"sdk disabled", map[string]string{"OTEL_SDK_DISABLED": "true", "OTEL_TRACES_EXPORTER": "otlp"}, ExporterNone, ""},
		{"sdk not disabled", map[string]string{"OTEL_SDK_DISABLED": "false", "OTEL_TRACES_EXPORTER": "otlp"}, ExporterOTLPHTTP, ""},
		{"list with none", map[string]string{"OTEL_TRACES_EXPORTER": "none,otlp"}, ExporterOTLPHTTP, ""},
		{"unknown exporter", map[string]string{"OTEL_TRACES_EXPORTER": "jaeger"}, "", `OTEL_TRACES_EXPORTER="jaeger"`},
		{"http/json unsupported", map[string]string{"OTEL_TRACES_EXPORTER": "otlp", "OTEL_EXPORTER_OTLP_PROTOCOL": "http/json"},
			"", `OTEL_EXPORTER_OTLP_PROTOCOL="http/json"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got, err := chooseExporter(lookupMap(tt.env))
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) || !errors.Is(err, ErrInvalidConfig) {
					t.Fatalf("chooseExporter() = %q, %v; want an ErrInvalidConfig containing %q", got, err, tt.wantErr)
				}
				return
			}
			if err != nil || got != tt.want {
				t.Errorf("chooseExporter() = %q, %v; want %q", got, err, tt.want)
			}
		})
	}
}

func TestNewTracing(t *testing.T) {
	t.Parallel()
	id := Identity{Instance: "n1", Version: "0.1.0", Scope: "demo"}
	off, err := NewTracing(t.Context(), lookupMap(nil), id)
	if err != nil {
		t.Fatal(err)
	}
	if off.Enabled() || off.Exporter() != ExporterNone {
		t.Errorf("nothing set: enabled %v, exporter %q", off.Enabled(), off.Exporter())
	}
	_, span := off.Provider().Tracer("t").Start(t.Context(), "x")
	if span.IsRecording() || span.SpanContext().IsValid() {
		t.Error("the disabled provider records spans")
	}
	span.End()
	if err := off.Shutdown(t.Context()); err != nil {
		t.Error(err)
	}

	// The exporter is built, not contacted: nothing listens on this port, and no span is
	// exported, so Shutdown has nothing to send.
	on, err := NewTracing(t.Context(), lookupMap(map[string]string{"OTEL_TRACES_EXPORTER": "otlp"}), id)
	if err != nil {
		t.Fatal(err)
	}
	if !on.Enabled() || on.Exporter() != ExporterOTLPHTTP {
		t.Errorf("otlp: enabled %v, exporter %q", on.Enabled(), on.Exporter())
	}
	if _, ok := on.Provider().(*sdktrace.TracerProvider); !ok {
		t.Errorf("otlp provider is %T, want the SDK's", on.Provider())
	}
	if err := on.Shutdown(t.Context()); err != nil {
		t.Error(err)
	}

	if _, err := NewTracing(t.Context(), lookupMap(map[string]string{"OTEL_TRACES_EXPORTER": "zipkin"}), id); !errors.Is(err, ErrInvalidConfig) {
		t.Errorf("unknown exporter: %v, want ErrInvalidConfig", err)
	}
}

func TestNewResource(t *testing.T) {
	t.Parallel()
	res, err := newResource(t.Context(), Identity{Instance: "n2", Version: "1.2.3", Scope: "demo"})
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]string{}
	for _, kv := range res.Attributes() {
		got[string(kv.Key)] = kv.Value.String()
	}
	for k, want := range map[string]string{
		"service.instance.id": "n2", "service.version": "1.2.3", "ramd.scope": "demo", "telemetry.sdk.language": "go",
	} {
		if got[k] != want {
			t.Errorf("resource %s = %q, want %q", k, got[k], want)
		}
	}
	// service.name is "ramd" unless OTEL_SERVICE_NAME says otherwise in the environment.
	if got["service.name"] == "" {
		t.Error("resource has no service.name")
	}
}

// TestTraceHandler checks that a record logged inside a span carries its ids, and one
// logged outside does not, in both formats and through With.
func TestTraceHandler(t *testing.T) {
	t.Parallel()
	rec := tracetest.NewSpanRecorder()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(rec))
	ctx, span := tp.Tracer("t").Start(t.Context(), "ha.promote")
	defer span.End()
	wantTrace, wantSpan := span.SpanContext().TraceID().String(), span.SpanContext().SpanID().String()

	for _, format := range []string{LogFormatJSON, LogFormatText} {
		var buf bytes.Buffer
		logger := NewLogger(Config{LogFormat: format, LogLevel: "info"}, &buf).With("node", "n1")
		logger.InfoContext(ctx, "promoted", "timeline", 4)
		logger.InfoContext(t.Context(), "plan")
		logger.Info("no context")
		lines := strings.Split(strings.TrimSpace(buf.String()), "\n")
		if len(lines) != 3 {
			t.Fatalf("%s: %d lines, want 3:\n%s", format, len(lines), buf.String())
		}
		if format == LogFormatJSON {
			var first map[string]any
			if err := json.Unmarshal([]byte(lines[0]), &first); err != nil {
				t.Fatal(err)
			}
			if first[TraceIDKey] != wantTrace || first[SpanIDKey] != wantSpan || first["node"] != "n1" {
				t.Errorf("json line inside a span: %s; want trace_id %s span_id %s node n1", lines[0], wantTrace, wantSpan)
			}
		} else if !strings.Contains(lines[0], "trace_id="+wantTrace) || !strings.Contains(lines[0], "span_id="+wantSpan) {
			t.Errorf("text line inside a span: %s", lines[0])
		}
		for _, l := range lines[1:] {
			if strings.Contains(l, TraceIDKey) {
				t.Errorf("%s: line outside a span has a trace id: %s", format, l)
			}
		}
	}
}

// TestPropagatorRoundTrip checks the traceparent a job carries between nodes.
func TestPropagatorRoundTrip(t *testing.T) {
	t.Parallel()
	tp := sdktrace.NewTracerProvider()
	ctx, span := tp.Tracer("t").Start(context.Background(), "POST /switchover")
	defer span.End()
	carrier := propagation.MapCarrier{}
	Propagator().Inject(ctx, carrier)
	tpHeader := carrier.Get("traceparent")
	if !strings.HasPrefix(tpHeader, "00-"+span.SpanContext().TraceID().String()+"-") {
		t.Fatalf("traceparent %q does not carry the trace id", tpHeader)
	}
	got := Propagator().Extract(context.Background(), propagation.MapCarrier{"traceparent": tpHeader})
	_, child := tp.Tracer("t").Start(got, "ha.promote")
	defer child.End()
	if child.SpanContext().TraceID() != span.SpanContext().TraceID() {
		t.Error("a span started from the extracted traceparent is in another trace")
	}
}

func TestTraceHandlerNoDoubleWrap(t *testing.T) {
	t.Parallel()
	h := TraceHandler(slog.DiscardHandler)
	if TraceHandler(h) != h {
		t.Error("TraceHandler wrapped its own handler again")
	}
}
