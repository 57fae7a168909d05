package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"

	"github.com/ramd-project/ramd/api/client"
)

const paramsUsage = "usage: ramctrl params list | show NAME | validate NAME=VALUE... | tune [--workload web|oltp|dw|mixed|desktop] [--memory BYTES] [--cpus N] [--storage ssd|hdd|san] [--apply] [--force]"

// runParams: ramctrl params list|show|validate|tune.
func runParams(ctx context.Context, args []string, envAPI string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprintln(stderr, paramsUsage)
		return exitUsage
	}
	sub := args[0]
	o := newOptions("params "+sub, stderr, "table")
	stdout = o.bind(stdout)
	workload := o.fs.String("workload", "", "tune: web, oltp, dw, mixed or desktop (default web)")
	memory := o.fs.Int64("memory", 0, "tune: memory for PostgreSQL in bytes (default: the node's, cgroup limit included)")
	cpus := o.fs.Int("cpus", 0, "tune: CPUs (default: the node's)")
	storage := o.fs.String("storage", "", "tune: ssd, hdd or san (default ssd)")
	apply := o.fs.Bool("apply", false, "tune: write the changed suggestions into the configuration (with If-Match)")
	force := o.fs.Bool("force", false, "tune --apply: do not ask")
	rest, flags := splitArgs(args[1:], isBoolFlag)
	if code, ok := o.parse(flags); !ok {
		return code
	}
	switch {
	case sub == "list" && len(rest) == 0, sub == "tune" && len(rest) == 0:
	case sub == "show" && len(rest) == 1:
	case sub == "validate" && len(rest) > 0:
	default:
		fmt.Fprintln(stderr, paramsUsage)
		return exitUsage
	}
	c, code, ok := o.client(ctx, envAPI)
	if !ok {
		return code
	}
	var err error
	switch sub {
	case "list":
		err = paramsList(ctx, c, o, stdout)
	case "show":
		err = paramsShow(ctx, c, o, rest[0], stdout)
	case "validate":
		return paramsValidate(ctx, c, o, rest, stdout, stderr)
	case "tune":
		return paramsTune(ctx, c, o, client.TuneRequest{Workload: *workload, MemoryBytes: *memory, CPUs: *cpus, Storage: *storage},
			*apply, *force, stdout, stderr)
	}
	if err != nil {
		fmt.Fprintf(stderr, "ramctrl: %v\n", err)
		return exitError
	}
	return exitOK
}

func paramsList(ctx context.Context, c *client.Client, o *options, w io.Writer) error {
	l, err := c.Parameters(ctx)
	if err != nil || o.json() {
		if err == nil {
			err = writeJSON(w, l)
		}
		return err
	}
	tw := newTable(w, 2, 4, 2)
	fmt.Fprintf(tw, "NAME\tTYPE\tUNIT\tRESTART\tRESET VALUE\n")
	for _, p := range l.Parameters {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", p.Name, p.Type, p.Unit, yesNo(p.RestartNeeded), p.ResetValue)
	}
	return tw.Flush()
}

func paramsShow(ctx context.Context, c *client.Client, o *options, name string, w io.Writer) error {
	p, err := c.Parameter(ctx, name)
	if err != nil || o.json() {
		if err == nil {
			err = writeJSON(w, p)
		}
		return err
	}
	fmt.Fprintf(w, "%s (%s, context %s)\n", p.Name, p.Type, p.Context)
	if p.Description != "" {
		fmt.Fprintf(w, "  %s\n", p.Description)
	}
	if p.Min != nil && p.Max != nil {
		fmt.Fprintf(w, "  range: %s .. %s %s\n", num(*p.Min), num(*p.Max), p.Unit)
	}
	if len(p.EnumValues) > 0 {
		fmt.Fprintf(w, "  values: %s\n", strings.Join(p.EnumValues, ", "))
	}
	fmt.Fprintf(w, "  default: %s %s; needs a restart: %s\n", p.BootValue, p.Unit, yesNo(p.RestartNeeded))
	return nil
}

