package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/ramd-project/ramd/api/client"
)

// jobPoll is how often a followed job is read.
const jobPoll = 500 * time.Millisecond

// follow prints the phases of job id as they are reached until it ends or timeout passes.
// It returns exitOK when the job succeeded.
func follow(ctx context.Context, c *client.Client, id string, timeout time.Duration, stdout, stderr io.Writer) int {
	deadline := time.Now().Add(timeout)
	shown, progress := 0, ""
	for time.Now().Before(deadline) {
		if j, err := c.Job(ctx, id); err == nil {
			for ; shown < len(j.Phases); shown++ {
				p := j.Phases[shown]
				fmt.Fprintf(stdout, "%s  %-40s %s\n", p.At.Local().Format("15:04:05.000"), p.Name, p.Node)
			}
			if b := j.Backup; b != nil && b.Progress != "" && b.Progress != progress {
				progress = b.Progress
				fmt.Fprintf(stdout, "%s  %s\n", time.Now().Format("15:04:05.000"), progress)
			}
			if b := j.Backup; b != nil && j.State == client.JobSucceeded && b.Timeline > 0 {
				fmt.Fprintf(stdout, "restored %s: the cluster runs on timeline %d\n", firstOr(b.Label, "the latest backup"), b.Timeline)
			} else if b != nil && j.State == client.JobSucceeded && b.Label != "" {
				fmt.Fprintf(stdout, "backup %s (%s): lsn %s..%s, wal %s..%s, %s\n", b.Label, b.Type, b.StartLSN, b.StopLSN, b.WALStart, b.WALStop, humanBytes(b.Size))
			}
			if b := j.Backup; b != nil && j.State == client.JobFailed && b.Output != "" {
				fmt.Fprintf(stderr, "%s output:\n%s\n", b.Tool, b.Output)
			}
			switch j.State {
			case client.JobSucceeded:
				fmt.Fprintf(stdout, "%s %s succeeded\n", j.Kind, id)
				return exitOK
			case client.JobFailed:
				fmt.Fprintf(stderr, "ramctrl: %s %s failed: %s\n", j.Kind, id, j.Error)
				return exitError
			}
		}
		select {
		case <-ctx.Done():
			fmt.Fprintf(stderr, "ramctrl: interrupted; the job goes on: GET /api/v1/jobs/%s\n", id)
			return exitError
		case <-time.After(jobPoll):
		}
	}
	fmt.Fprintf(stderr, "ramctrl: job %s still running after %s; follow GET /api/v1/jobs/%s\n", id, timeout, id)
	return exitError
}

// memberClients returns a client for each named member (all members when names is empty),
// from the api_url in /cluster.
func memberClients(ctx context.Context, c *client.Client, names []string) (map[string]*client.Client, []string, error) {
	cl, err := c.Cluster(ctx)
	if err != nil {
		return nil, nil, err
	}
	urls := map[string]string{}
	var all []string
	for _, m := range cl.Members {
		urls[m.Name] = m.BaseURL()
		all = append(all, m.Name)
	}
	// patronictl takes the cluster's name before the members: drop it when it is no member.
	if len(names) > 0 && names[0] == cl.Scope {
		if _, isMember := urls[names[0]]; !isMember {
			names = names[1:]
		}
	}
	if len(names) == 0 {
		names = all
	}
	out := map[string]*client.Client{}
	for _, n := range names {
		u, ok := urls[n]
		if !ok || u == "" {
			return nil, nil, fmt.Errorf("no member %q in the cluster (members: %s)", n, strings.Join(all, ", "))
		}
		out[n] = c.At(u)
	}
	return out, names, nil
}

// runRestart restarts members (POST /restart on each, with Patroni's filters and schedule),
// or, without member names, the whole cluster as a rolling restart job.
func runRestart(ctx context.Context, args []string, envAPI string, stdin io.Reader, stdout, stderr io.Writer) int {
	o := newOptions("restart", stderr, "")
	force := o.fs.Bool("force", false, "do not ask for confirmation")
	pending := o.fs.Bool("pending", false, "only members whose settings wait for a restart")
	role := o.fs.String("role", "", "members: only those in this role (primary or replica)")
	pgVersion := o.fs.String("pg-version", "", "members: only those running an older PostgreSQL (e.g. 16.2)")
	scheduled := o.fs.String("scheduled", "", "members: RFC 3339 time to restart at")
	inPlace := o.fs.Bool("in-place", false, "cluster: restart the primary where it is (short write outage) instead of switching over first")
	timeout := o.fs.Duration("timeout", 30*time.Minute, "cluster: how long to follow the rolling restart")
	members, code, ok := parseWithMembers(o, args)
	if !ok {
		return code
	}
	c, code, ok := o.client(ctx, envAPI)
	if !ok {
		return code
	}
	if len(members) == 0 {
		if *role != "" || *pgVersion != "" || *scheduled != "" {
			fmt.Fprintln(stderr, "ramctrl restart: --role, --pg-version and --scheduled need member names")
			return exitUsage
		}
		what := "restart every member of the cluster, one at a time"
		if !*force && !confirm(stdin, stderr, what) {
			fmt.Fprintln(stderr, "ramctrl: aborted")
			return exitError
		}
		res, err := c.RollingRestart(ctx, client.RollingRestartRequest{RestartPending: *pending, InPlace: *inPlace})
		return startJob(ctx, res, err, true, *timeout, stdout, stderr)
	}
	req := client.RestartRequest{RestartPending: *pending, Role: *role, PostgresVersion: *pgVersion}
	if *scheduled != "" {
		if _, err := time.Parse(time.RFC3339, *scheduled); err != nil {
			fmt.Fprintf(stderr, "ramctrl restart: --scheduled must be RFC 3339 with a zone, e.g. 2026-12-01T03:00:00Z: %v\n", err)
			return exitUsage
		}
		req.Schedule = *scheduled
	}
	clients, names, err := memberClients(ctx, c, members)
	if err != nil {
		fmt.Fprintf(stderr, "ramctrl: %v\n", err)
		return exitError
	}
	if !*force && !confirm(stdin, stderr, "restart "+strings.Join(names, ", ")) {
		fmt.Fprintln(stderr, "ramctrl: aborted")
		return exitError
	}
	return eachMember(clients, names, func(c *client.Client) (client.Result, error) { return c.Restart(ctx, req) }, stdout, stderr)
}

