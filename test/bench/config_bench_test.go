package bench

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/ramd-project/ramd/test/harness"
	"github.com/ramd-project/ramd/test/testenv"
)

// BenchmarkValidatedPatch: the cost of one validated configuration write on a live
// three-node cluster: PATCH /config with postgresql.parameters, judged against the server's
// catalog and ramd's rules, then written to Consul by CAS. 200 writes alternate work_mem;
// reported: median and p99 in milliseconds.
func BenchmarkValidatedPatch(b *testing.B) {
	c := harness.New(b, ramdBin, testenv.SharedConsul(b, shared).HTTPAddr, 3, harness.Options{})
	c.StartAll()
	p := c.WaitPrimary(120 * time.Second)
	c.WaitReplicas(120 * time.Second)
	hc := &http.Client{Timeout: 90 * time.Second}
	send := func(body string) (int, error) {
		ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
		defer cancel()
		req, _ := http.NewRequestWithContext(ctx, http.MethodPatch, p.APIURL()+"/config", strings.NewReader(body))
		resp, err := hc.Do(req)
		if err != nil {
			return 0, err
		}
		defer resp.Body.Close()
		_, _ = io.Copy(io.Discard, resp.Body)
		return resp.StatusCode, nil
	}
	// The first write waits for the catalog (built once per host and binary).
	start := time.Now()
	if code, err := send(`{"postgresql":{"parameters":{"work_mem":"4MB"}}}`); err != nil || code != http.StatusOK {
		b.Fatalf("first PATCH: %d %v", code, err)
	}
	b.Logf("first validated PATCH (catalog ready or built): %s", time.Since(start).Round(time.Millisecond))
	const writes = 200
	var d []time.Duration
	for i := range writes {
		body := fmt.Sprintf(`{"postgresql":{"parameters":{"work_mem":"%dMB"}}}`, 4+i%8)
		t0 := time.Now()
		code, err := send(body)
		if err != nil || code != http.StatusOK {
			b.Fatalf("PATCH %d: %d %v", i, code, err)
		}
		d = append(d, time.Since(t0))
	}
	sort.Slice(d, func(i, j int) bool { return d[i] < d[j] })
	ms := func(x time.Duration) float64 { return float64(x.Microseconds()) / 1000 }
	b.ReportMetric(ms(d[len(d)/2]), "median_ms")
	b.ReportMetric(ms(d[len(d)*99/100]), "p99_ms")
	b.Logf("validated PATCH /config over %d writes: median %.2f ms, p99 %.2f ms, max %.2f ms", writes, ms(d[len(d)/2]), ms(d[len(d)*99/100]), ms(d[len(d)-1]))
}
