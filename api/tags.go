package api

import (
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"
)

// booleanTags are Patroni's predefined tags that only count when set to a true value; a
// false one is left out of the published tags and cannot be matched by a tag_ filter.
var booleanTags = []string{"clonefrom", "nofailover", "noloadbalance", "nosync", "nostream"}

// effectiveTags returns tags without the predefined boolean tags that are not true (Patroni's
// _filter_tags). It returns nil when nothing is left.
func effectiveTags(tags map[string]any) map[string]any {
	var out map[string]any
	for k, v := range tags {
		if isBooleanTag(k) && !truthy(v) {
			continue
		}
		if out == nil {
			out = make(map[string]any, len(tags))
		}
		out[k] = v
	}
	return out
}

// isBooleanTag reports whether name is one of Patroni's predefined boolean tags.
func isBooleanTag(name string) bool { return slices.Contains(booleanTags, name) }

// truthy reads a tag value as a boolean: true, a non-zero number, or a string that is not
// one of Patroni's false spellings (off, false, no, 0) nor empty.
func truthy(v any) bool {
	switch v := v.(type) {
	case nil:
		return false
	case bool:
		return v
	case string:
		switch strings.ToLower(strings.TrimSpace(v)) {
		case "", "off", "false", "no", "0":
			return false
		}
		return true
	case float64:
		return v != 0
	case float32:
		return v != 0
	case int:
		return v != 0
	case int64:
		return v != 0
	case int32:
		return v != 0
	case uint:
		return v != 0
	case uint64:
		return v != 0
	case uint32:
		return v != 0
	default:
		return true
	}
}

// tagString is the form a tag value is compared in by tag_ filters: strings as they are,
// anything else as Python's str(v).lower(), with whole numbers written without a fraction
// (a JSON 1 decodes to float64 but was an integer in the operator's config).
func tagString(v any) string {
	switch v := v.(type) {
	case string:
		return v
	case bool:
		return strconv.FormatBool(v)
	case float64:
		return formatFloat(v)
	case float32:
		return formatFloat(float64(v))
	default:
		return strings.ToLower(fmt.Sprint(v))
	}
}

func formatFloat(f float64) string {
	if f == math.Trunc(f) && math.Abs(f) < 1e15 {
		return strconv.FormatInt(int64(f), 10)
	}
	return strings.ToLower(strconv.FormatFloat(f, 'g', -1, 64))
}
