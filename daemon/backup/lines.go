package backup

import (
	"bytes"
	"strings"
	"sync"
)

// lineSplitter is an io.Writer that cuts what a tool writes into lines and hands each one
// to fn, with bounded memory: a line longer than maxLine is cut at maxLine (fn sees
// truncated = true and the rest of that line is dropped), and after maxTotal bytes the
// remaining output is drained and dropped (fn is no longer called). A final line without a
// newline is handed over by Close (unless the total was reached). fn runs on the goroutine
// that calls Write (os/exec's copying goroutine); Write and Close are safe for concurrent
// use.
type lineSplitter struct {
	fn       func(line string, truncated bool)
	maxLine  int
	maxTotal int64

	mu       sync.Mutex // guards the fields below
	buf      []byte
	skipping bool // the current line passed maxLine: drop up to the next newline
	total    int64
	dropped  bool // maxTotal was reached
}

func newLineSplitter(maxLine int, maxTotal int64, fn func(line string, truncated bool)) *lineSplitter {
	return &lineSplitter{fn: fn, maxLine: maxLine, maxTotal: maxTotal}
}

// Write implements io.Writer; it never fails, so the tool never blocks on a full pipe.
func (s *lineSplitter) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	n := len(p)
	if s.dropped {
		return n, nil
	}
	if s.total+int64(n) > s.maxTotal {
		p = p[:max(s.maxTotal-s.total, 0)]
		s.dropped = true
	}
	s.total += int64(len(p))
	for len(p) > 0 {
		i := bytes.IndexByte(p, '\n')
		chunk := p
		if i >= 0 {
			chunk = p[:i]
		}
		if !s.skipping {
			room := s.maxLine - len(s.buf)
			if len(chunk) > room {
				s.buf = append(s.buf, chunk[:room]...)
				s.fn(strings.TrimRight(string(s.buf), "\r"), true)
				s.buf = s.buf[:0]
				s.skipping = true
			} else {
				s.buf = append(s.buf, chunk...)
			}
		}
		if i < 0 {
			break
		}
		if !s.skipping {
			s.fn(strings.TrimRight(string(s.buf), "\r"), false)
		}
		s.buf = s.buf[:0]
		s.skipping = false
		p = p[i+1:]
	}
	return n, nil
}

// Close hands over a last line that had no newline.
func (s *lineSplitter) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.buf) > 0 && !s.skipping && !s.dropped {
		s.fn(strings.TrimRight(string(s.buf), "\r"), false)
	}
	s.buf = nil
	return nil
}

// Dropped reports whether output beyond maxTotal was dropped.
func (s *lineSplitter) Dropped() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.dropped
}

// shellWord quotes s as one word for /bin/sh: unchanged when it holds only characters that
// need no quoting, else in single quotes (an inner single quote closes the quoted part, is
// escaped with a backslash, and reopens it).
func shellWord(s string) string {
	if s != "" && strings.IndexFunc(s, func(r rune) bool {
		return !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || strings.ContainsRune("_./:=@+,-", r))
	}) < 0 {
		return s
	}
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}

// archiveWord quotes s for a shell command that PostgreSQL runs as archive_command or
// restore_command: a shell word in which '%' is doubled, since PostgreSQL replaces %p,
// %f, %r and %% before the shell sees the command.
func archiveWord(s string) string { return strings.ReplaceAll(shellWord(s), "%", "%%") }
