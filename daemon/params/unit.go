package params

import (
	"fmt"
	"math"
	"strconv"
)

// A parameter's base unit, as pg_settings shows it: a memory unit ("B", "kB", "MB", or a
// block size such as "8kB") or a time unit ("us", "ms", "s", "min"); "" for none.

// unitKind tells memory and time units apart.
type unitKind int

const (
	unitNone unitKind = iota
	unitMemory
	unitTime
)

// baseUnit is a parameter's unit resolved for conversion.
type baseUnit struct {
	kind unitKind
	name string  // as pg_settings shows it, used in range messages
	size float64 // bytes (memory) or microseconds (time) of one base unit
}

// memoryUnits and timeUnits are the unit names a value may carry, largest first, with their
// size in bytes or microseconds. Names are case-sensitive, as in PostgreSQL.
var (
	memoryUnits = []unitSize{{"TB", 1 << 40}, {"GB", 1 << 30}, {"MB", 1 << 20}, {"kB", 1 << 10}, {"B", 1}}
	timeUnits   = []unitSize{{"d", 86400e6}, {"h", 3600e6}, {"min", 60e6}, {"s", 1e6}, {"ms", 1e3}, {"us", 1}}
)

type unitSize struct {
	name string
	size float64
}

// maxUnitLen is the longest unit name PostgreSQL reads after a number (MAX_UNIT_LEN).
const maxUnitLen = 3

// Hints PostgreSQL gives for a bad unit.
const (
	memoryUnitsHint = `Valid units for this parameter are "B", "kB", "MB", "GB", and "TB".`
	timeUnitsHint   = `Valid units for this parameter are "us", "ms", "s", "min", "h", and "d".`
	intRangeHint    = "Value exceeds integer range."
)

// parseBaseUnit resolves a pg_settings unit: "", a memory unit with an optional count
// ("8kB", "16MB") or a time unit. PostgreSQL's time base units are ms, s and min; us is
// accepted for the future.
func parseBaseUnit(u string) (baseUnit, error) {
	if u == "" {
		return baseUnit{}, nil
	}
	for _, t := range timeUnits {
		if u == t.name {
			return baseUnit{kind: unitTime, name: u, size: t.size}, nil
		}
	}
	n := 0
	for n < len(u) && isDigit(u[n]) {
		n++
	}
	count := 1.0
	if n > 0 {
		c, err := strconv.Atoi(u[:n])
		if err != nil || c <= 0 {
			return baseUnit{}, fmt.Errorf("unit %q: bad count", u)
		}
		count = float64(c)
	}
	for _, m := range memoryUnits {
		if u[n:] == m.name {
			return baseUnit{kind: unitMemory, name: u, size: count * m.size}, nil
		}
	}
	return baseUnit{}, fmt.Errorf("unit %q: unknown", u)
}

// hint is the hint PostgreSQL gives when a value's unit is wrong for this base unit.
func (b baseUnit) hint() string {
	if b.kind == unitTime {
		return timeUnitsHint
	}
	return memoryUnitsHint
}

// convert applies PostgreSQL's convert_to_base_unit to value followed by unit text u (white
// space before u already skipped): u is at most maxUnitLen bytes up to white space, only
// white space may follow it, and it must be a unit of the base unit's kind. The result is
// in base units; a fractional value is first rounded to a whole number of the next smaller
// unit (e.g. "1.5GB" is 1536 MB).
func (b baseUnit) convert(value float64, u string) (float64, bool) {
	n := 0
	for n < len(u) && !cSpace(u[n]) && n < maxUnitLen {
		n++
	}
	name := u[:n]
	if skipSpace(u, n) != len(u) {
		return 0, false
	}
	table := memoryUnits
	if b.kind == unitTime {
		table = timeUnits
	}
	for k, t := range table {
		if t.name != name {
			continue
		}
		// Only units at least as fine as the base unit's smallest convertible step are
		// listed by PostgreSQL: every unit converts, so multipliers below 1 are fine.
		mult := t.size / b.size
		v := value * mult
		if k+1 < len(table) {
			next := table[k+1].size / b.size
			v = rint(v/next) * next
		}
		return v, true
	}
	return 0, false
}

// format renders a number of base units with the largest unit that divides it exactly,
// the way pgtune and people write them ("4GB", "16MB", "20164kB", "24kB" for 3 blocks).
func (b baseUnit) format(n int64) string {
	if b.kind == unitNone || n == 0 {
		return strconv.FormatInt(n, 10)
	}
	table := memoryUnits
	if b.kind == unitTime {
		table = timeUnits
	}
	total := float64(n) * b.size // exact: at most 2^31 units of at most 2^40 bytes or 86400e6 us
	for _, t := range table {
		if q := total / t.size; q == math.Trunc(q) {
			return strconv.FormatFloat(q, 'f', 0, 64) + t.name
		}
	}
	return strconv.FormatInt(n, 10)
}
