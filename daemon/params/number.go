package params

import (
	"math"
	"strconv"
	"strings"
)

// This file mimics the C library calls PostgreSQL parses numbers with (strtol with base 0
// and strtod, glibc flavour, C locale), so a value is read exactly as the server reads it:
// leading white space, a sign, hexadecimal "0x" and octal "0" prefixes for integers,
// decimal and hexadecimal floating point, "inf", "infinity" and "nan" for reals.

// cSpace reports whether c is white space for isspace() in the C locale.
func cSpace(c byte) bool {
	return c == ' ' || c == '\t' || c == '\n' || c == '\v' || c == '\f' || c == '\r'
}

func skipSpace(s string, i int) int {
	for i < len(s) && cSpace(s[i]) {
		i++
	}
	return i
}

func hexDigit(c byte) (int, bool) {
	switch {
	case '0' <= c && c <= '9':
		return int(c - '0'), true
	case 'a' <= c && c <= 'f':
		return int(c-'a') + 10, true
	case 'A' <= c && c <= 'F':
		return int(c-'A') + 10, true
	}
	return 0, false
}

// strtol parses like C strtol(s, &end, 0) on a 64-bit long: it returns the value, the index
// of the first unparsed byte (0 when nothing was converted) and whether the value overflowed
// (ERANGE).
func strtol(s string) (val int64, end int, overflow bool) {
	i := skipSpace(s, 0)
	neg := false
	if i < len(s) && (s[i] == '+' || s[i] == '-') {
		neg = s[i] == '-'
		i++
	}
	base := 10
	if i < len(s) && s[i] == '0' {
		if i+2 < len(s) && (s[i+1] == 'x' || s[i+1] == 'X') {
			if _, ok := hexDigit(s[i+2]); ok {
				base = 16
				i += 2
			}
		}
		if base == 10 {
			base = 8
		}
	}
	start := i
	var acc uint64
	limit := uint64(math.MaxInt64)
	if neg {
		limit++
	}
	for i < len(s) {
		d, ok := hexDigit(s[i])
		if !ok || d >= base {
			break
		}
		if !overflow {
			if acc > (limit-uint64(d))/uint64(base) {
				overflow = true
			} else {
				acc = acc*uint64(base) + uint64(d)
			}
		}
		i++
	}
	if i == start {
		return 0, 0, false
	}
	switch {
	case overflow && neg:
		return math.MinInt64, i, true
	case overflow:
		return math.MaxInt64, i, true
	case neg:
		return -int64(acc), i, false //nolint:gosec // acc <= 2^63 checked above
	}
	return int64(acc), i, false //nolint:gosec // acc <= 2^63-1 checked above
}

// dblMin is DBL_MIN, the smallest normal double: glibc's strtod reports ERANGE below it.
const dblMin = 2.2250738585072014e-308

// strtod parses like glibc strtod(s, &end): it returns the value, the index of the first
// unparsed byte (0 when nothing was converted) and whether the result is out of range
// (ERANGE: overflow to infinity, or underflow of a non-zero number).
func strtod(s string) (val float64, end int, erange bool) {
	i := skipSpace(s, 0)
	signAt := i
	if i < len(s) && (s[i] == '+' || s[i] == '-') {
		i++
	}
	neg := signAt < i && s[signAt] == '-'
	rest := strings.ToLower(s[i:])
	switch {
	case strings.HasPrefix(rest, "infinity"):
		return signed(math.Inf(1), neg), i + len("infinity"), false
	case strings.HasPrefix(rest, "inf"):
		return signed(math.Inf(1), neg), i + len("inf"), false
	case strings.HasPrefix(rest, "nan"):
		j := i + 3
		if j < len(s) && s[j] == '(' {
			k := j + 1
			for k < len(s) && (isAlnum(s[k]) || s[k] == '_') {
				k++
			}
			if k < len(s) && s[k] == ')' {
				j = k + 1
			}
		}
		return math.NaN(), j, false
	}
	if i+1 < len(s) && s[i] == '0' && (s[i+1] == 'x' || s[i+1] == 'X') {
		if v, e, r, ok := strtodHex(s, i, neg); ok {
			return v, e, r
		}
		// "0x" without hex digits: only the "0" converts.
		return signed(0, neg), i + 1, false
	}
	j, digits, nonzero := i, 0, false
	for j < len(s) && isDigit(s[j]) {
		nonzero = nonzero || s[j] != '0'
		j++
		digits++
	}
	if j < len(s) && s[j] == '.' {
		j++
		for j < len(s) && isDigit(s[j]) {
			nonzero = nonzero || s[j] != '0'
			j++
			digits++
		}
	}
	if digits == 0 {
		return 0, 0, false
	}
	j = exponent(s, j, 'e')
	v, err := strconv.ParseFloat(s[i:j], 64)
	v = signed(v, neg)
	if err != nil || math.IsInf(v, 0) {
		return v, j, true
	}
	return v, j, underflow(v, nonzero)
}

// strtodHex parses a hexadecimal floating-point number at s[i:] ("0x" already seen).
func strtodHex(s string, i int, neg bool) (float64, int, bool, bool) {
	j, digits, nonzero := scanHex(s, i+2)
	if j < len(s) && s[j] == '.' {
		var d int
		var nz bool
		j, d, nz = scanHex(s, j+1)
		digits, nonzero = digits+d, nonzero || nz
	}
	if digits == 0 {
		return 0, 0, false, false
	}
	mant := s[i:j]
	mant = strings.TrimSuffix(mant, ".")
	k := exponent(s, j, 'p')
	exp := "p0"
	if k > j {
		exp = s[j:k]
	}
	v, err := strconv.ParseFloat(mant+exp, 64)
	v = signed(v, neg)
	if err != nil || math.IsInf(v, 0) {
		return v, k, true, true
	}
	return v, k, underflow(v, nonzero), true
}

// scanHex skips hexadecimal digits from s[j:], counting them and noting a non-zero one.
func scanHex(s string, j int) (end, digits int, nonzero bool) {
	for j < len(s) {
		d, ok := hexDigit(s[j])
		if !ok {
			break
		}
		nonzero = nonzero || d != 0
		j++
		digits++
	}
	return j, digits, nonzero
}

// exponent returns the end of an optional exponent (marker e or p, sign, digits) at s[j:];
// without digits the marker is not part of the number.
func exponent(s string, j int, marker byte) int {
	if j >= len(s) || (s[j]|0x20) != marker {
		return j
	}
	k := j + 1
	if k < len(s) && (s[k] == '+' || s[k] == '-') {
		k++
	}
	if k >= len(s) || !isDigit(s[k]) {
		return j
	}
	for k < len(s) && isDigit(s[k]) {
		k++
	}
	return k
}

func underflow(v float64, nonzero bool) bool {
	return nonzero && math.Abs(v) < dblMin
}

func signed(v float64, neg bool) float64 {
	if neg {
		return -v
	}
	return v
}

func isDigit(c byte) bool { return '0' <= c && c <= '9' }

func isAlnum(c byte) bool {
	return isDigit(c) || ('a' <= c && c <= 'z') || ('A' <= c && c <= 'Z')
}
