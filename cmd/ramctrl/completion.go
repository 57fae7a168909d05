package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"regexp"
	"slices"
	"strings"
)

// commandTree lists ramctrl's commands and their subcommands, in the usage's order.
var commandTree = []struct {
	name string
	subs []string
}{
	{"list", nil}, {"topology", nil}, {"sync", []string{"show", "set"}}, {"switchover", nil}, {"failover", nil},
	{"history", nil}, {"pause", nil}, {"resume", nil}, {"restart", nil}, {"reload", nil}, {"reinit", nil},
	{"flush", []string{"restart", "switchover"}}, {"dsn", nil}, {"query", nil}, {"remove", nil},
	{"config", []string{"show", "edit"}}, {"params", []string{"list", "show", "validate", "tune"}},
	{"backup", []string{"create", "list", "show", "jobs", "check", "expire", "schedule"}},
	{"version", nil}, {"completion", []string{"bash"}}, {"help", nil},
}

// memberArgs are the commands whose positional arguments are member names.
var memberArgs = []string{"restart", "reload", "reinit", "flush"}

// flagLine matches a flag in the output of flag.PrintDefaults: "  -name type".
var flagLine = regexp.MustCompile(`(?m)^  -(\S+)`)

// commandFlags are the flags of "ramctrl cmd [sub]", read from its own flag set (it prints
// them for -h without connecting anywhere), long names as --name and one-letter ones as -x.
func commandFlags(ctx context.Context, cmd, sub string) []string {
	args := []string{cmd}
	if sub != "" {
		args = append(args, sub)
	}
	var out bytes.Buffer
	run(ctx, append(args, "-h"), "", io.Discard, &out)
	var flags []string
	for _, m := range flagLine.FindAllStringSubmatch(out.String(), -1) {
		if len(m[1]) == 1 {
			flags = append(flags, "-"+m[1])
		} else {
			flags = append(flags, "--"+m[1])
		}
	}
	slices.Sort(flags)
	return slices.Compact(flags)
}

// runCompletion: ramctrl completion bash prints a bash completion script: commands,
// subcommands, each command's flags, the values of --output and --role, and member names
// (read with ramctrl list --output tsv) where a command takes them. Load it with
// `source <(ramctrl completion bash)` or install it as /etc/bash_completion.d/ramctrl.
func runCompletion(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	if len(args) != 1 || args[0] != "bash" {
		fmt.Fprintln(stderr, "usage: ramctrl completion bash")
		return exitUsage
	}
	var b strings.Builder
	b.WriteString(`# bash completion for ramctrl (ramctrl completion bash)
_ramctrl_members() {
  ramctrl list --output tsv 2>/dev/null | tail -n +2 | cut -f1
}
_ramctrl() {
  local cur prev cmd sub words
  cur="${COMP_WORDS[COMP_CWORD]}"
  prev="${COMP_WORDS[COMP_CWORD-1]}"
  cmd="${COMP_WORDS[1]}"
  sub="${COMP_WORDS[2]}"
  if [ "$COMP_CWORD" -eq 1 ]; then
`)
	var names []string
	for _, c := range commandTree {
		names = append(names, c.name)
	}
	fmt.Fprintf(&b, "    COMPREPLY=($(compgen -W %q -- \"$cur\"))\n    return\n  fi\n", strings.Join(names, " "))
	b.WriteString(`  case "$prev" in
    --output|-o|--format|-f) COMPREPLY=($(compgen -W "table json yaml tsv" -- "$cur")); return ;;
    --role|-r) COMPREPLY=($(compgen -W "leader primary replica sync any" -- "$cur")); return ;;
    --member|-m|--candidate|--leader) COMPREPLY=($(compgen -W "$(_ramctrl_members)" -- "$cur")); return ;;
    --mode) COMPREPLY=($(compgen -W "off on quorum" -- "$cur")); return ;;
    --file|--apply) COMPREPLY=($(compgen -f -- "$cur")); return ;;
  esac
  case "$cmd" in
`)
	for _, c := range commandTree {
		if c.name == "help" || c.name == "completion" {
			continue
		}
		fmt.Fprintf(&b, "    %s)\n", c.name)
		if len(c.subs) > 0 && c.name != "flush" {
			fmt.Fprintf(&b, "      if [ \"$COMP_CWORD\" -eq 2 ]; then COMPREPLY=($(compgen -W %q -- \"$cur\")); return; fi\n", strings.Join(c.subs, " "))
			b.WriteString("      case \"$sub\" in\n")
			for _, s := range c.subs {
				fmt.Fprintf(&b, "        %s) words=%q ;;\n", s, strings.Join(commandFlags(ctx, c.name, s), " "))
			}
			b.WriteString("      esac\n      ;;\n")
			continue
		}
		words := strings.Join(commandFlags(ctx, c.name, ""), " ")
		if c.name == "flush" {
			words += " " + strings.Join(c.subs, " ")
		}
		if slices.Contains(memberArgs, c.name) {
			fmt.Fprintf(&b, "      words=\"%s $(_ramctrl_members)\" ;;\n", words)
		} else {
			fmt.Fprintf(&b, "      words=%q ;;\n", words)
		}
	}
	b.WriteString(`  esac
  COMPREPLY=($(compgen -W "$words" -- "$cur"))
}
complete -F _ramctrl ramctrl
`)
	_, err := io.WriteString(stdout, b.String())
	return report(stderr, err)
}
