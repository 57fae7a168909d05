package nomad

import (
	"errors"
	"fmt"
	"net"
	"os"
	"path"
	"path/filepath"
	"regexp"
	"strings"
	"time"

	"github.com/hashicorp/nomad/api"
)

// check is one semantic rule for the job specs. Rules about ramd members apply to the tasks
// that run ramd (their env sets RAMD_SCOPE); the rest apply to every job.
type check struct {
	Name string
	// SiteOnly rules hold on a real site but not for test values that put every member on
	// one machine (testdata/*.vars.hcl).
	SiteOnly bool
	Run      func(job *api.Job, known map[string]variable) error
}

var checks = []check{
	{Name: "distinct_hosts", SiteOnly: true, Run: checkDistinctHosts},
	{Name: "volume", Run: checkVolume},
	{Name: "kill", Run: checkKill},
	{Name: "update", Run: checkUpdate},
	{Name: "reschedule", Run: checkReschedule},
	{Name: "variables", Run: checkVariables},
	{Name: "secrets", Run: checkSecrets},
	{Name: "services", Run: checkServices},
	{Name: "ports", SiteOnly: true, Run: checkPorts},
}

func checkNamed(name string) (check, bool) {
	for _, c := range checks {
		if c.Name == name {
			return c, true
		}
	}
	return check{}, false
}

// member is a task that runs ramd, with its group.
type member struct {
	Group *api.TaskGroup
	Task  *api.Task
	Env   map[string]string // env block and env templates together
}

// memberTasks finds the tasks that run ramd.
func memberTasks(job *api.Job) []member {
	var out []member
	for _, g := range job.TaskGroups {
		for _, t := range g.Tasks {
			env := taskEnv(t)
			if _, ok := env["RAMD_SCOPE"]; ok {
				out = append(out, member{Group: g, Task: t, Env: env})
			}
		}
	}
	return out
}

// envLine is a KEY=value line of an env template.
var envLine = regexp.MustCompile(`^\s*([A-Za-z_][A-Za-z0-9_]*)=(.*)$`)

// templateEnv returns the KEY=value lines of the task's env templates (value as written,
// template actions included).
func templateEnv(t *api.Task) map[string]string {
	out := map[string]string{}
	for _, tpl := range t.Templates {
		if tpl.Envvars == nil || !*tpl.Envvars || tpl.EmbeddedTmpl == nil {
			continue
		}
		for _, line := range strings.Split(*tpl.EmbeddedTmpl, "\n") {
			if m := envLine.FindStringSubmatch(line); m != nil {
				out[m[1]] = m[2]
			}
		}
	}
	return out
}

func taskEnv(t *api.Task) map[string]string {
	env := map[string]string{}
	for k, v := range t.Env {
		env[k] = v
	}
	for k, v := range templateEnv(t) {
		env[k] = v
	}
	return env
}

// eachMember runs f on every ramd task and joins the errors, naming the task.
func eachMember(job *api.Job, f func(m member) error) error {
	var errs []error
	for _, m := range memberTasks(job) {
		if err := f(m); err != nil {
			errs = append(errs, fmt.Errorf("group %s task %s: %w", str(m.Group.Name), m.Task.Name, err))
		}
	}
	return errors.Join(errs...)
}

func str(p *string) string {
	if p == nil {
		return ""
	}
	return *p
}

// checkDistinctHosts: one member per client, at the job or the group level.
func checkDistinctHosts(job *api.Job, _ map[string]variable) error {
	return eachMember(job, func(m member) error {
		for _, c := range append(append([]*api.Constraint{}, job.Constraints...), m.Group.Constraints...) {
			if c.Operand == "distinct_hosts" && (c.RTarget == "" || c.RTarget == "true") {
				return nil
			}
		}
		return errors.New("no distinct_hosts constraint: two members could share a client and fail together")
	})
}

