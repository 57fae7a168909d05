// Command ramctrl is the command-line client of ramd's REST API. This first version lists
// the cluster's members the way `patronictl list` does.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"runtime/debug"
	"syscall"
	"time"
)

// Exit codes.
const (
	exitOK    = 0
	exitError = 1
	exitUsage = 2
)

// defaultAPI is used when neither --api nor RAMD_API_URL is given.
const defaultAPI = "http://127.0.0.1:8008"

// version is set with -ldflags "-X main.version=..."; otherwise the module version is used.
var version = ""

const usage = `ramctrl controls a ramd cluster through a member's REST API.

Usage:
  ramctrl list [--api URL[,URL...]] [--watch] [--output table|json]
  ramctrl sync show [--api URL] [--output table|json]
  ramctrl sync set [--mode off|on|quorum] [--count N] [--strict true|false] [--commit on|remote_write|remote_apply]
  ramctrl switchover [--leader NAME] [--candidate NAME] [--scheduled TIME] [--force]
  ramctrl failover --candidate NAME [--allow-data-loss] [--force]
  ramctrl history [--output table|json]
  ramctrl pause | resume
  ramctrl config show
  ramctrl version
  ramctrl help

The API URL comes from --api, else $RAMD_API_URL, else ` + defaultAPI + `.
Changes carry $RAMD_API_TOKEN, or $RAMD_API_USERNAME and $RAMD_API_PASSWORD.
A comma-separated list is accepted: the first URL that answers is used.
`

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	code := run(ctx, os.Args[1:], os.Getenv("RAMD_API_URL"), os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

func run(ctx context.Context, args []string, envAPI string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return exitUsage
	}
	switch args[0] {
	case "list":
		return runList(ctx, args[1:], envAPI, stdout, stderr)
	case "sync":
		return runSync(ctx, args[1:], envAPI, stdout, stderr)
	case "switchover", "failover", "history", "pause", "resume", "config":
		return runAdmin(ctx, args[0], args[1:], envAPI, os.Stdin, stdout, stderr)
	case "version", "--version":
		fmt.Fprintln(stdout, "ramctrl", buildVersion())
		return exitOK
	case "help", "-h", "--help":
		fmt.Fprint(stdout, usage)
		return exitOK
	default:
		fmt.Fprintf(stderr, "ramctrl: unknown command %q\n\n%s", args[0], usage)
		return exitUsage
	}
}

func runList(ctx context.Context, args []string, envAPI string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("ramctrl list", flag.ContinueOnError)
	fs.SetOutput(stderr)
	api := fs.String("api", "", "ramd API URL(s), comma-separated (default: $RAMD_API_URL, else "+defaultAPI+")")
	watch := fs.Bool("watch", false, "redraw every second until interrupted")
	output := fs.String("output", "table", "output format: table or json")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return exitOK
		}
		return exitUsage
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "ramctrl list: unexpected argument %q\n", fs.Arg(0))
		return exitUsage
	}
	if *output != "table" && *output != "json" {
		fmt.Fprintf(stderr, "ramctrl list: --output must be table or json, not %q\n", *output)
		return exitUsage
	}
	raw := *api
	if raw == "" {
		raw = envAPI
	}
	if raw == "" {
		raw = defaultAPI
	}
	urls, err := parseAPIURLs(raw)
	if err != nil {
		fmt.Fprintf(stderr, "ramctrl list: %v\n", err)
		return exitUsage
	}
	c := newClient(urls)
	if !*watch {
		if err := listOnce(ctx, c, *output, stdout); err != nil {
			fmt.Fprintf(stderr, "ramctrl: %v\n", err)
			return exitError
		}
		return exitOK
	}
	clear := isTerminal(stdout)
	for {
		if clear {
			fmt.Fprint(stdout, "\033[H\033[2J")
		}
		fmt.Fprintln(stdout, time.Now().Format(time.DateTime))
		if err := listOnce(ctx, c, *output, stdout); err != nil {
			fmt.Fprintf(stdout, "ramctrl: %v\n", err)
		}
		select {
		case <-ctx.Done():
			return exitOK
		case <-time.After(time.Second):
		}
	}
}

// buildVersion is the -ldflags version, else the module version, else "dev".
func buildVersion() string {
	if version != "" {
		return version
	}
	if bi, ok := debug.ReadBuildInfo(); ok && bi.Main.Version != "" && bi.Main.Version != "(devel)" {
		return bi.Main.Version
	}
	return "dev"
}

// isTerminal reports whether w is a character device (a terminal).
func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	fi, err := f.Stat()
	return err == nil && fi.Mode()&os.ModeCharDevice != 0
}
