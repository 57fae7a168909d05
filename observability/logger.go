package observability

import (
	"context"
	"io"
	"log/slog"
	"strings"

	"go.opentelemetry.io/otel/trace"
)

// NewLogger builds the process logger writing to w, in the format and at the level of cfg.
// Call cfg.Validate first: an unknown format falls back to text and an unknown level to info.
// A record logged with a context that carries a span (logger.InfoContext(ctx, ...)) gets
// the trace_id and span_id attributes, so a log line can be found from its trace and back.
func NewLogger(cfg Config, w io.Writer) *slog.Logger {
	level, ok := parseLevel(cfg.LogLevel)
	if !ok {
		level = slog.LevelInfo
	}
	opts := &slog.HandlerOptions{Level: level}
	var h slog.Handler
	if strings.ToLower(cfg.LogFormat) == LogFormatJSON {
		h = slog.NewJSONHandler(w, opts)
	} else {
		h = slog.NewTextHandler(w, opts)
	}
	return slog.New(TraceHandler(h))
}

// Keys of the attributes TraceHandler adds.
const (
	TraceIDKey = "trace_id"
	SpanIDKey  = "span_id"
)

// TraceHandler wraps h so that every record logged inside a span carries the span's
// trace_id and span_id (hex, as trace backends show them). Records logged without a context,
// or with one that has no valid span, pass through unchanged.
func TraceHandler(h slog.Handler) slog.Handler {
	if th, ok := h.(traceHandler); ok {
		return th
	}
	return traceHandler{h}
}

// traceHandler is the slog.Handler TraceHandler returns.
type traceHandler struct{ inner slog.Handler }

// Enabled defers to the wrapped handler.
func (h traceHandler) Enabled(ctx context.Context, l slog.Level) bool { return h.inner.Enabled(ctx, l) }

// Handle adds the span's ids to r when ctx carries a valid span, then hands it on.
func (h traceHandler) Handle(ctx context.Context, r slog.Record) error {
	if sc := trace.SpanContextFromContext(ctx); sc.IsValid() {
		r = r.Clone()
		r.AddAttrs(slog.String(TraceIDKey, sc.TraceID().String()), slog.String(SpanIDKey, sc.SpanID().String()))
	}
	return h.inner.Handle(ctx, r)
}

// WithAttrs keeps the wrapper around the handler with the added attributes.
func (h traceHandler) WithAttrs(attrs []slog.Attr) slog.Handler {
	return traceHandler{h.inner.WithAttrs(attrs)}
}

// WithGroup keeps the wrapper around the handler with the group.
func (h traceHandler) WithGroup(name string) slog.Handler {
	return traceHandler{h.inner.WithGroup(name)}
}

// parseLevel maps a RAMD_LOG_LEVEL value to its slog level.
func parseLevel(s string) (slog.Level, bool) {
	switch strings.ToLower(s) {
	case "debug":
		return slog.LevelDebug, true
	case "info":
		return slog.LevelInfo, true
	case "warn":
		return slog.LevelWarn, true
	case "error":
		return slog.LevelError, true
	default:
		return 0, false
	}
}
