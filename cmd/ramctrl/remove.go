package main

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"sort"
	"strings"

	"github.com/sethvargo/go-envconfig"

	"github.com/ramd-project/ramd/consul"
)

// removeAware is the sentence patronictl remove makes the operator type.
const removeAware = "Yes I am aware"

// runRemove: ramctrl remove SCOPE [--consul ADDR] [--namespace NS], patronictl's remove: it
// deletes every key of the cluster in Consul (<namespace>/<scope>/), after the operator typed
// the cluster's name, "Yes I am aware" and, while a leader holds the lock, the leader's name.
// It talks to Consul directly, as patronictl does: no member should run any more (a running
// ramd writes its keys again), and those that do are named before the questions.
func runRemove(ctx context.Context, args []string, envAPI string, stdin io.Reader, stdout, stderr io.Writer) int {
	_ = envAPI // the API is not involved: the keys are removed in Consul
	o := newOptions("remove", stderr, "")
	words, code, ok := parseWithMembers(o, args)
	if !ok {
		return code
	}
	if len(words) != 1 || strings.Trim(words[0], "/") == "" {
		fmt.Fprintln(stderr, "usage: ramctrl remove SCOPE [--consul ADDR] [--namespace NS]")
		return exitUsage
	}
	scope := words[0]
	var cfg consul.Config
	if err := envconfig.ProcessWith(ctx, &envconfig.Config{Target: &cfg, Lookuper: envconfig.LookuperFunc(o.lookup)}); err != nil {
		fmt.Fprintf(stderr, "ramctrl remove: consul settings: %v\n", err)
		return exitUsage
	}
	if o.ep.consul != "" {
		cfg.Addr = o.ep.consul
	}
	envNamespace, _ := o.lookup("RAMD_NAMESPACE")
	namespace := firstNonEmpty(o.ep.namespace, envNamespace, defaultNamespace)
	c, err := consul.New(cfg, nil)
	if err != nil {
		return report(stderr, err)
	}
	store := c.Store(namespace, scope)
	pairs, err := store.List(ctx, "")
	if err != nil {
		return report(stderr, fmt.Errorf("read %s: %w", store.Prefix(), err))
	}
	if len(pairs) == 0 {
		return report(stderr, fmt.Errorf("no keys under %s in Consul: no cluster %q in namespace %q", store.Prefix(), scope, namespace))
	}
	leader := ""
	var running []string
	for _, p := range pairs {
		switch {
		case p.Key == consul.KeyLeader:
			leader = string(p.Value)
		case strings.HasPrefix(p.Key, consul.KeyMembers):
			running = append(running, strings.TrimPrefix(p.Key, consul.KeyMembers))
		}
	}
	sort.Strings(running)
	if len(running) > 0 {
		fmt.Fprintf(stderr, "Warning: ramd still runs on %s (their member keys exist): stop it there first, or it writes its keys again\n", strings.Join(running, ", "))
	}
	in := bufio.NewReader(stdin)
	ask := func(prompt, want string) bool {
		fmt.Fprintf(stderr, "%s: ", prompt)
		line, _ := in.ReadString('\n')
		return strings.TrimSpace(line) == want
	}
	if !ask("Please confirm the cluster name to remove", scope) {
		fmt.Fprintln(stderr, "ramctrl: the names do not match; nothing removed")
		return exitError
	}
	if !ask(fmt.Sprintf("You are about to remove all information in Consul for %s (%d keys under %s), please type: %q", scope, len(pairs), store.Prefix(), removeAware), removeAware) {
		fmt.Fprintln(stderr, "ramctrl: you did not type it; nothing removed")
		return exitError
	}
	if leader != "" && !ask("This cluster currently has a leader. Please specify the leader name to continue", leader) {
		fmt.Fprintln(stderr, "ramctrl: you did not specify the leader's name; nothing removed")
		return exitError
	}
	if err := store.DeleteTree(ctx, ""); err != nil {
		return report(stderr, err)
	}
	fmt.Fprintf(stdout, "Removed %d keys under %s\n", len(pairs), store.Prefix())
	return exitOK
}
