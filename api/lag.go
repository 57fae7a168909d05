package api

import (
	"math"
	"strconv"
	"strings"
)

// Byte units accepted in ?lag=, case-sensitive as in PostgreSQL and Patroni: 1kB = 1024 B.
var lagUnits = map[string]float64{
	"B":  1,
	"kB": 1 << 10,
	"MB": 1 << 20,
	"GB": 1 << 30,
	"TB": 1 << 40,
}

// lagRounding is, per unit, the next smaller unit: a fractional value is rounded to a whole
// number of it first (Patroni's convert_to_base_unit), so 1.0000001MB is 1048576 B.
var lagRounding = map[string]float64{
	"kB": 1,
	"MB": 1 << 10,
	"GB": 1 << 20,
	"TB": 1 << 30,
}

// parseLag parses a ?lag= value the way Patroni's parse_int(value, 'B') does: an integer in
// decimal, octal (leading 0) or hex (0x), or a decimal fraction or exponent, optionally
// followed by spaces and a unit B, kB, MB, GB or TB. Halves round to even. It reports false
// for anything else, which callers treat as "not given". Values beyond int64 saturate.
func parseLag(s string) (int64, bool) {
	s = strings.TrimSpace(s)
	n, rest, ok := strtol(s)
	if (!ok && strings.HasPrefix(rest, ".")) || (rest != "" && strings.ContainsRune(".eE", rune(rest[0]))) {
		f, frest, fok := strtod(s)
		if !fok {
			return 0, false
		}
		return applyUnit(f, frest)
	}
	if !ok {
		return 0, false
	}
	if strings.TrimSpace(rest) == "" {
		return n, true
	}
	return applyUnit(float64(n), rest)
}

// applyUnit converts v in unit (surrounded by optional spaces) to bytes.
func applyUnit(v float64, unit string) (int64, bool) {
	unit = strings.TrimSpace(unit)
	if unit == "" {
		return saturate(math.RoundToEven(v)), true
	}
	mult, ok := lagUnits[unit]
	if !ok {
		return 0, false
	}
	v *= mult
	if r, ok := lagRounding[unit]; ok {
		v = math.RoundToEven(v/r) * r
	}
	return saturate(math.RoundToEven(v)), true
}

// saturate converts a whole float to int64, clamping at the int64 range.
func saturate(f float64) int64 {
	switch {
	case f >= math.MaxInt64:
		return math.MaxInt64
	case f <= math.MinInt64:
		return math.MinInt64
	default:
		return int64(f)
	}
}

// strtol reads a signed integer prefix as C's strtol with base 0 does: 0x for hex, a leading
// 0 for octal, else decimal. It returns the value, the rest, and whether a number was read;
// when none was, rest is s.
func strtol(s string) (int64, string, bool) {
	i := 0
	neg := false
	if i < len(s) && (s[i] == '+' || s[i] == '-') {
		neg = s[i] == '-'
		i++
	}
	if i >= len(s) || !isDigit(s[i]) {
		return 0, s, false
	}
	base := 10
	var start int
	switch {
	case s[i] == '0' && i+2 < len(s) && s[i+1] == 'x' && isHexDigit(s[i+2]):
		base = 16
		i += 2
		start = i
		for i < len(s) && isHexDigit(s[i]) {
			i++
		}
	case s[i] == '0':
		base = 8
		start = i
		i++
		for i < len(s) && s[i] >= '0' && s[i] <= '7' {
			i++
		}
	default:
		start = i
		for i < len(s) && isDigit(s[i]) {
			i++
		}
	}
	u, err := strconv.ParseUint(s[start:i], base, 64)
	if err != nil || u > math.MaxInt64 {
		u = math.MaxInt64 // only a range error is possible here: saturate
	}
	v := int64(u)
	if neg {
		v = -v
	}
	return v, s[i:], true
}

// strtod reads a decimal floating-point prefix: [+-]digits[.digits][e[+-]digits], where the
// integer part may be empty (".5") but a fraction needs a digit ("1." reads as 1).
func strtod(s string) (float64, string, bool) {
	i := 0
	if i < len(s) && (s[i] == '+' || s[i] == '-') {
		i++
	}
	intStart := i
	for i < len(s) && isDigit(s[i]) {
		i++
	}
	hasInt := i > intStart
	if i+1 < len(s) && s[i] == '.' && isDigit(s[i+1]) {
		i++
		for i < len(s) && isDigit(s[i]) {
			i++
		}
	} else if !hasInt {
		return 0, s, false
	}
	if i < len(s) && (s[i] == 'e' || s[i] == 'E') {
		j := i + 1
		if j < len(s) && (s[j] == '+' || s[j] == '-') {
			j++
		}
		if j < len(s) && isDigit(s[j]) {
			for j < len(s) && isDigit(s[j]) {
				j++
			}
			i = j
		}
	}
	f, err := strconv.ParseFloat(s[:i], 64)
	if err != nil && !math.IsInf(f, 0) {
		return 0, s, false
	}
	return f, s[i:], true
}

func isDigit(b byte) bool { return b >= '0' && b <= '9' }

func isHexDigit(b byte) bool {
	return isDigit(b) || (b >= 'a' && b <= 'f') || (b >= 'A' && b <= 'F')
}

// exceeds reports whether a − b > limit, computed exactly for LSNs and any limit.
func exceeds(a, b uint64, limit int64) bool {
	if a >= b {
		return limit < 0 || a-b > uint64(limit)
	}
	// a − b = −(b − a), which is greater than limit only when limit < −(b − a).
	if limit >= 0 {
		return false
	}
	return uint64(-(limit+1))+1 > b-a
}