// checkVolume: the data directory lies on a per-allocation volume of the group, mounted
// where RAMD_DATA_DIR points (raw_exec cannot mount: its data directory is a host path per
// allocation index, and the group still requests the volume so the member is placed beside
// it).
func checkVolume(job *api.Job, _ map[string]variable) error {
	return eachMember(job, func(m member) error {
		dataDir := m.Env["RAMD_DATA_DIR"]
		if dataDir == "" {
			return errors.New("RAMD_DATA_DIR is not set")
		}
		vols := map[string]*api.VolumeRequest{}
		for name, v := range m.Group.Volumes {
			if v.PerAlloc {
				vols[name] = v
			}
		}
		if len(vols) == 0 {
			return errors.New("the group requests no per_alloc volume: a member could start on a client without its data")
		}
		if m.Task.Driver == "raw_exec" {
			if !path.IsAbs(dataDir) || !strings.Contains(dataDir, "${NOMAD_ALLOC_INDEX}") {
				return fmt.Errorf("raw_exec: RAMD_DATA_DIR=%q must be an absolute host path per allocation index", dataDir)
			}
			return nil
		}
		for _, vm := range m.Task.VolumeMounts {
			if vm.Volume == nil || vm.Destination == nil || vols[*vm.Volume] == nil {
				continue
			}
			if rel, err := filepath.Rel(*vm.Destination, dataDir); err == nil && !strings.HasPrefix(rel, "..") && rel != "." {
				return nil
			}
		}
		return fmt.Errorf("RAMD_DATA_DIR=%q is not below the mount of a per_alloc volume (it must be a directory inside the mount, which initdb creates)", dataDir)
	})
}

// handoverMargin is what kill_timeout must leave beyond RAMD_HANDOVER_WAIT: PostgreSQL's
// fast shutdown (a checkpoint) and ramd's Consul clean-up.
const handoverMargin = 10 * time.Second

// checkKill: SIGTERM (ramd's graceful stop: a primary hands over), with time for it.
func checkKill(job *api.Job, known map[string]variable) error {
	return eachMember(job, func(m member) error {
		if sig := m.Task.KillSignal; sig != "SIGTERM" && sig != "SIGINT" {
			return fmt.Errorf("kill_signal %q: ramd hands over on SIGTERM (or SIGINT) only", sig)
		}
		wait := m.Env["RAMD_HANDOVER_WAIT"]
		if wait == "" {
			wait = known["RAMD_HANDOVER_WAIT"].Default
		}
		d, err := time.ParseDuration(wait)
		if err != nil {
			return fmt.Errorf("RAMD_HANDOVER_WAIT=%q: %w", wait, err)
		}
		if m.Task.KillTimeout == nil || *m.Task.KillTimeout < d+handoverMargin {
			return fmt.Errorf("kill_timeout %v must be at least RAMD_HANDOVER_WAIT (%v) + %v", m.Task.KillTimeout, d, handoverMargin)
		}
		return nil
	})
}

// checkUpdate: one member at a time, the next only after the new one is ready.
func checkUpdate(job *api.Job, _ map[string]variable) error {
	return eachMember(job, func(m member) error {
		u := m.Group.Update
		if u == nil {
			u = job.Update
		}
		switch {
		case u == nil:
			return errors.New("no update block")
		case u.MaxParallel == nil || *u.MaxParallel != 1:
			return errors.New("update.max_parallel must be 1")
		case str(u.HealthCheck) != "checks":
			return fmt.Errorf("update.health_check %q: must be \"checks\" (gated on /readiness)", str(u.HealthCheck))
		case u.AutoRevert != nil && *u.AutoRevert:
			return errors.New("update.auto_revert would restart every member again on its own")
		case u.Canary != nil && *u.Canary > 0:
			return errors.New("update.canary: a canary member would share a member's data volume")
		}
		if mg := m.Group.Migrate; mg == nil || mg.MaxParallel == nil || *mg.MaxParallel != 1 {
			return errors.New("migrate.max_parallel must be 1 (node drains)")
		}
		for _, s := range m.Group.Services {
			for _, c := range s.Checks {
				if c.Path == "/readiness" && c.OnUpdate != "ignore" && c.OnUpdate != "ignore_warnings" {
					return nil
				}
			}
		}
		return errors.New("no service check on /readiness gates the deployment")
	})
}

