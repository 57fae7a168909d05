package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strings"

	"github.com/ramd-project/ramd/api/client"
)

const flushUsage = "usage: ramctrl flush restart [MEMBER...] [--role leader|replica|any] | ramctrl flush switchover"

// runFlush: ramctrl flush restart|switchover, patronictl's flush: it discards scheduled
// restarts (DELETE /restart on the named members, every member with the role when none is
// named) or the pending switchover (DELETE /api/v1/switchover). A member with nothing
// scheduled is reported and is no failure.
func runFlush(ctx context.Context, args []string, envAPI string, stdin io.Reader, stdout, stderr io.Writer) int {
	o := newOptions("flush", stderr, "")
	role := o.fs.String("role", pickAny, "restart: the members' role, leader, replica or any")
	o.fs.StringVar(role, "r", pickAny, "short for --role")
	force := o.fs.Bool("force", false, "do not ask for confirmation")
	words, code, ok := parseWithMembers(o, args)
	if !ok {
		return code
	}
	// patronictl takes the target after the member names; ramctrl takes it anywhere.
	target := ""
	var names []string
	for _, w := range words {
		if (w == "restart" || w == "switchover") && target == "" {
			target = w
			continue
		}
		names = append(names, w)
	}
	switch {
	case target == "":
		fmt.Fprintln(stderr, flushUsage)
		return exitUsage
	case target == "switchover" && len(names) > 0:
		fmt.Fprintln(stderr, "ramctrl flush switchover: takes no member (the switchover is the cluster's)")
		return exitUsage
	case *role != pickAny && *role != pickLeader && *role != pickPrimary && *role != pickReplica:
		fmt.Fprintf(stderr, "ramctrl flush: --role must be leader, replica or any, not %q\n", *role)
		return exitUsage
	}
	c, code, ok := o.client(ctx, envAPI)
	if !ok {
		return code
	}
	if target == "switchover" {
		return flushSwitchover(ctx, c, stdout, stderr)
	}
	cl, err := c.Cluster(ctx)
	if err != nil {
		return report(stderr, err)
	}
	targets, err := restartTargets(cl, names, *role)
	if err != nil {
		return report(stderr, err)
	}
	if len(targets) == 0 {
		fmt.Fprintln(stdout, "No member to flush")
		return exitOK
	}
	var list []string
	for _, m := range targets {
		list = append(list, m.Name)
	}
	if !*force && !confirm(stdin, stderr, "discard the scheduled restart of "+strings.Join(list, ", ")) {
		fmt.Fprintln(stderr, "ramctrl: aborted")
		return exitError
	}
	code = exitOK
	for _, m := range targets {
		r, err := c.At(m.BaseURL()).Do(ctx, http.MethodDelete, "/restart", nil, nil)
		switch {
		case err != nil:
			fmt.Fprintf(stderr, "%s: %v\n", m.Name, err)
			code = exitError
		case r.Code == http.StatusNotFound:
			fmt.Fprintf(stdout, "%s: no restart was scheduled\n", m.Name)
		case !r.OK():
			fmt.Fprintf(stderr, "%s: refused (%s): %s\n", m.Name, r.Status, r.Reason())
			code = exitError
		default:
			fmt.Fprintf(stdout, "Success: flush scheduled restart for member %s\n", m.Name)
		}
	}
	return code
}

// restartTargets are the members a restart flush goes to: the named ones, else every member
// with the role.
func restartTargets(cl client.Cluster, names []string, role string) ([]client.Member, error) {
	// patronictl takes the cluster's name before the members: drop it when it is no member.
	if len(names) > 0 && names[0] == cl.Scope && !slices.ContainsFunc(cl.Members, func(m client.Member) bool { return m.Name == names[0] }) {
		names = names[1:]
	}
	var out []client.Member
	for _, n := range names {
		i := slices.IndexFunc(cl.Members, func(m client.Member) bool { return m.Name == n })
		if i < 0 {
			return nil, fmt.Errorf("no member %q in the cluster", n)
		}
		out = append(out, cl.Members[i])
	}
	if len(names) > 0 {
		return out, nil
	}
	for _, m := range cl.Members {
		switch {
		case m.APIURL == "":
		case role == pickLeader || role == pickPrimary:
			if m.IsLeader() {
				out = append(out, m)
			}
		case role == pickReplica:
			if !m.IsLeader() {
				out = append(out, m)
			}
		default:
			out = append(out, m)
		}
	}
	slices.SortFunc(out, func(a, b client.Member) int { return strings.Compare(a.Name, b.Name) })
	return out, nil
}

// flushSwitchover removes the pending switchover.
func flushSwitchover(ctx context.Context, c *client.Client, stdout, stderr io.Writer) int {
	err := c.CancelSwitchover(ctx)
	var refused *client.Error
	switch {
	case errors.As(err, &refused) && refused.Code == http.StatusNotFound:
		fmt.Fprintln(stdout, "No pending switchover")
		return exitOK
	case err != nil:
		return report(stderr, err)
	}
	fmt.Fprintln(stdout, "Success: scheduled switchover deleted")
	return exitOK
}
