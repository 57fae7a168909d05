package faults

import (
	"errors"
	"testing"
	"time"
)

func TestAnalyseDNS(t *testing.T) {
	t.Parallel()
	t0 := time.Date(2026, 12, 4, 20, 0, 0, 0, time.UTC)
	at := func(ms int) time.Time { return t0.Add(time.Duration(ms) * time.Millisecond) }
	s := func(ms int, addrs ...string) dnsSample { return dnsSample{at: at(ms), addrs: addrs} }
	fail := dnsSample{at: at(50), err: errors.New("timeout")}
	const oldA, newA = "10.0.0.10", "10.0.0.11"
	for _, tt := range []struct {
		name            string
		samples         []dnsSample
		newAddr         string
		fault, newFirst time.Time
		want            dnsFindings
	}{
		{"steady primary", []dnsSample{s(0, oldA), s(100, oldA), fail}, "", at(0), time.Time{},
			dnsFindings{answered: 2, failed: 1}},
		{"clean switch", []dnsSample{s(0, oldA), s(100), s(200, newA), s(300, newA)}, newA, at(50), at(150),
			dnsFindings{newAt: 150 * time.Millisecond, answered: 4}},
		{"both named for 200 ms, old named after the new one wrote", []dnsSample{s(0, oldA), s(100, newA, oldA), s(200, newA, oldA), s(300, newA)},
			newA, at(50), at(150), dnsFindings{twoPrimaries: 200 * time.Millisecond, oldAfterNew: 50 * time.Millisecond, newAt: 250 * time.Millisecond, answered: 4}},
		{"both named until the end", []dnsSample{s(0, oldA), s(100, newA, oldA), s(400, newA, oldA)},
			newA, at(50), at(150), dnsFindings{twoPrimaries: 300 * time.Millisecond, oldAfterNew: 250 * time.Millisecond, answered: 3}},
		{"a sample before the fault does not count for the new primary", []dnsSample{s(0, newA), s(100, oldA), s(200, newA)},
			newA, at(50), at(150), dnsFindings{newAt: 150 * time.Millisecond, answered: 3}},
	} {
		if got := analyseDNS(tt.samples, oldA, tt.newAddr, tt.fault, tt.newFirst); got != tt.want {
			t.Errorf("%s: %+v, want %+v", tt.name, got, tt.want)
		}
	}
}
