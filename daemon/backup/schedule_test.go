package backup

import (
	"testing"
	"time"
)

func TestDue(t *testing.T) {
	t.Parallel()
	at := func(s string) time.Time {
		v, err := time.Parse(time.RFC3339, s)
		if err != nil {
			t.Fatal(err)
		}
		return v
	}
	tests := []struct {
		name      string
		spec      string
		last, now string
		want      string // "" when it must not fire
	}{
		{"before the first tick", "0 * * * *", "2026-01-01T10:00:00Z", "2026-01-01T10:59:59Z", ""},
		{"exactly at the tick", "0 * * * *", "2026-01-01T10:00:00Z", "2026-01-01T11:00:00Z", "2026-01-01T11:00:00Z"},
		{"just after the tick", "0 * * * *", "2026-01-01T10:00:00Z", "2026-01-01T11:00:05Z", "2026-01-01T11:00:00Z"},
		{"the tick fired already", "0 * * * *", "2026-01-01T11:00:00Z", "2026-01-01T11:30:00Z", ""},
		{"missed ticks fire once, for the latest", "0 * * * *", "2026-01-01T10:00:00Z", "2026-01-02T03:10:00Z", "2026-01-02T03:00:00Z"},
		{"seconds field", "30 0 * * * *", "2026-01-01T10:00:00Z", "2026-01-01T10:00:31Z", "2026-01-01T10:00:30Z"},
		{"descriptor", "@daily", "2026-01-01T10:00:00Z", "2026-01-02T00:00:01Z", "2026-01-02T00:00:00Z"},
		{"weekly on sunday", "0 1 * * 0", "2026-01-01T00:00:00Z", "2026-01-04T01:00:00Z", "2026-01-04T01:00:00Z"},
		{"a new schedule does not fire for the past", "0 1 * * 0", "2026-01-04T12:00:00Z", "2026-01-05T00:00:00Z", ""},
		{"every second over a long outage", "* * * * * *", "2026-01-01T00:00:00Z", "2026-01-03T00:00:00Z", "2026-01-03T00:00:00Z"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			tick, fire, err := Due(tt.spec, at(tt.last), at(tt.now))
			if err != nil {
				t.Fatal(err)
			}
			if fire != (tt.want != "") {
				t.Fatalf("fire = %v (tick %s), want %q", fire, tick, tt.want)
			}
			if fire && !tick.Equal(at(tt.want)) {
				t.Errorf("tick %s, want %s", tick, tt.want)
			}
			if fire {
				// Firing records the tick: asking again at the same instant never fires twice.
				if _, again, _ := Due(tt.spec, tick, at(tt.now)); again {
					t.Error("fired twice for one tick")
				}
			}
		})
	}
	if _, _, err := Due("every sunday", time.Now(), time.Now()); err == nil {
		t.Error("a bad expression must be an error")
	}
}
