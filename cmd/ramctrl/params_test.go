package main

import (
	"bytes"
	"context"
	"strings"
	"testing"

	"github.com/ramd-project/ramd/daemon"
	"github.com/ramd-project/ramd/daemon/params"
)

// The members of the ramctrl tests serve the parameter routes from a fixed catalog with the
// real validator and tuning.
func (n *memNode) Catalog(context.Context) (*params.Catalog, error) {
	return params.NewCatalog(150018, []params.Param{
		{Name: "work_mem", Context: params.ContextUser, Type: "integer", Unit: "kB", Min: 64, Max: 2147483647, BootVal: "4096", ResetVal: "4096"},
		{Name: "shared_buffers", Context: params.ContextPostmaster, Type: "integer", Unit: "8kB", Min: 16, Max: 1073741823, BootVal: "16384", ResetVal: "16384"},
	})
}

func (n *memNode) ReviewParameters(ctx context.Context, p map[string]string) (params.Report, error) {
	c, err := n.Catalog(ctx)
	if err != nil {
		return params.Report{}, err
	}
	return params.Review(c, p, params.Facts{MemoryBytes: 16 << 30, Members: 3}), nil
}

func (n *memNode) TuneParameters(_ context.Context, r daemon.TuneRequest) (daemon.Tuning, error) {
	in := params.TuneInput{MemoryBytes: 16 << 30, CPUs: 8, Storage: params.StorageSSD, Major: 15, Workload: params.WorkloadWeb}
	s, err := params.Tune(in)
	if err != nil {
		return daemon.Tuning{}, err
	}
	out := daemon.Tuning{Input: in}
	for _, x := range s {
		cur := ""
		if x.Name == "work_mem" {
			cur = x.Value // already in force: not a change
		}
		out.Suggestions = append(out.Suggestions, daemon.TunedParameter{Suggestion: x, Current: cur})
	}
	return out, nil
}

func TestParams(t *testing.T) {
	t.Parallel()
	srv := startAPI(t, "n1")
	runIt := func(args ...string) (int, string, string) {
		var out, errb bytes.Buffer
		code := run(context.Background(), append(args, "--api", srv.URL), "", &out, &errb)
		return code, out.String(), errb.String()
	}
	if code, out, errs := runIt("params", "list"); code != exitOK || !strings.Contains(out, "shared_buffers") || !strings.Contains(out, "work_mem") {
		t.Fatalf("params list: %d %s %s", code, out, errs)
	}
	if code, out, _ := runIt("params", "show", "work_mem"); code != exitOK || !strings.Contains(out, "range: 64 .. 2147483647 kB") {
		t.Errorf("params show: %d %s", code, out)
	}
	if code, _, errs := runIt("params", "show", "nosuch"); code != exitError || !strings.Contains(errs, "unrecognized configuration parameter") {
		t.Errorf("params show nosuch: %d %s", code, errs)
	}
	if code, out, _ := runIt("params", "validate", "work_mem=8MB"); code != exitOK || !strings.Contains(out, "ok") {
		t.Errorf("params validate work_mem=8MB: %d %s", code, out)
	}
	if code, out, _ := runIt("params", "validate", "work_mem=-5"); code != exitError || !strings.Contains(out, "outside the valid range") {
		t.Errorf("params validate work_mem=-5: %d %s", code, out)
	}
	if code, _, _ := runIt("params", "validate", "work_mem"); code != exitUsage {
		t.Errorf("params validate without a value: %d", code)
	}
	code, out, errs := runIt("params", "tune", "--apply", "--force")
	if code != exitOK || !strings.Contains(out, "shared_buffers") || !strings.Contains(out, "applied") {
		t.Fatalf("params tune --apply: %d %s %s", code, out, errs)
	}
	reqs := srv.requests()
	last := reqs[len(reqs)-1]
	if last.Method != "PATCH" || last.IfMatch == "" || !strings.Contains(string(last.Body), `"shared_buffers":"4GB"`) || strings.Contains(string(last.Body), `"work_mem"`) {
		t.Errorf("tune --apply sent %s (If-Match %q); want the changed suggestions with If-Match", last, last.IfMatch)
	}
}
