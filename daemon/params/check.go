package params

import (
	"fmt"
	"math"
	"strconv"
	"strings"
)

// Value is a value the server accepts, normalised the way `postgres -C` shows it.
type Value struct {
	Name  string  // the parameter's name as the catalog spells it
	Input string  // the value as given
	Shown string  // base units for numbers, on/off for booleans, the enum's own spelling
	Num   float64 // integers and reals in base units
	// Custom is set for a dotted extension parameter unknown to the catalog: it is
	// accepted as a placeholder, unchecked, as the server does before the extension loads.
	Custom bool
}

// Int returns the value of an integer parameter in base units.
func (v Value) Int() int64 { return int64(v.Num) }

// Bool reports the value of a boolean parameter.
func (v Value) Bool() bool { return v.Shown == "on" }

// Check judges name=value as PostgreSQL of the catalog's version judges it on the command
// line or in postgresql.conf (postgres -c name=value): the name must exist in this version
// (names with a dot are custom placeholders unless known), internal parameters cannot be
// changed, and the value must parse for the parameter's type, unit and range. Check
// applies no check hooks beyond these (see the table test for the residue). Refusals are
// *ValueError.
func (c *Catalog) Check(name, value string) (Value, error) {
	name = strings.ReplaceAll(name, "-", "_") // as the command line does
	p, ok := c.Lookup(name)
	if !ok {
		return c.unknown(name, value)
	}
	bad := func(kind error, msg, hint string) (Value, error) {
		return Value{}, &ValueError{Name: name, Value: value, Message: msg, Hint: hint, Kind: kind}
	}
	if p.Context == ContextInternal {
		return bad(ErrCannotChange, fmt.Sprintf("parameter %q cannot be changed", p.Name), "")
	}
	v := Value{Name: p.Name, Input: value}
	invalid := fmt.Sprintf("invalid value for parameter %q: %q", p.Name, value)
	switch p.Type {
	case TypeBool:
		b, ok := parseBool(value)
		if !ok {
			return bad(ErrInvalidValue, fmt.Sprintf("parameter %q requires a Boolean value", p.Name), "")
		}
		v.Shown = "off"
		if b {
			v.Shown = "on"
		}
		if msg, refused := p.Refused[v.Shown]; refused {
			return bad(ErrInvalidValue, msg, "")
		}
	case TypeInteger:
		n, hint, ok := parseInt(value, p.unit)
		if !ok {
			return bad(ErrInvalidValue, invalid, hint)
		}
		if float64(n) < p.Min || float64(n) > p.Max {
			return bad(ErrOutOfRange, fmt.Sprintf("%d%s is outside the valid range for parameter %q (%d .. %d)",
				n, unitSuffix(p.Unit), p.Name, int64(p.Min), int64(p.Max)), "")
		}
		v.Num, v.Shown = float64(n), strconv.FormatInt(n, 10)
	case TypeReal:
		f, hint, ok := parseReal(value, p.unit)
		if !ok {
			return bad(ErrInvalidValue, invalid, hint)
		}
		if f < p.Min || f > p.Max {
			return bad(ErrOutOfRange, fmt.Sprintf("%s%s is outside the valid range for parameter %q (%s .. %s)",
				formatG(f), unitSuffix(p.Unit), p.Name, formatG(p.Min), formatG(p.Max)), "")
		}
		v.Num, v.Shown = f, formatG(f)
	case TypeEnum:
		s, ok := p.enumValue(value)
		if !ok {
			return bad(ErrInvalidValue, invalid, "Available values: "+strings.Join(p.EnumVals, ", ")+".")
		}
		v.Shown = s
	default:
		v.Shown = value
	}
	return v, nil
}

// unknown judges a name the catalog does not know.
func (c *Catalog) unknown(name, value string) (Value, error) {
	if strings.Contains(name, ".") {
		if !validCustomName(name) {
			return Value{}, &ValueError{Name: name, Value: value, Kind: ErrUnknownParameter,
				Message: fmt.Sprintf("invalid configuration parameter name %q", name),
				Hint:    "Custom parameter names must be two or more simple identifiers separated by dots."}
		}
		return Value{Name: name, Input: value, Shown: value, Custom: true}, nil
	}
	if life, ok := lifetimeOf(name); ok {
		return Value{}, &ValueError{Name: name, Value: value, Kind: ErrNotInVersion,
			Message: fmt.Sprintf("parameter %q does not exist in PostgreSQL %d (%s)", name, c.Major(), life)}
	}
	return Value{}, &ValueError{Name: name, Value: value, Kind: ErrUnknownParameter,
		Message: fmt.Sprintf("unrecognized configuration parameter %q", name)}
}

