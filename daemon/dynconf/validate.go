package dynconf

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math"
	"regexp"
	"strconv"
	"strings"
	"time"
)

var byName = func() map[string]Key {
	m := make(map[string]Key, len(Keys))
	for _, k := range Keys {
		m[k.Name] = k
	}
	return m
}()

// Parse decodes and validates the config key's value. An empty value is the empty
// configuration. See Validate for what is returned on refusal.
func Parse(b []byte) (Config, error) {
	if len(bytes.TrimSpace(b)) == 0 {
		return Config{}, nil
	}
	var doc map[string]any
	if err := json.Unmarshal(b, &doc); err != nil {
		return Config{}, Errors{{Field: "config", Value: truncate(string(b)), Reason: "must be a JSON object: " + err.Error()}}
	}
	if doc == nil {
		return Config{}, Errors{{Field: "config", Value: nil, Reason: "must be a JSON object"}}
	}
	return Validate(doc)
}

// Validate checks a whole configuration document (as decoded by encoding/json) against the
// schema. On refusal it returns Errors with every refused key, and the Config holds the keys
// that passed, so a reader that must act on a partly broken document acts on what is sound.
// A null value counts as unset.
func Validate(doc map[string]any) (Config, error) {
	var c Config
	var errs Errors
	for name, v := range doc {
		if v == nil {
			continue
		}
		if name == "postgresql" {
			pg, ok := v.(map[string]any)
			if !ok {
				errs = append(errs, &FieldError{"postgresql", v, "must be an object"})
				continue
			}
			for sub, sv := range pg {
				if sv != nil {
					errs = append(errs, check(&c, "postgresql."+sub, sv)...)
				}
			}
			continue
		}
		if name == "backup" {
			errs = append(errs, checkBackup(&c, v)...)
			continue
		}
		if name == "bootstrap" {
			errs = append(errs, checkBootstrap(&c, v, time.Now())...)
			continue
		}
		errs = append(errs, check(&c, name, v)...)
	}
	if fe := checkTimings(doc, c); fe != nil {
		errs = append(errs, fe)
	}
	if len(errs) > 0 {
		return c, errs.sorted()
	}
	return c, nil
}

func check(c *Config, name string, v any) []*FieldError {
	k, ok := byName[name]
	if !ok {
		if hint, known := Unsupported[name]; known {
			return []*FieldError{{name, v, "not supported by ramd: " + hint}}
		}
		return []*FieldError{{name, v, "unknown key: not part of ramd's dynamic configuration (see docs/CONFIGURATION.md)"}}
	}
	if why := k.set(c, v); why != "" {
		return []*FieldError{{name, v, why}}
	}
	if name == "postgresql.parameters" {
		return checkParameters(c, v.(map[string]any))
	}
	return nil
}

func checkParameters(c *Config, m map[string]any) []*FieldError {
	var errs []*FieldError
	for name, v := range m {
		field := "postgresql.parameters." + name
		if v == nil {
			continue
		}
		if !parameterName.MatchString(name) {
			errs = append(errs, &FieldError{field, v, "not a valid parameter name"})
			continue
		}
		if owner, ok := OwnedParameters[strings.ToLower(name)]; ok {
			errs = append(errs, &FieldError{field, v, "managed by ramd and cannot be set here: set by " + owner})
			continue
		}
		s, ok := ParameterText(v)
		if !ok {
			errs = append(errs, &FieldError{field, v, "must be a string, a number or a boolean"})
			continue
		}
		c.Parameters[strings.ToLower(name)] = s
	}
	return errs
}

// timingKeys are the keys checked together by the fencing inequality, in the order a refusal
// names them.
var timingKeys = []string{"ttl", "loop_wait", "retry_timeout", "fence_margin", "postgres_unresponsive_timeout"}

// checkTimings applies the fencing inequality to the timings in force (unset ones take the
// defaults). The refusal names the first timing key the document sets.
func checkTimings(doc map[string]any, c Config) *FieldError {
	err := c.Timings().Validate()
	if err == nil {
		return nil
	}
	for _, k := range timingKeys {
		if v, ok := doc[k]; ok && v != nil {
			return &FieldError{k, v, err.Error()}
		}
	}
	return &FieldError{"ttl", nil, err.Error()}
}

// durationRe accepts a number with a unit as PostgreSQL and Patroni write them.
var durationRe = regexp.MustCompile(`^\s*([0-9]+(?:\.[0-9]+)?)\s*(ms|s|min|h|d)\s*$`)

var unitScale = map[string]time.Duration{"ms": time.Millisecond, "s": time.Second, "min": time.Minute, "h": time.Hour, "d": 24 * time.Hour}

// duration reads seconds as a JSON number (3, 0.5) or a string: a number of seconds ("30"),
// a number with a unit ("30min", "500ms", "1d") or a Go duration ("1m30s").
func duration(v any, lo, hi time.Duration) (time.Duration, string) {
	const want = `must be a duration: seconds as a number (3, 0.5) or a string such as "1500ms", "30s", "30min"`
	var d time.Duration
	switch x := v.(type) {
	case float64:
		if math.IsNaN(x) || math.IsInf(x, 0) || x < 0 || x > float64(math.MaxInt64)/float64(time.Second) {
			return 0, want
		}
		d = time.Duration(x * float64(time.Second))
	case string:
		if f, err := strconv.ParseFloat(strings.TrimSpace(x), 64); err == nil {
			return duration(f, lo, hi)
		}
		if m := durationRe.FindStringSubmatch(x); m != nil {
			f, _ := strconv.ParseFloat(m[1], 64)
			d = time.Duration(f * float64(unitScale[m[2]]))
			break
		}
		var err error
		if d, err = time.ParseDuration(strings.TrimSpace(x)); err != nil || d < 0 {
			return 0, want
		}
	default:
		return 0, want
	}
	if d < lo || d > hi {
		return 0, fmt.Sprintf("must be between %s and %s", lo, hi)
	}
	return d, ""
}

// wholeNumber reads an integer given as a JSON number (or a string of digits, as Patroni's
// tools sometimes write) within [lo, hi].
func wholeNumber(v any, lo, hi int64) (int64, string) {
	want := fmt.Sprintf("must be a whole number from %d to %d", lo, hi)
	if hi == math.MaxInt64 || hi == math.MaxInt32 {
		want = fmt.Sprintf("must be a whole number, %d or more", lo)
	}
	var f float64
	switch x := v.(type) {
	case float64:
		f = x
	case string:
		n, err := strconv.ParseInt(strings.TrimSpace(x), 10, 64)
		if err != nil {
			return 0, want
		}
		f = float64(n)
	default:
		return 0, want
	}
	if f != math.Trunc(f) || f < float64(lo) || f > float64(hi) {
		return 0, want
	}
	return int64(f), ""
}

func truncate(s string) string {
	if len(s) > 200 {
		return s[:200] + "..."
	}
	return s
}