// paramsValidate judges NAME=VALUE pairs; exit 1 when one is refused.
func paramsValidate(ctx context.Context, c *client.Client, o *options, pairs []string, w, stderr io.Writer) int {
	proposed := map[string]any{}
	for _, kv := range pairs {
		name, value, ok := strings.Cut(kv, "=")
		if !ok || name == "" {
			fmt.Fprintf(stderr, "ramctrl params validate: %q is not NAME=VALUE\n", kv)
			return exitUsage
		}
		proposed[name] = value
	}
	r, err := c.ValidateParameters(ctx, proposed)
	if err != nil {
		fmt.Fprintf(stderr, "ramctrl: %v\n", err)
		return exitError
	}
	if o.json() {
		_ = writeJSON(w, r)
	} else {
		for _, i := range r.Refusals {
			fmt.Fprintf(w, "refused  %s = %s: %s\n", i.Field, i.Value, i.Message)
		}
		for _, i := range r.Warnings {
			fmt.Fprintf(w, "warning  %s = %s: %s\n", i.Field, i.Value, i.Message)
		}
		if r.OK {
			fmt.Fprintln(w, "ok: every value would be accepted")
		}
	}
	if !r.OK {
		return exitError
	}
	return exitOK
}

// paramsTune prints the suggestions beside the values in force; --apply writes the changed
// ones with If-Match and shows the warnings and what waits for a restart.
func paramsTune(ctx context.Context, c *client.Client, o *options, req client.TuneRequest, apply, force bool, w, stderr io.Writer) int {
	res, err := c.TuneParameters(ctx, req)
	if err != nil {
		fmt.Fprintf(stderr, "ramctrl: %v\n", err)
		return exitError
	}
	if o.json() && !apply {
		_ = writeJSON(w, res)
		return exitOK
	}
	fmt.Fprintf(w, "Tuning for %s, %d MiB, %d CPUs, %s storage, PostgreSQL %d:\n", res.Workload, res.MemoryBytes>>20, res.CPUs, res.Storage, res.ServerMajor)
	tw := newTable(w, 2, 4, 2)
	fmt.Fprintf(tw, "\tNAME\tNOW\tSUGGESTED\tWHY\n")
	changes := map[string]any{}
	for _, s := range res.Suggestions {
		mark := " "
		if s.Changes {
			mark = "*"
			changes[s.Name] = s.Suggested
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", mark, s.Name, s.Current, s.Suggested, s.Reason)
	}
	_ = tw.Flush()
	for _, i := range res.Review.Refusals {
		fmt.Fprintf(w, "refused  %s = %s: %s\n", i.Field, i.Value, i.Message)
	}
	for _, i := range res.Review.Warnings {
		fmt.Fprintf(w, "warning  %s = %s: %s\n", i.Field, i.Value, i.Message)
	}
	if !apply {
		return exitOK
	}
	if len(changes) == 0 {
		fmt.Fprintln(w, "nothing to change")
		return exitOK
	}
	if !force && !confirm(os.Stdin, stderr, fmt.Sprintf("write %d changed parameters into the cluster's configuration", len(changes))) {
		fmt.Fprintln(stderr, "aborted; nothing changed")
		return exitError
	}
	cur, err := c.Config(ctx)
	if err != nil {
		fmt.Fprintf(stderr, "ramctrl: %v\n", err)
		return exitError
	}
	out, err := c.PatchConfigWarnings(ctx, map[string]any{"postgresql": map[string]any{"parameters": changes}}, cur.ETag)
	for _, warn := range out.Warnings {
		fmt.Fprintf(stderr, "warning: %s\n", warn)
	}
	if err != nil {
		fmt.Fprintf(stderr, "ramctrl: %v\n", err)
		return exitError
	}
	fmt.Fprintf(w, "applied %d parameters; members reload now, and show what waits for a restart in `ramctrl list` (then `ramctrl restart --pending`)\n", len(changes))
	return exitOK
}

func yesNo(b bool) string {
	if b {
		return "yes"
	}
	return "no"
}

func num(f float64) string { return strconv.FormatFloat(f, 'f', -1, 64) }

// splitArgs separates positional arguments (a name, NAME=VALUE pairs) from flags, which
// may stand before or after them; a flag that is not boolean (isBool) takes the next word.
func splitArgs(args []string, isBool func(string) bool) (rest, flags []string) {
	for i := 0; i < len(args); i++ {
		a := args[i]
		switch {
		case !strings.HasPrefix(a, "-"):
			rest = append(rest, a)
		case strings.Contains(a, "=") || isBool(a):
			flags = append(flags, a)
		default:
			flags = append(flags, a)
			if i+1 < len(args) {
				flags = append(flags, args[i+1])
				i++
			}
		}
	}
	return rest, flags
}

// isBoolFlag reports the flags of params that take no value.
func isBoolFlag(a string) bool {
	switch strings.TrimLeft(a, "-") {
	case "apply", "force", "h", "help":
		return true
	}
	return false
}
