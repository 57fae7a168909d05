package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"text/tabwriter"
)

// syncView is GET /api/v1/sync-standbys.
type syncView struct {
	Mode     string `json:"synchronous_mode"`
	Count    int    `json:"synchronous_node_count"`
	Strict   bool   `json:"synchronous_mode_strict"`
	Commit   string `json:"synchronous_commit"`
	Leader   string `json:"leader"`
	Quorum   int    `json:"quorum"`
	Standbys []struct {
		Name       string `json:"name"`
		ReceiveLSN uint64 `json:"receive_lsn"`
		ReplayLSN  uint64 `json:"replay_lsn"`
		State      string `json:"state"`
	} `json:"sync_standbys"`
}

// runSync: ramctrl sync show | ramctrl sync set [--mode] [--count] [--strict] [--commit].
func runSync(ctx context.Context, args []string, envAPI string, stdout, stderr io.Writer) int {
	if len(args) == 0 || (args[0] != "show" && args[0] != "set") {
		fmt.Fprintln(stderr, "usage: ramctrl sync show|set [--api URL] [--consul ADDR --scope NAME] [--output table|json] [--mode off|on|quorum] [--count N] [--strict=true|false] [--commit on|remote_write|remote_apply]")
		return exitUsage
	}
	o := newOptions("sync "+args[0], stderr, "table")
	mode := o.fs.String("mode", "", "synchronous_mode: off, on (FIRST N) or quorum (ANY N)")
	count := o.fs.Int("count", 0, "synchronous_node_count")
	strict := o.fs.String("strict", "", "synchronous_mode_strict: true or false")
	commit := o.fs.String("commit", "", "synchronous_commit: on, remote_write or remote_apply")
	if code, ok := o.parse(args[1:]); !ok {
		return code
	}
	req := map[string]any{}
	if args[0] == "set" {
		if *mode != "" {
			req["synchronous_mode"] = *mode
		}
		if *count != 0 {
			req["synchronous_node_count"] = *count
		}
		switch *strict {
		case "":
		case "true", "false":
			req["synchronous_mode_strict"] = *strict == "true"
		default:
			fmt.Fprintf(stderr, "ramctrl sync set: --strict must be true or false, not %q\n", *strict)
			return exitUsage
		}
		if *commit != "" {
			req["synchronous_commit"] = *commit
		}
		if len(req) == 0 {
			fmt.Fprintln(stderr, "ramctrl sync set: nothing to set (use --mode, --count, --strict or --commit)")
			return exitUsage
		}
	}
	c, code, ok := o.client(ctx, envAPI)
	if !ok {
		return code
	}
	var body []byte
	var err error
	if args[0] == "show" {
		body, err = c.get(ctx, "/api/v1/sync-standbys")
	} else {
		body, err = c.put(ctx, "/api/v1/sync-standbys", req)
	}
	if err != nil {
		fmt.Fprintf(stderr, "ramctrl: %v\n", err)
		return exitError
	}
	if o.json() {
		if err := writeJSON(stdout, body); err != nil {
			fmt.Fprintf(stderr, "ramctrl: %v\n", err)
			return exitError
		}
		return exitOK
	}
	var v syncView
	if err := json.Unmarshal(body, &v); err != nil {
		fmt.Fprintf(stderr, "ramctrl: unreadable answer: %v\n", err)
		return exitError
	}
	renderSync(stdout, v)
	return exitOK
}

func renderSync(w io.Writer, v syncView) {
	fmt.Fprintf(w, "Synchronous mode: %s (count %d, strict %v, synchronous_commit %s)\n", v.Mode, v.Count, v.Strict, v.Commit)
	if v.Leader != "" {
		fmt.Fprintf(w, "Leader: %s, quorum %d\n", v.Leader, v.Quorum)
	}
	tw := tabwriter.NewWriter(w, 2, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "Sync standby\tState\tReceived LSN\tReplayed LSN")
	for _, s := range v.Standbys {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", s.Name, dash(s.State), lsn(s.ReceiveLSN), lsn(s.ReplayLSN))
	}
	_ = tw.Flush()
}

func lsn(v uint64) string { return fmt.Sprintf("%X/%X", v>>32, uint32(v)) }

func firstNonEmpty(v ...string) string {
	for _, s := range v {
		if s != "" {
			return s
		}
	}
	return ""
}

// put sends v as JSON and returns the 200 answer's body; a refusal is an error with the
// server's reason.
func (c *client) put(ctx context.Context, path string, v any) ([]byte, error) {
	b, err := json.Marshal(v)
	if err != nil {
		return nil, err
	}
	r, err := c.do(ctx, http.MethodPut, path, b, nil, writeTimeout)
	if err != nil {
		return nil, err
	}
	if r.code != http.StatusOK {
		return nil, fmt.Errorf("%s refused (%s): %s", path, r.status, r.reason())
	}
	return r.body, nil
}

// authorize adds the credentials of RAMD_API_TOKEN, or RAMD_API_USERNAME and
// RAMD_API_PASSWORD, to a mutating request.
func authorize(req *http.Request) {
	if tok := os.Getenv("RAMD_API_TOKEN"); tok != "" {
		req.Header.Set("Authorization", "Bearer "+tok)
	} else if u := os.Getenv("RAMD_API_USERNAME"); u != "" {
		req.SetBasicAuth(u, os.Getenv("RAMD_API_PASSWORD"))
	}
}
