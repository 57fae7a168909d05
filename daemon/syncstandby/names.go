package syncstandby

import (
	"fmt"
	"regexp"
	"sort"
	"strconv"
	"strings"
)

// Method is how PostgreSQL counts acknowledgements.
type Method string

// Methods.
const (
	MethodNone  Method = ""      // no synchronous replication
	MethodFirst Method = "FIRST" // the first Num listed (ramd lists exactly Num names)
	MethodAny   Method = "ANY"   // any Num of the listed
)

// Config is a synchronous_standby_names setting.
type Config struct {
	Method Method
	Num    int
	Names  []string // sorted
}

// Empty reports whether no synchronous replication is configured.
func (c Config) Empty() bool { return c.Method == MethodNone || c.Num == 0 || len(c.Names) == 0 }

// Equal compares two configurations.
func (c Config) Equal(o Config) bool {
	if c.Empty() && o.Empty() {
		return true
	}
	return c.Method == o.Method && c.Num == o.Num && strings.Join(c.Names, ",") == strings.Join(o.Names, ",")
}

// String renders the setting's value: FIRST 1 ("a") or ANY 2 ("a","b","c"), "" when empty.
func (c Config) String() string {
	if c.Empty() {
		return ""
	}
	q := make([]string, len(c.Names))
	for i, n := range c.Names {
		q[i] = strconv.Quote(n)
	}
	return fmt.Sprintf("%s %d (%s)", c.Method, c.Num, strings.Join(q, ","))
}

var ssnRe = regexp.MustCompile(`^\s*(?i:(FIRST|ANY)\s+)?(\d+)\s*\((.*)\)\s*$`)

// Parse reads a synchronous_standby_names value. Besides ramd's own forms it accepts
// PostgreSQL's legacy "a, b" (FIRST 1) and "N (a, b)" (FIRST N); "*" is refused.
func Parse(s string) (Config, error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return Config{}, nil
	}
	var c Config
	list := s
	if m := ssnRe.FindStringSubmatch(s); m != nil {
		c.Method = MethodFirst
		if strings.EqualFold(m[1], "ANY") {
			c.Method = MethodAny
		}
		n, err := strconv.Atoi(m[2])
		if err != nil {
			return Config{}, fmt.Errorf("syncstandby: parse %q: %w", s, err)
		}
		c.Num, list = n, m[3]
	} else {
		c.Method, c.Num = MethodFirst, 1
	}
	for _, part := range strings.Split(list, ",") {
		name := strings.TrimSpace(part)
		if uq, err := strconv.Unquote(name); err == nil {
			name = uq
		}
		if name == "" {
			continue
		}
		if name == "*" {
			return Config{}, fmt.Errorf("syncstandby: parse %q: '*' is not supported", s)
		}
		c.Names = append(c.Names, name)
	}
	sort.Strings(c.Names)
	if c.Method == MethodFirst && len(c.Names) > c.Num {
		// FIRST N over more names: ramd cannot know who acknowledged; treat the setting as
		// what it is, the caller will replace it.
		return c, nil
	}
	return c, nil
}
