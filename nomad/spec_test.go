package nomad

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"github.com/hashicorp/nomad/api"
	"github.com/hashicorp/nomad/jobspec2"
)

// spec is one job file parsed with one set of variable files.
type spec struct {
	Job  string   // the job file, relative to this directory
	Vars []string // its variable files, in order
	// TestValues marks variables made for a single test machine (every member on one
	// client): the checks that only hold on a real site are left out.
	TestValues bool
}

func (s spec) String() string {
	if len(s.Vars) == 0 {
		return s.Job
	}
	return s.Job + "+" + strings.Join(s.Vars, "+")
}

// specs lists every job file with every variables file made for it: "<job>.vars.hcl" and
// "<job>.<variant>.vars.hcl" here, and the same names under testdata/ (test values). A job
// without any is parsed with its defaults.
func specs(t *testing.T) []spec {
	t.Helper()
	jobs, err := filepath.Glob("*.nomad.hcl")
	if err != nil || len(jobs) == 0 {
		t.Fatalf("no *.nomad.hcl here (%v)", err)
	}
	var out []spec
	for _, job := range jobs {
		base := strings.TrimSuffix(job, ".nomad.hcl")
		found := false
		for _, dir := range []string{".", "testdata"} {
			vars, _ := filepath.Glob(filepath.Join(dir, base+".vars.hcl"))
			variants, _ := filepath.Glob(filepath.Join(dir, base+".*.vars.hcl"))
			for _, v := range append(vars, variants...) {
				out = append(out, spec{Job: job, Vars: []string{v}, TestValues: dir == "testdata"})
				found = true
			}
		}
		if !found {
			out = append(out, spec{Job: job})
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].String() < out[j].String() })
	return out
}

// parse runs Nomad's own job parser (jobspec2, Nomad v1.6.2) on src as the job file of s,
// strictly: an unknown attribute or block is an error, as in `nomad job run`.
func parse(s spec, src []byte) (*api.Job, error) {
	job, err := jobspec2.ParseWithConfig(&jobspec2.ParseConfig{
		Path:     s.Job,
		BaseDir:  ".",
		Body:     src,
		VarFiles: s.Vars,
		Strict:   true,
	})
	if err != nil {
		return nil, err
	}
	if job == nil {
		return nil, errors.New("the parser returned no job")
	}
	return job, nil
}

func parseFile(t *testing.T, s spec) *api.Job {
	t.Helper()
	src, err := os.ReadFile(s.Job)
	if err != nil {
		t.Fatal(err)
	}
	job, err := parse(s, src)
	if err != nil {
		t.Fatalf("%s: %v", s, err)
	}
	return job
}

// TestJobsParse: every job file parses with Nomad's parser, with each of its variable files.
func TestJobsParse(t *testing.T) {
	for _, s := range specs(t) {
		t.Run(s.String(), func(t *testing.T) {
			job := parseFile(t, s)
			if len(job.TaskGroups) == 0 {
				t.Fatalf("%s: no task group", s)
			}
		})
	}
}

// TestJobsSemantics: every job passes every check that applies to it; a job that runs ramd
// must run it the way docs/DEPLOYMENT.md describes.
func TestJobsSemantics(t *testing.T) {
	known := ramdVariables(t)
	members := 0
	for _, s := range specs(t) {
		t.Run(s.String(), func(t *testing.T) {
			job := parseFile(t, s)
			if len(memberTasks(job)) > 0 {
				members++
			}
			for _, c := range checks {
				if s.TestValues && c.SiteOnly {
					continue
				}
				if err := c.Run(job, known); err != nil {
					t.Errorf("check %s: %v", c.Name, err)
				}
			}
		})
	}
	if members < 2 {
		t.Errorf("%d job specs run ramd; want the exec and the docker variants", members)
	}
}

// fixture is a broken spec from testdata/broken: the good job file with one edit. Deriving
// it from the real file keeps every fixture in step with the spec it breaks.
type fixture struct {
	Name    string
	Check   string // the check that must fail, or "parse"
	Spec    spec
	Replace string
	With    string
}

// readFixture reads a fixture file: header lines "check: NAME", "job: FILE", "vars: FILE",
// then sections "-- replace --" and "-- with --".
func readFixture(path string) (fixture, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return fixture{}, err
	}
	f := fixture{Name: filepath.Base(path)}
	var section *string
	var header []string
	for _, line := range strings.SplitAfter(string(b), "\n") {
		switch strings.TrimSpace(line) {
		case "-- replace --":
			section = &f.Replace
			continue
		case "-- with --":
			section = &f.With
			continue
		}
		if section != nil {
			*section += line
			continue
		}
		header = append(header, line)
	}
	for _, line := range header {
		k, v, ok := strings.Cut(strings.TrimSpace(line), ":")
		if !ok || strings.HasPrefix(line, "#") {
			continue
		}
		v = strings.TrimSpace(v)
		switch k {
		case "check":
			f.Check = v
		case "job":
			f.Spec.Job = v
		case "vars":
			f.Spec.Vars = append(f.Spec.Vars, v)
		}
	}
	if f.Check == "" || f.Spec.Job == "" || f.Replace == "" {
		return f, fmt.Errorf("%s: needs check:, job:, and a -- replace -- section", path)
	}
	return f, nil
}

// TestBrokenFixtures: each broken spec under testdata/broken fails the check it names (a
// parse error for "parse"), so every check is shown to catch what it is for.
func TestBrokenFixtures(t *testing.T) {
	known := ramdVariables(t)
	paths, _ := filepath.Glob("testdata/broken/*.txt")
	if len(paths) == 0 {
		t.Fatal("no fixtures in testdata/broken")
	}
	covered := map[string]bool{}
	for _, path := range paths {
		f, err := readFixture(path)
		if err != nil {
			t.Fatal(err)
		}
		covered[f.Check] = true
		t.Run(f.Name, func(t *testing.T) {
			src, err := os.ReadFile(f.Spec.Job)
			if err != nil {
				t.Fatal(err)
			}
			if n := bytes.Count(src, []byte(f.Replace)); n != 1 {
				t.Fatalf("the text to replace occurs %d times in %s, want once:\n%s", n, f.Spec.Job, f.Replace)
			}
			broken := bytes.Replace(src, []byte(f.Replace), []byte(f.With), 1)
			job, err := parse(f.Spec, broken)
			if f.Check == "parse" {
				if err == nil {
					t.Fatalf("the parser accepted it")
				}
				t.Logf("parse error as expected: %v", err)
				return
			}
			if err != nil {
				t.Fatalf("does not parse, so it cannot test check %s: %v", f.Check, err)
			}
			c, ok := checkNamed(f.Check)
			if !ok {
				t.Fatalf("no check named %q", f.Check)
			}
			if err := c.Run(job, known); err == nil {
				t.Fatalf("check %s passed the broken spec", f.Check)
			} else {
				t.Logf("check %s fails as expected: %v", f.Check, err)
			}
		})
	}
	for _, c := range checks {
		if !covered[c.Name] {
			t.Errorf("no fixture in testdata/broken breaks check %s", c.Name)
		}
	}
}
