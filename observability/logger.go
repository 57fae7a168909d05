package observability

import (
	"io"
	"log/slog"
	"strings"
)

// NewLogger builds the process logger writing to w, in the format and at the level of cfg.
// Call cfg.Validate first: an unknown format falls back to text and an unknown level to info.
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
	return slog.New(h)
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
