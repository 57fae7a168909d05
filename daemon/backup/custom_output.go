package backup

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"unicode/utf8"
)

// customOutput reads the standard output of a custom command, one line at a time (see
// lineSplitter for the bounds):
//   - {"progress": "text", "percent": n}: a progress line (either key may be missing;
//     percent is clamped to 0..100, -1 when missing);
//   - {"backup": {...}}: the result of a backup (an Info);
//   - {"backups": [...], "wal_min": "...", "wal_max": "...", "system_id": n}: the result
//     of a list;
//   - {"error": "text"}: a message that goes into the error when the command fails;
//   - anything else (plain text, other JSON, a line cut at the length bound): progress
//     text, kept as it is (cut to customTextMax).
//
// A later result line replaces an earlier one. Only the goroutine feeding the
// lineSplitter touches it until the command has exited.
type customOutput struct {
	progress  func(Progress)
	backup    *Info
	list      *customList
	errMsg    string
	resultErr error // the last result line that did not decode
}

type customList struct {
	Backups  []Info     `json:"backups"`
	WALMin   string     `json:"wal_min"`
	WALMax   string     `json:"wal_max"`
	SystemID customUint `json:"system_id"`
}

// customUint is a uint64 written as a JSON number or a string of digits (a system
// identifier exceeds 2^53, which some JSON writers cannot print as a number).
type customUint uint64

func (u *customUint) UnmarshalJSON(b []byte) error {
	s := string(bytes.Trim(b, `"`))
	if s == "" || s == "null" {
		*u = 0
		return nil
	}
	n, err := strconv.ParseUint(s, 10, 64)
	if err != nil {
		return fmt.Errorf("system_id %s: not an unsigned integer", b)
	}
	*u = customUint(n)
	return nil
}

func (o *customOutput) report(p Progress) {
	if o.progress != nil {
		o.progress(p)
	}
}

func (o *customOutput) text(s string) {
	o.report(Progress{Message: cutText(s, customTextMax), Percent: -1})
}

func (o *customOutput) line(s string, truncated bool) {
	s = strings.TrimSpace(s)
	switch {
	case s == "":
		return
	case truncated && strings.HasPrefix(s, "{"):
		o.resultErr = fmt.Errorf("a line of standard output longer than %d bytes", customLineMax)
		o.text(s)
		return
	case truncated || s[0] != '{':
		o.text(s)
		return
	}
	var fields map[string]json.RawMessage
	if err := json.Unmarshal([]byte(s), &fields); err != nil {
		o.text(s)
		return
	}
	if raw, ok := fields["backup"]; ok {
		var in Info
		if err := json.Unmarshal(raw, &in); err != nil {
			o.resultErr = fmt.Errorf("result line {\"backup\": ...}: %w", err)
			return
		}
		o.backup, o.resultErr = &in, nil
		return
	}
	if _, ok := fields["backups"]; ok {
		var l customList
		if err := json.Unmarshal([]byte(s), &l); err != nil {
			o.resultErr = fmt.Errorf("result line {\"backups\": [...]}: %w", err)
			return
		}
		if len(l.Backups) > customMaxBackups {
			o.resultErr = fmt.Errorf("result line {\"backups\": [...]}: %d backups, more than %d", len(l.Backups), customMaxBackups)
			return
		}
		o.list, o.resultErr = &l, nil
		return
	}
	if raw, ok := fields["error"]; ok {
		var msg string
		if json.Unmarshal(raw, &msg) == nil && msg != "" {
			o.errMsg = cutText(msg, customTextMax)
			o.report(Progress{Message: "error: " + o.errMsg, Percent: -1})
			return
		}
	}
	_, hasText := fields["progress"]
	_, hasPct := fields["percent"]
	if !hasText && !hasPct {
		o.text(s)
		return
	}
	var p struct {
		Progress string   `json:"progress"`
		Percent  *float64 `json:"percent"`
	}
	if err := json.Unmarshal([]byte(s), &p); err != nil {
		o.text(s)
		return
	}
	pct := -1
	if p.Percent != nil {
		pct = int(min(max(*p.Percent, 0), 100))
	}
	o.report(Progress{Message: cutText(p.Progress, customTextMax), Percent: pct})
}

// cutText cuts s to at most n bytes on a rune boundary, marking the cut with "…".
func cutText(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n] + "…"
}