// eachMember runs op on each member in turn and prints each answer; any refusal makes the
// exit code 1.
func eachMember(clients map[string]*client.Client, names []string, op func(*client.Client) (client.Result, error), stdout, stderr io.Writer) int {
	code := exitOK
	for _, n := range names {
		res, err := op(clients[n])
		var refused *client.Error
		switch {
		case errors.As(err, &refused):
			fmt.Fprintf(stderr, "%s: refused (%s): %s\n", n, refused.Status, refused.Reason())
			code = exitError
		case err != nil:
			fmt.Fprintf(stderr, "%s: %v\n", n, err)
			code = exitError
		default:
			fmt.Fprintf(stdout, "%s: %s\n", n, res.Message)
		}
	}
	return code
}

// runReload makes the named members (all when none) reload their PostgreSQL configuration.
func runReload(ctx context.Context, args []string, envAPI string, stdout, stderr io.Writer) int {
	o := newOptions("reload", stderr, "")
	clients, names, code, ok := o.members(ctx, args, envAPI, "")
	if !ok {
		return code
	}
	return eachMember(clients, names, func(c *client.Client) (client.Result, error) { return c.Reload(ctx) }, stdout, stderr)
}

// runReinit wipes a replica's data directory and clones it again, following the job.
func runReinit(ctx context.Context, args []string, envAPI string, stdin io.Reader, stdout, stderr io.Writer) int {
	o := newOptions("reinit", stderr, "")
	force := o.fs.Bool("force", false, "do not ask for confirmation, and replace an operation in progress on the member")
	fromLeader := o.fs.Bool("from-leader", false, "clone from the leader even when a replica is tagged clonefrom")
	wait := o.fs.Bool("wait", true, "follow the job until it ends")
	timeout := o.fs.Duration("timeout", 6*time.Hour, "how long to follow the job")
	clients, names, code, ok := o.members(ctx, args, envAPI, "usage: ramctrl reinit MEMBER [--from-leader] [--force] [--wait=false]")
	if !ok {
		return code
	}
	name := names[0]
	if !*force && !confirm(stdin, stderr, "remove the data directory of "+name+" and clone it again") {
		fmt.Fprintln(stderr, "ramctrl: aborted")
		return exitError
	}
	fmt.Fprintf(stdout, "reinitialize of %s: ", name)
	res, err := clients[name].Reinitialize(ctx, client.ReinitializeRequest{Force: *force, FromLeader: *fromLeader})
	return startJob(ctx, res, err, *wait, *timeout, stdout, stderr)
}

// members parses args (flags and member names), resolves the API and returns a client per
// named member (every member when none is named). With oneUsage set, exactly one member must
// be named, else oneUsage is printed. When ok is false the command returns code.
func (o *options) members(ctx context.Context, args []string, envAPI, oneUsage string) (map[string]*client.Client, []string, int, bool) {
	names, code, ok := parseWithMembers(o, args)
	if !ok {
		return nil, nil, code, false
	}
	if oneUsage != "" && len(names) != 1 {
		fmt.Fprintln(o.stderr, oneUsage)
		return nil, nil, exitUsage, false
	}
	c, code, ok := o.client(ctx, envAPI)
	if !ok {
		return nil, nil, code, false
	}
	clients, names, err := memberClients(ctx, c, names)
	if err != nil {
		fmt.Fprintf(o.stderr, "ramctrl: %v\n", err)
		return nil, nil, exitError, false
	}
	return clients, names, exitOK, true
}

// parseWithMembers parses flags given before or after member names and returns the names.
func parseWithMembers(o *options, args []string) ([]string, int, bool) {
	var names, rest []string
	for i := 0; i < len(args); i++ {
		a := args[i]
		if strings.HasPrefix(a, "-") {
			rest = append(rest, a)
			if !strings.Contains(a, "=") && i+1 < len(args) && o.takesValue(a) {
				rest = append(rest, args[i+1])
				i++
			}
			continue
		}
		names = append(names, a)
	}
	code, ok := o.parse(rest)
	return names, code, ok
}

// takesValue reports whether the flag named by arg ("-x" or "--x") needs a value.
func (o *options) takesValue(arg string) bool {
	f := o.fs.Lookup(strings.TrimLeft(arg, "-"))
	if f == nil {
		return false
	}
	bf, ok := f.Value.(interface{ IsBoolFlag() bool })
	return !ok || !bf.IsBoolFlag()
}

// firstOr is s, or def when s is empty.
func firstOr(s, def string) string {
	if s == "" {
		return def
	}
	return s
}
