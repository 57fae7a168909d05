package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"text/tabwriter"
	"time"
)

// runAdmin handles switchover, failover, history, pause and resume.
func runAdmin(ctx context.Context, cmd string, args []string, envAPI string, stdin io.Reader, stdout, stderr io.Writer) int {
	o := newOptions(cmd, stderr, "table")
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
		return show(ctx, c, "/history", o.json(), stdout, stderr, renderHistory)
	case "pause", "resume":
		body := `{"pause": true}`
		if cmd == "resume" {
			body = `{"pause": null}`
		}
		return send(ctx, c, http.MethodPatch, "/config", body, stdout, stderr)
	case "switchover":
		if *leader == "" {
			l, err := currentLeader(ctx, c)
			if err != nil {
				fmt.Fprintf(stderr, "ramctrl: %v\n", err)
				return exitError
			}
			*leader = l
		}
		req := map[string]any{"leader": *leader}
		if *candidate != "" {
			req["candidate"] = *candidate
		}
		if *at != "" {
			if _, err := time.Parse(time.RFC3339, *at); err != nil {
				fmt.Fprintf(stderr, "ramctrl switchover: --scheduled must be RFC 3339 with a zone, e.g. 2026-12-01T03:00:00Z: %v\n", err)
				return exitUsage
			}
			req["scheduled_at"] = *at
		}
		what := fmt.Sprintf("switch over from %s to %s", *leader, firstNonEmpty(*candidate, "the best replica"))
		if !*force && !confirm(stdin, stderr, what) {
			fmt.Fprintln(stderr, "ramctrl: aborted")
			return exitError
		}
		b, _ := json.Marshal(req)
		return startJob(ctx, c, "/api/v1/switchover", b, *at == "", jobWait, stdout, stderr)
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
		b, _ := json.Marshal(map[string]any{"candidate": *candidate, "allow_data_loss": *allowLoss})
		return startJob(ctx, c, "/api/v1/failover", b, true, jobWait, stdout, stderr)
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

func currentLeader(ctx context.Context, c *client) (string, error) {
	body, err := c.get(ctx, "/cluster")
	if err != nil {
		return "", err
	}
	var cl cluster
	if err := json.Unmarshal(body, &cl); err != nil {
		return "", fmt.Errorf("unreadable /cluster: %w", err)
	}
	for _, m := range cl.Members {
		if m.Role == "leader" {
			return m.Name, nil
		}
	}
	return "", errors.New("the cluster has no leader; use ramctrl failover --candidate")
}

// show prints the answer to GET path as indented JSON, or through table.
func show(ctx context.Context, c *client, path string, asJSON bool, stdout, stderr io.Writer, table func(io.Writer, []byte) error) int {
	body, err := c.get(ctx, path)
	if err == nil {
		if asJSON {
			err = writeJSON(stdout, body)
		} else {
			err = table(stdout, body)
		}
	}
	if err != nil {
		fmt.Fprintf(stderr, "ramctrl: %v\n", err)
		return exitError
	}
	return exitOK
}

func renderHistory(w io.Writer, body []byte) error {
	var rows [][]any
	if err := json.Unmarshal(body, &rows); err != nil {
		return fmt.Errorf("unreadable /history: %w", err)
	}
	tw := tabwriter.NewWriter(w, 2, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "TL\tLSN\tReason\tTimestamp\tNew leader")
	for _, r := range rows {
		cells := make([]string, 5)
		for i := range cells {
			if i < len(r) {
				cells[i] = fmt.Sprint(r[i])
			}
		}
		if len(r) > 1 {
			if f, ok := r[1].(float64); ok {
				cells[1] = lsn(uint64(f))
			}
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", cells[0], cells[1], cells[2], cells[3], cells[4])
	}
	return tw.Flush()
}

// send makes a mutating request with the credentials from the environment and prints the
// answer; a refusal exits 1 with the server's reason.
func send(ctx context.Context, c *client, method, path, body string, stdout, stderr io.Writer) int {
	r, err := c.do(ctx, method, path, []byte(body), nil, writeTimeout)
	if err != nil {
		fmt.Fprintf(stderr, "ramctrl: %v\n", err)
		return exitError
	}
	if job := r.header.Get("X-Ramd-Job-Id"); job != "" {
		fmt.Fprintf(stdout, "job %s (GET %s/api/v1/jobs/%s)\n", job, r.base, job)
	}
	if !r.ok() {
		fmt.Fprintf(stderr, "ramctrl: %s %s refused (%s): %s\n", method, path, r.status, r.reason())
		return exitError
	}
	fmt.Fprintln(stdout, strings.TrimSpace(string(r.body)))
	return exitOK
}

// jobWait bounds how long ramctrl follows a switchover or failover job.
const jobWait = 5 * time.Minute

// startJob posts a request that answers 202 with a job, prints the job id and, with
// followIt, follows its phases until it ends or wait passes.
func startJob(ctx context.Context, c *client, path string, body []byte, followIt bool, wait time.Duration, stdout, stderr io.Writer) int {
	r, err := c.do(ctx, http.MethodPost, path, body, nil, writeTimeout)
	if err != nil {
		fmt.Fprintf(stderr, "ramctrl: %v\n", err)
		return exitError
	}
	if !r.ok() {
		fmt.Fprintf(stderr, "ramctrl: POST %s refused (%s): %s\n", path, r.status, r.reason())
		return exitError
	}
	id := r.header.Get("X-Ramd-Job-Id")
	fmt.Fprintf(stdout, "job %s (GET %s/api/v1/jobs/%s)\n", id, r.base, id)
	if !followIt {
		return exitOK
	}
	return follow(ctx, newClient([]string{r.base}), id, wait, stdout, stderr)
}
