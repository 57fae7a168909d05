package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/ramd-project/ramd/api/client"
)

// runAdmin handles switchover, failover, history, pause and resume.
func runAdmin(ctx context.Context, cmd string, args []string, envAPI string, stdin io.Reader, stdout, stderr io.Writer) int {
	o := newOptions(cmd, stderr, "table")
	stdout = o.bind(stdout)
	force := o.fs.Bool("force", false, "do not ask for confirmation")
	leader := o.fs.String("leader", "", "switchover: the current leader (default: ask the cluster)")
	candidate := o.fs.String("candidate", "", "switchover/failover: the member to promote")
	at := o.fs.String("scheduled", "", "switchover: RFC 3339 time to run it at")
	allowLoss := o.fs.Bool("allow-data-loss", false, "failover: promote even a candidate that may lack commits")
	c, code, ok := o.connect(ctx, args, envAPI)
	if !ok {
		return code
	}
	switch cmd {
	case "history":
		return history(ctx, c, o.json(), stdout, stderr)
	case "pause", "resume":
		var v any // null deletes the key
		if cmd == "pause" {
			v = true
		}
		doc, err := c.PatchConfig(ctx, map[string]any{"pause": v}, "")
		switch {
		case err != nil:
		case o.json():
			err = writeJSON(stdout, doc)
		case cmd == "pause":
			fmt.Fprintln(stdout, "Success: cluster management is paused")
		default:
			fmt.Fprintln(stdout, "Success: cluster management is resumed")
		}
		return report(stderr, err)
	case "switchover":
		if *leader == "" {
			l, err := currentLeader(ctx, c)
			if err != nil {
				fmt.Fprintf(stderr, "ramctrl: %v\n", err)
				return exitError
			}
			*leader = l
		}
		req := client.SwitchoverRequest{Leader: *leader, Candidate: *candidate}
		if *at != "" {
			if _, err := time.Parse(time.RFC3339, *at); err != nil {
				fmt.Fprintf(stderr, "ramctrl switchover: --scheduled must be RFC 3339 with a zone, e.g. 2026-12-01T03:00:00Z: %v\n", err)
				return exitUsage
			}
			req.ScheduledAt = *at
		}
		what := fmt.Sprintf("switch over from %s to %s", *leader, firstNonEmpty(*candidate, "the best replica"))
		if !*force && !confirm(stdin, stderr, what) {
			fmt.Fprintln(stderr, "ramctrl: aborted")
			return exitError
		}
		res, err := c.Switchover(ctx, req)
		return startJob(ctx, res, err, *at == "", jobWait, stdout, stderr)
	case "failover":
		if *candidate == "" {
			fmt.Fprintln(stderr, "ramctrl failover: --candidate is required")
			return exitUsage
		}
		what := "fail over to " + *candidate
		if *allowLoss {
			what += " ALLOWING DATA LOSS"
		}
		if !*force && !confirm(stdin, stderr, what) {
			fmt.Fprintln(stderr, "ramctrl: aborted")
			return exitError
		}
		res, err := c.Failover(ctx, client.SwitchoverRequest{Candidate: *candidate, AllowDataLoss: *allowLoss})
		return startJob(ctx, res, err, true, jobWait, stdout, stderr)
	}
	return exitUsage
}

// confirm asks y/N on stderr and reads the answer from stdin.
func confirm(stdin io.Reader, stderr io.Writer, what string) bool {
	fmt.Fprintf(stderr, "Are you sure you want to %s? [y/N] ", what)
	line, _ := bufio.NewReader(stdin).ReadString('\n')
	a := strings.ToLower(strings.TrimSpace(line))
	return a == "y" || a == "yes"
}

func currentLeader(ctx context.Context, c *client.Client) (string, error) {
	cl, err := c.Cluster(ctx)
	if err != nil {
		return "", err
	}
	for _, m := range cl.Members {
		if m.Role == client.RoleLeader {
			return m.Name, nil
		}
	}
	return "", errors.New("the cluster has no leader; use ramctrl failover --candidate")
}

// history prints GET /history as indented JSON or as a table.
func history(ctx context.Context, c *client.Client, asJSON bool, stdout, stderr io.Writer) int {
	h, err := c.History(ctx)
	if err == nil {
		if asJSON {
			err = writeJSON(stdout, h)
		} else {
			err = renderHistory(stdout, h)
		}
	}
	return report(stderr, err)
}

func renderHistory(w io.Writer, rows []client.HistoryEntry) error {
	tw := newTable(w, 2, 4, 2)
	fmt.Fprintln(tw, "TL\tLSN\tReason\tTimestamp\tNew leader")
	for _, r := range rows {
		fmt.Fprintf(tw, "%d\t%s\t%s\t%s\t%s\n", r.Timeline, lsn(r.LSN), r.Reason, r.Timestamp.UTC().Format(time.RFC3339Nano), r.NewLeader)
	}
	return tw.Flush()
}

// jobWait bounds how long ramctrl follows a switchover or failover job.
const jobWait = 5 * time.Minute

// startJob reports an operation that answers 202 with a job: it prints the job id and, with
// followIt, follows its phases on the member that took it until it ends or wait passes.
func startJob(ctx context.Context, res client.Result, err error, followIt bool, wait time.Duration, stdout, stderr io.Writer) int {
	if err != nil {
		fmt.Fprintf(stderr, "ramctrl: %v\n", err)
		return exitError
	}
	fmt.Fprintf(stdout, "job %s (GET %s%s)\n", res.JobID, res.BaseURL, client.JobPath(res.JobID))
	if !followIt {
		return exitOK
	}
	return follow(ctx, newClient([]string{res.BaseURL}, jobReadTimeout), res.JobID, wait, stdout, stderr)
}