// checkReschedule: a member restarts in place and is never placed elsewhere by Nomad.
func checkReschedule(job *api.Job, _ map[string]variable) error {
	return eachMember(job, func(m member) error {
		r := m.Group.ReschedulePolicy
		if r == nil || r.Attempts == nil || *r.Attempts != 0 || (r.Unlimited != nil && *r.Unlimited) {
			return errors.New("reschedule must be attempts = 0, unlimited = false: the data cannot follow a member to another client")
		}
		if rp := m.Group.RestartPolicy; rp == nil || str(rp.Mode) != "delay" {
			return errors.New(`restart.mode must be "delay": a member keeps restarting in place, beside its data`)
		}
		return nil
	})
}

// checkVariables: ramd's task sets only variables ramd knows (plus OTEL_*), each once, and
// the ones it requires.
func checkVariables(job *api.Job, known map[string]variable) error {
	return eachMember(job, func(m member) error {
		var errs []error
		tpl := templateEnv(m.Task)
		for k := range m.Env {
			if _, ok := known[k]; !ok && !strings.HasPrefix(k, "OTEL_") {
				errs = append(errs, fmt.Errorf("%s is not a ramd variable (ramd --help)", k))
			}
			if _, inEnv := m.Task.Env[k]; inEnv && tpl[k] != "" {
				errs = append(errs, fmt.Errorf("%s is set both in env and in a template", k))
			}
		}
		for k, v := range known {
			if v.Required && m.Env[k] == "" {
				errs = append(errs, fmt.Errorf("%s is required", k))
			}
		}
		return errors.Join(errs...)
	})
}

// secretName matches variables that hold secrets.
var secretName = regexp.MustCompile(`(?i)(PASSWORD|TOKEN|SECRET|PASSWD)$`)

// checkSecrets: no secret in plain text. A secret variable is only ever set by a template
// from Nomad Variables or Vault, never in env or meta.
func checkSecrets(job *api.Job, _ map[string]variable) error {
	var errs []error
	for k, v := range job.Meta {
		if secretName.MatchString(k) {
			errs = append(errs, fmt.Errorf("job meta %s=%q", k, v))
		}
	}
	for _, g := range job.TaskGroups {
		for k, v := range g.Meta {
			if secretName.MatchString(k) {
				errs = append(errs, fmt.Errorf("group %s meta %s=%q", str(g.Name), k, v))
			}
		}
		for _, t := range g.Tasks {
			for k := range t.Env {
				if secretName.MatchString(k) {
					errs = append(errs, fmt.Errorf("task %s: %s in env (plain text in the job); use a template from Nomad Variables", t.Name, k))
				}
			}
			for k, v := range templateEnv(t) {
				if secretName.MatchString(k) && !strings.Contains(v, "{{") {
					errs = append(errs, fmt.Errorf("task %s: %s has a literal value in a template; read it from nomadVar", t.Name, k))
				}
			}
			for _, tpl := range t.Templates {
				data := str(tpl.EmbeddedTmpl)
				if strings.Contains(data, "{{") && !strings.Contains(data, "nomadVar") && !strings.Contains(data, "secret ") {
					errs = append(errs, fmt.Errorf("task %s: template %s reads neither Nomad Variables nor Vault", t.Name, str(tpl.DestPath)))
				}
			}
		}
	}
	return errors.Join(errs...)
}

// roleTags are the tags ramd sets on its own Consul service (routing/).
var roleTags = []string{"primary", "master", "replica", "standby-leader", "sync", "quorum", "async"}

