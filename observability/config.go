package observability

import (
	"errors"
	"fmt"
	"strings"
)

// Log formats accepted in RAMD_LOG_FORMAT.
const (
	// LogFormatText selects slog's text handler: key=value pairs, one record per line.
	LogFormatText = "text"
	// LogFormatJSON selects slog's JSON handler: one JSON object per line.
	LogFormatJSON = "json"
)

// Config is the static logging configuration, read from the environment.
type Config struct {
	// LogFormat selects the slog handler: "text" (key=value pairs) or "json". Case is ignored.
	LogFormat string `env:"RAMD_LOG_FORMAT, default=text"`
	// LogLevel is the lowest level written: "debug", "info", "warn" or "error". Case is ignored.
	LogLevel string `env:"RAMD_LOG_LEVEL, default=info"`
}

// Validate reports every invalid field at once. Each message names the variable, the value
// and the rule, and wraps ErrInvalidConfig.
func (c Config) Validate() error {
	var errs []error
	switch strings.ToLower(c.LogFormat) {
	case LogFormatText, LogFormatJSON:
	default:
		errs = append(errs, fmt.Errorf("%w: RAMD_LOG_FORMAT=%q, want %q or %q",
			ErrInvalidConfig, c.LogFormat, LogFormatText, LogFormatJSON))
	}
	if _, ok := parseLevel(c.LogLevel); !ok {
		errs = append(errs, fmt.Errorf("%w: RAMD_LOG_LEVEL=%q, want one of debug, info, warn, error",
			ErrInvalidConfig, c.LogLevel))
	}
	return errors.Join(errs...)
}
