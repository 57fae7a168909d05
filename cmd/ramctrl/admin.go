package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"strings"
	"text/tabwriter"
	"time"
)

// runAdmin handles switchover, failover, history, pause, resume and config show.
func runAdmin(ctx context.Context, cmd string, args []string, envAPI string, stdin io.Reader, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("ramctrl "+cmd, flag.ContinueOnError)
	fs.SetOutput(stderr)
	api := fs.String("api", "", "ramd API URL(s), comma-separated")
	force := fs.Bool("force", false, "do not ask for confirmation")
	leader := fs.String("leader", "", "switchover: the current leader (default: ask the cluster)")
	candidate := fs.String("candidate", "", "switchover/failover: the member to promote")
	at := fs.String("scheduled", "", "switchover: RFC 3339 time to run it at")
	allowLoss := fs.Bool("allow-data-loss", false, "failover: promote even a candidate that may lack commits")
	output := fs.String("output", "table", "history and config: table or json")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return exitOK
		}
		return exitUsage
	}
	urls, err := parseAPIURLs(firstNonEmpty(*api, envAPI, defaultAPI))
	if err != nil {
		fmt.Fprintf(stderr, "ramctrl %s: %v\n", cmd, err)
		return exitUsage
	}
	c := newClient(urls)
	switch cmd {
	case "history":
		return show(ctx, c, "/history", *output, stdout, stderr, renderHistory)
	case "config":
		if fs.NArg() != 1 || fs.Arg(0) != "show" {
			fmt.Fprintln(stderr, "usage: ramctrl config show [--output json]")
			return exitUsage
		}
		return show(ctx, c, "/config", "json", stdout, stderr, nil)
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
		return send(ctx, c, http.MethodPost, "/switchover", string(b), stdout, stderr)
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
		return send(ctx, c, http.MethodPost, "/failover", string(b), stdout, stderr)
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

func show(ctx context.Context, c *client, path, output string, stdout, stderr io.Writer, table func(io.Writer, []byte) error) int {
	body, err := c.get(ctx, path)
	if err != nil {
		fmt.Fprintf(stderr, "ramctrl: %v\n", err)
		return exitError
	}
	if output == "json" || table == nil {
		var out bytes.Buffer
		_ = json.Indent(&out, body, "", "  ")
		fmt.Fprintln(stdout, out.String())
		return exitOK
	}
	if err := table(stdout, body); err != nil {
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
		if f, ok := r[1].(float64); ok {
			cells[1] = lsn(uint64(f))
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", cells[0], cells[1], cells[2], cells[3], cells[4])
	}
	return tw.Flush()
}

// send makes a mutating request with the credentials from the environment and prints the
// answer; a refusal exits 1 with the server's reason.
func send(ctx context.Context, c *client, method, path, body string, stdout, stderr io.Writer) int {
	var errs []string
	for _, base := range c.urls {
		req, err := http.NewRequestWithContext(ctx, method, base+path, strings.NewReader(body))
		if err != nil {
			fmt.Fprintf(stderr, "ramctrl: %v\n", err)
			return exitError
		}
		req.Header.Set("Content-Type", "application/json")
		authorize(req)
		resp, err := (&http.Client{Timeout: 60 * time.Second}).Do(req)
		if err != nil {
			errs = append(errs, err.Error())
			continue
		}
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
		resp.Body.Close()
		if job := resp.Header.Get("X-Ramd-Job-Id"); job != "" {
			fmt.Fprintf(stdout, "job %s (GET %s/api/v1/jobs/%s)\n", job, base, job)
		}
		if resp.StatusCode >= 200 && resp.StatusCode < 300 {
			fmt.Fprintln(stdout, strings.TrimSpace(string(b)))
			return exitOK
		}
		fmt.Fprintf(stderr, "ramctrl: %s %s refused (%s): %s\n", method, path, resp.Status, strings.TrimSpace(string(b)))
		return exitError
	}
	fmt.Fprintf(stderr, "ramctrl: no ramd API answered at %s (%s)\n", strings.Join(c.urls, ", "), strings.Join(errs, "; "))
	return exitError
}
