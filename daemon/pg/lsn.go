package pg

import (
	"fmt"
	"strconv"
	"strings"
)

// LSN is a PostgreSQL write-ahead log location (pg_lsn), a byte position in the WAL stream.
type LSN uint64

// String formats the LSN as PostgreSQL does: two upper-case hex halves, "16/B374D848".
func (l LSN) String() string {
	return fmt.Sprintf("%X/%X", uint32(l>>32), uint32(l))
}

// ParseLSN parses the pg_lsn text form "XXXXXXXX/XXXXXXXX" (1 to 8 hex digits per half,
// either case). Errors wrap ErrInvalidLSN.
func ParseLSN(s string) (LSN, error) {
	hi, lo, ok := strings.Cut(s, "/")
	if !ok || !isHex8(hi) || !isHex8(lo) {
		return 0, fmt.Errorf("%w: %q", ErrInvalidLSN, s)
	}
	h, err := strconv.ParseUint(hi, 16, 32)
	if err != nil {
		return 0, fmt.Errorf("%w: %q: %w", ErrInvalidLSN, s, err)
	}
	l, err := strconv.ParseUint(lo, 16, 32)
	if err != nil {
		return 0, fmt.Errorf("%w: %q: %w", ErrInvalidLSN, s, err)
	}
	return LSN(h<<32 | l), nil
}

func isHex8(s string) bool {
	if len(s) < 1 || len(s) > 8 {
		return false
	}
	for _, c := range s {
		if !('0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F') {
			return false
		}
	}
	return true
}

// parseNullLSN parses a nullable pg_lsn scanned as text; NULL is 0.
func parseNullLSN(s *string) (LSN, error) {
	if s == nil {
		return 0, nil
	}
	return ParseLSN(*s)
}
