package client

import (
	"encoding/json"
	"testing"
	"time"
)

func TestBaseURL(t *testing.T) {
	t.Parallel()
	for in, want := range map[string]string{
		"http://10.0.0.1:8008/patroni":  "http://10.0.0.1:8008",
		"http://10.0.0.1:8008/":         "http://10.0.0.1:8008",
		"https://db.example:8008":       "https://db.example:8008",
		"http://h:1/prefix/patroni/":    "http://h:1/prefix",
		"http://h:1/patroni-not-suffix": "http://h:1/patroni-not-suffix",
	} {
		if got := BaseURL(in); got != want {
			t.Errorf("BaseURL(%q) = %q, want %q", in, got, want)
		}
	}
}

// TestWireForms: the values with a JSON form of their own read back what they write.
func TestWireForms(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		name string
		v    any
		json string
	}{
		{"lag", &Lag{Bytes: 1024}, `1024`},
		{"unknown lag", &Lag{Unknown: true}, `"unknown"`},
		{"history", &HistoryEntry{Timeline: 2, LSN: 4294967296, Reason: "failover", Timestamp: time.Date(2026, 11, 26, 3, 0, 0, 0, time.UTC), NewLeader: "n2"},
			`[2,4294967296,"failover","2026-11-26T03:00:00Z","n2"]`},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			b, err := json.Marshal(tt.v)
			if err != nil || string(b) != tt.json {
				t.Fatalf("Marshal = %s, %v; want %s", b, err, tt.json)
			}
		})
	}
	var h HistoryEntry
	if err := json.Unmarshal([]byte(`[1, 100, "no recovery target"]`), &h); err != nil || h.Timeline != 1 || h.LSN != 100 || !h.Timestamp.IsZero() {
		t.Errorf("three-element entry: %+v, %v", h, err)
	}
	var l Lag
	if err := json.Unmarshal([]byte(`"unknown"`), &l); err != nil || !l.Unknown {
		t.Errorf("unknown lag: %+v, %v", l, err)
	}
}