// checkServices: ramd alone registers PostgreSQL in Consul. A service of the job may carry
// only ramd's API with its health checks; it is never named like ramd's service, never on
// the PostgreSQL port, never with a role tag, and its check paths exist in ramd's API.
func checkServices(job *api.Job, _ map[string]variable) error {
	return eachMember(job, func(m member) error {
		pgName := m.Env["RAMD_SERVICE_NAME"]
		if pgName == "" {
			pgName = m.Env["RAMD_SCOPE"]
		}
		pgPort := portLabel(m.Env["RAMD_PG_PORT"])
		services := append(append([]*api.Service{}, m.Group.Services...), m.Task.Services...)
		for _, s := range services {
			if s.Name == pgName {
				return fmt.Errorf("service %q has the name of ramd's PostgreSQL service", s.Name)
			}
			if pgPort != "" && s.PortLabel == pgPort {
				return fmt.Errorf("service %q is on the PostgreSQL port; ramd registers PostgreSQL itself", s.Name)
			}
			for _, tag := range s.Tags {
				for _, r := range roleTags {
					if tag == r {
						return fmt.Errorf("service %q carries ramd's role tag %q", s.Name, tag)
					}
				}
			}
			for _, c := range s.Checks {
				if c.Type != "http" {
					return fmt.Errorf("service %q: check %q is %s; only ramd's HTTP health checks belong here", s.Name, c.Name, c.Type)
				}
				if err := apiHasPath(c.Path); err != nil {
					return fmt.Errorf("service %q check %q: %w", s.Name, c.Name, err)
				}
				// Nomad's server refuses this pair (found by the end-to-end test's validate).
				if c.CheckRestart != nil && c.OnUpdate == "ignore" {
					return fmt.Errorf("service %q check %q: on_update \"ignore\" is not compatible with check_restart", s.Name, c.Name)
				}
			}
		}
		return nil
	})
}

// apiHasPath checks that ramd's API (../api) serves path as a health endpoint.
func apiHasPath(p string) error {
	src, err := os.ReadFile("../api/health.go")
	if err != nil {
		return err
	}
	if !strings.Contains(string(src), fmt.Sprintf("%q", p)) {
		return fmt.Errorf("path %q is not a health endpoint of ramd's API (api/health.go)", p)
	}
	return nil
}

// portLabel returns the label of "${NOMAD_PORT_<label>}" or "${NOMAD_ADDR_<label>}".
func portLabel(v string) string {
	for _, prefix := range []string{"${NOMAD_PORT_", "${NOMAD_ADDR_"} {
		if rest, ok := strings.CutPrefix(v, prefix); ok {
			return strings.TrimSuffix(rest, "}")
		}
	}
	return ""
}

// checkPorts: PostgreSQL and the API listen on the ports the group reserves, which default
// to ramd's own defaults (5432, 8008): clients and HAProxy configurations expect them.
func checkPorts(job *api.Job, known map[string]variable) error {
	return eachMember(job, func(m member) error {
		ports := map[string]int{}
		for _, n := range m.Group.Networks {
			for _, p := range append(append([]api.Port{}, n.ReservedPorts...), n.DynamicPorts...) {
				ports[p.Label] = p.Value
			}
		}
		_, apiDefault, err := net.SplitHostPort(known["RAMD_API_LISTEN"].Default)
		if err != nil {
			return fmt.Errorf("ramd's default RAMD_API_LISTEN: %w", err)
		}
		for _, want := range []struct{ env, def string }{
			{"RAMD_PG_PORT", known["RAMD_PG_PORT"].Default},
			{"RAMD_API_LISTEN", apiDefault},
		} {
			label := portLabel(m.Env[want.env])
			v, ok := ports[label]
			if !ok {
				return fmt.Errorf("%s=%q is not a port of the group's network", want.env, m.Env[want.env])
			}
			if fmt.Sprint(v) != want.def {
				return fmt.Errorf("%s: port %q is %d, want ramd's default %s", want.env, label, v, want.def)
			}
		}
		return nil
	})
}