// validCustomName applies PostgreSQL's rule for placeholder names: two or more parts
// separated by dots, each starting with a letter, an underscore or a byte >= 0x80, then
// also digits and '$'.
func validCustomName(name string) bool {
	sawDot, start := false, true
	for k := 0; k < len(name); k++ {
		ch := name[k]
		switch {
		case ch == '.':
			if start {
				return false
			}
			sawDot, start = true, true
		case ch == '_' || ('a' <= ch && ch <= 'z') || ('A' <= ch && ch <= 'Z') || ch >= 0x80:
			start = false
		case !start && (isDigit(ch) || ch == '$'):
		default:
			return false
		}
	}
	return !start && sawDot
}

func unitSuffix(u string) string {
	if u == "" {
		return ""
	}
	return " " + u
}

// formatG prints a real as C's "%g" does (six significant digits).
func formatG(f float64) string {
	switch {
	case math.IsInf(f, 1):
		return "inf"
	case math.IsInf(f, -1):
		return "-inf"
	}
	s := strconv.FormatFloat(f, 'g', 6, 64)
	if mant, exp, ok := strings.Cut(s, "e"); ok && len(exp) == 2 { // C pads exponents to 2 digits
		s = mant + "e" + exp[:1] + "0" + exp[1:]
	}
	return s
}

// rint rounds half to even, as C rint does in the default rounding mode.
func rint(f float64) float64 { return math.RoundToEven(f) }

// parseInt is PostgreSQL's parse_int: strtol with base 0, falling back to strtod when the
// number continues with '.', 'e' or 'E' or overflows; NaN refused; optional white space and
// a unit (only for parameters with a unit); rounded half to even; within the int range.
// It returns the hint PostgreSQL gives on failure.
func parseInt(s string, u baseUnit) (int64, string, bool) {
	l, end, overflow := strtol(s)
	val := float64(l)
	// end 0 means strtol converted nothing: C then looks at the first byte of s.
	if overflow || (end < len(s) && (s[end] == '.' || s[end] == 'e' || s[end] == 'E')) {
		var erange bool
		val, end, erange = strtod(s)
		if erange {
			return 0, "", false
		}
	}
	if end == 0 || math.IsNaN(val) {
		return 0, "", false
	}
	val, hint, ok := applyUnit(val, s[end:], u)
	if !ok {
		return 0, hint, false
	}
	val = rint(val)
	if val > math.MaxInt32 || val < math.MinInt32 {
		return 0, intRangeHint, false
	}
	return int64(val), "", true
}

// parseReal is PostgreSQL's parse_real: strtod, NaN refused, optional unit.
func parseReal(s string, u baseUnit) (float64, string, bool) {
	val, end, erange := strtod(s)
	if end == 0 || erange || math.IsNaN(val) {
		return 0, "", false
	}
	return applyUnit(val, s[end:], u)
}

// applyUnit handles what follows a number: white space, then nothing or a unit.
func applyUnit(val float64, rest string, u baseUnit) (float64, string, bool) {
	rest = rest[skipSpace(rest, 0):]
	if rest == "" {
		return val, "", true
	}
	if u.kind == unitNone {
		return 0, "", false
	}
	v, ok := u.convert(val, rest)
	if !ok {
		return 0, u.hint(), false
	}
	return v, "", true
}

// parseBool is PostgreSQL's parse_bool: any prefix of true, false, yes, no, at least "on"
// or "of" for on and off, and 1 or 0, case-insensitively; nothing else (no white space).
func parseBool(s string) (bool, bool) {
	if s == "" {
		return false, false
	}
	l := asciiLower(s)
	prefixOf := func(word string, minLen int) bool {
		return len(l) >= minLen && len(l) <= len(word) && word[:len(l)] == l
	}
	switch {
	case prefixOf("true", 1), prefixOf("yes", 1), prefixOf("on", 2), l == "1":
		return true, true
	case prefixOf("false", 1), prefixOf("no", 1), prefixOf("off", 2), l == "0":
		return false, true
	}
	return false, false
}

// enumValue matches an enum value case-insensitively against the listed values and the
// aliases, returning the value the server shows.
func (p Param) enumValue(s string) (string, bool) {
	for _, e := range p.EnumVals {
		if asciiFold(e, s) {
			return e, true
		}
	}
	if shown, ok := p.EnumAliases[asciiLower(s)]; ok {
		return shown, true
	}
	return "", false
}

// asciiLower folds A-Z only, as PostgreSQL's pg_strcasecmp does.
func asciiLower(s string) string {
	b := []byte(s)
	for k, ch := range b {
		if 'A' <= ch && ch <= 'Z' {
			b[k] = ch + 'a' - 'A'
		}
	}
	return string(b)
}

// asciiFold reports whether a and b are equal up to ASCII case only (pg_strcasecmp folds
// only A-Z, while strings.EqualFold also folds Unicode letters such as the Kelvin sign).
func asciiFold(a, b string) bool {
	return asciiLower(a) == asciiLower(b)
}

// FormatUnits renders n base units of parameter p with the largest unit dividing it
// ("4GB", "16MB", "20164kB", "5min"); plain n for parameters without a unit.
func (p Param) FormatUnits(n int64) string { return p.unit.format(n) }
