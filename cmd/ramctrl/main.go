// Command ramctrl is the command-line client of ramd's REST API: it lists the members and
// their topology, switches over, fails over, pauses, shows and edits the dynamic
// configuration and the synchronous-replication settings, the way patronictl does.
package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/signal"
	"runtime/debug"
	"strings"
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
  ramctrl list [--watch] [--extended] [--output table|json|yaml|tsv]
  ramctrl topology [--watch] [--output table|json|yaml|tsv]
  ramctrl sync show [--output table|json|yaml|tsv]
  ramctrl sync set [--mode off|on|quorum] [--count N] [--strict true|false] [--commit on|remote_write|remote_apply]
  ramctrl switchover [--leader NAME] [--candidate NAME] [--scheduled TIME] [--force]
  ramctrl failover --candidate NAME [--allow-data-loss] [--force]
  ramctrl history [--output table|json|yaml|tsv]
  ramctrl pause | resume
  ramctrl restart [MEMBER...] [--pending] [--role primary|replica] [--pg-version V] [--scheduled TIME] [--force]
  ramctrl restart [--pending] [--in-place] [--force]     (no member: rolling restart of the cluster)
  ramctrl reload [MEMBER...]
  ramctrl reinit MEMBER [--from-leader] [--force] [--wait=false]
  ramctrl flush restart [MEMBER...] [--role leader|replica|any] [--force] | flush switchover
  ramctrl dsn [--role leader|replica|sync|any] [--member NAME]
  ramctrl query (--command SQL | --file F) [--role R | --member NAME] [--dbname DB] [--username U] [--output table|tsv]
  ramctrl remove SCOPE      (deletes the cluster's keys in Consul; asks for typed confirmations)
  ramctrl config show [--output json|yaml|table|tsv]
  ramctrl config edit [--force] [--set KEY=VALUE]... [--pg NAME=VALUE]... [--apply FILE]
  ramctrl show-config | edit-config ...     (patronictl's names of config show and config edit)
  ramctrl params list | show NAME | validate NAME=VALUE... [--output table|json|yaml|tsv]
  ramctrl params tune [--workload web|oltp|dw|mixed|desktop] [--memory BYTES] [--cpus N] [--storage ssd|hdd|san] [--apply] [--force]
  ramctrl backup create [--type full|diff|incr] [--no-wait] | list | show ID | jobs | check | expire
  ramctrl backup schedule [list | set TYPE 'CRON' | suspend TYPE | resume TYPE | remove TYPE | run TYPE]
  ramctrl version [--client] [--output table|json|yaml]
  ramctrl completion bash
  ramctrl help

Every command but help takes --api URL[,URL...], or --consul ADDR, --scope NAME and
--namespace NS. The API is found through, in this order: --api; $RAMD_API_URL; the
members' api_url in Consul, when --consul, --scope, --namespace, $CONSUL_HTTP_ADDR or
$RAMD_SCOPE is set (scope default ` + defaultScope + `, namespace $RAMD_NAMESPACE or ` + defaultNamespace + `;
the catalog's service meta when no member record is found);
else ` + defaultAPI + `. Of several URLs the first that answers is used.
Requests carry $RAMD_API_TOKEN, or $RAMD_API_USERNAME and $RAMD_API_PASSWORD; https is
verified against $RAMD_API_CACERT, with $RAMD_API_CERT and $RAMD_API_KEY as client certificate.
config edit runs $VISUAL, else $EDITOR, else vi; --set takes a JSON value (a bare word is a
string, null deletes the key, dots name nested keys).
-o and patronictl's -f/--format are --output; -e is --extended, -W --watch.
Exit codes: 0 done, 1 failed or refused, 2 usage error.
`

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	code := run(ctx, os.Args[1:], os.Getenv("RAMD_API_URL"), os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

func run(ctx context.Context, args []string, envAPI string, stdout, stderr io.Writer) int {
	return runIn(ctx, args, envAPI, os.Stdin, stdout, stderr)
}

// runWithStdin runs a command with the API from RAMD_API_URL unset and stdin given (tests).
func runWithStdin(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	return runIn(ctx, args, "", stdin, stdout, stderr)
}

// runIn runs the command of args, answering prompts from stdin.
func runIn(ctx context.Context, args []string, envAPI string, stdin io.Reader, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return exitUsage
	}
	switch args[0] {
	case "list":
		return runList(ctx, args[1:], envAPI, stdout, stderr)
	case "sync":
		return runSync(ctx, args[1:], envAPI, stdout, stderr)
	case "switchover", "failover", "history", "pause", "resume":
		return runAdmin(ctx, args[0], args[1:], envAPI, stdin, stdout, stderr)
	case "config":
		return runConfig(ctx, args[1:], envAPI, stdin, stdout, stderr)
	case "show-config", "edit-config": // patronictl's names
		return runConfig(ctx, append([]string{strings.TrimSuffix(args[0], "-config")}, args[1:]...), envAPI, stdin, stdout, stderr)
	case "topology":
		return runTopology(ctx, args[1:], envAPI, stdout, stderr)
	case "restart":
		return runRestart(ctx, args[1:], envAPI, stdin, stdout, stderr)
	case "reload":
		return runReload(ctx, args[1:], envAPI, stdout, stderr)
	case "reinit":
		return runReinit(ctx, args[1:], envAPI, stdin, stdout, stderr)
	case "params":
		return runParams(ctx, args[1:], envAPI, stdout, stderr)
	case "backup", "backups":
		return runBackup(ctx, args[1:], envAPI, stdout, stderr)
	case "version":
		return runVersion(ctx, args[1:], envAPI, stdout, stderr)
	case "dsn":
		return runDSN(ctx, args[1:], envAPI, stdout, stderr)
	case "query":
		return runQuery(ctx, args[1:], envAPI, stdout, stderr)
	case "flush":
		return runFlush(ctx, args[1:], envAPI, stdin, stdout, stderr)
	case "remove":
		return runRemove(ctx, args[1:], envAPI, stdin, stdout, stderr)
	case "completion":
		return runCompletion(ctx, args[1:], stdout, stderr)
	case "--version":
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
	o := newOptions("list", stderr, "table")
	stdout = o.bind(stdout)
	watch := o.fs.Bool("watch", false, "redraw every second until interrupted")
	o.fs.BoolVar(watch, "W", false, "short for --watch")
	extended := o.fs.Bool("extended", false, "add the columns pending restart, scheduled restart and tags")
	o.fs.BoolVar(extended, "e", false, "short for --extended")
	c, code, ok := o.connect(ctx, args, envAPI)
	if !ok {
		return code
	}
	return watchOrOnce(ctx, *watch, stdout, stderr, func() error { return listOnce(ctx, c, o.output, *extended, stdout) })
}

// watchOrOnce runs show once (exit 1 on its error), or with watch every second until ctx
// ends, clearing a terminal before each round and printing the time and any error in place.
func watchOrOnce(ctx context.Context, watch bool, stdout, stderr io.Writer, show func() error) int {
	if !watch {
		return report(stderr, show())
	}
	clear := isTerminal(stdout)
	for {
		if clear {
			fmt.Fprint(stdout, "\033[H\033[2J")
		}
		fmt.Fprintln(stdout, time.Now().Format(time.DateTime))
		if err := show(); err != nil {
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
	f, ok := unwrap(w).(*os.File)
	if !ok {
		return false
	}
	fi, err := f.Stat()
	return err == nil && fi.Mode()&os.ModeCharDevice != 0
}
