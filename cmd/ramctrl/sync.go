package main

import (
	"context"
	"fmt"
	"io"

	"github.com/ramd-project/ramd/api/client"
)

// runSync: ramctrl sync show | ramctrl sync set [--mode] [--count] [--strict] [--commit].
func runSync(ctx context.Context, args []string, envAPI string, stdout, stderr io.Writer) int {
	if len(args) == 0 || (args[0] != "show" && args[0] != "set") {
		fmt.Fprintln(stderr, "usage: ramctrl sync show|set [--api URL] [--consul ADDR --scope NAME] [--output table|json] [--mode off|on|quorum] [--count N] [--strict=true|false] [--commit on|remote_write|remote_apply]")
		return exitUsage
	}
	o := newOptions("sync "+args[0], stderr, "table")
	stdout = o.bind(stdout)
	mode := o.fs.String("mode", "", "synchronous_mode: off, on (FIRST N) or quorum (ANY N)")
	count := o.fs.Int("count", 0, "synchronous_node_count")
	strict := o.fs.String("strict", "", "synchronous_mode_strict: true or false")
	commit := o.fs.String("commit", "", "synchronous_commit: on, remote_write or remote_apply")
	if code, ok := o.parse(args[1:]); !ok {
		return code
	}
	var req client.SyncSettings
	if args[0] == "set" {
		if *mode != "" {
			req.Mode = mode
		}
		if *count != 0 {
			req.Count = count
		}
		switch *strict {
		case "":
		case "true", "false":
			b := *strict == "true"
			req.Strict = &b
		default:
			fmt.Fprintf(stderr, "ramctrl sync set: --strict must be true or false, not %q\n", *strict)
			return exitUsage
		}
		if *commit != "" {
			req.Commit = commit
		}
		if req == (client.SyncSettings{}) {
			fmt.Fprintln(stderr, "ramctrl sync set: nothing to set (use --mode, --count, --strict or --commit)")
			return exitUsage
		}
	}
	c, code, ok := o.client(ctx, envAPI)
	if !ok {
		return code
	}
	var v client.SyncView
	var err error
	if args[0] == "show" {
		v, err = c.SyncStandbys(ctx)
	} else {
		v, err = c.SetSync(ctx, req)
	}
	if err == nil && o.json() {
		err = writeJSON(stdout, v)
	}
	if err != nil {
		fmt.Fprintf(stderr, "ramctrl: %v\n", err)
		return exitError
	}
	if !o.json() {
		renderSync(stdout, v)
	}
	return exitOK
}

func renderSync(w io.Writer, v client.SyncView) {
	fmt.Fprintf(w, "Synchronous mode: %s (count %d, strict %v, synchronous_commit %s)\n", v.Mode, v.Count, v.Strict, v.Commit)
	if v.Leader != "" {
		fmt.Fprintf(w, "Leader: %s, quorum %d\n", v.Leader, v.Quorum)
	}
	tw := newTable(w, 2, 4, 2)
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
