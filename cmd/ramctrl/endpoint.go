package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/sethvargo/go-envconfig"

	"github.com/ramd-project/ramd/api/client"
	"github.com/ramd-project/ramd/consul"
	"github.com/ramd-project/ramd/routing"
)

// Defaults of Consul discovery: the same as ramd's RAMD_SCOPE and RAMD_NAMESPACE.
const (
	defaultScope     = "ramd"
	defaultNamespace = "service"
)

// endpoint is where a command finds the API. Precedence: --api, $RAMD_API_URL, the members'
// api_url in Consul (when --consul, --scope, --namespace, $CONSUL_HTTP_ADDR or $RAMD_SCOPE is
// set), then defaultAPI.
type endpoint struct {
	api       string
	consul    string
	scope     string
	namespace string
}

// register adds --api, --consul, --scope and --namespace to fs.
func (e *endpoint) register(fs *flag.FlagSet) {
	fs.StringVar(&e.api, "api", "", "ramd API URL(s), comma-separated (default: $RAMD_API_URL, else Consul discovery, else "+defaultAPI+")")
	fs.StringVar(&e.consul, "consul", "", "Consul agent address for discovery (default: $CONSUL_HTTP_ADDR)")
	fs.StringVar(&e.scope, "scope", "", "cluster name in Consul (default: $RAMD_SCOPE, else "+defaultScope+")")
	fs.StringVar(&e.namespace, "namespace", "", "Consul key namespace (default: $RAMD_NAMESPACE, else "+defaultNamespace+")")
}

// usageError marks a resolution error caused by what the operator typed (exit code 2).
type usageError struct{ error }

func (e usageError) Unwrap() error { return e.error }

// urls resolves the API URLs. lookup reads the environment (os.LookupEnv outside tests).
func (e *endpoint) urls(ctx context.Context, envAPI string, lookup func(string) (string, bool)) ([]string, error) {
	if raw := firstNonEmpty(e.api, envAPI); raw != "" {
		urls, err := parseAPIURLs(raw)
		if err != nil {
			return nil, usageError{err}
		}
		return urls, nil
	}
	envAddr, _ := lookup("CONSUL_HTTP_ADDR")
	envScope, _ := lookup("RAMD_SCOPE")
	if e.consul == "" && e.scope == "" && e.namespace == "" && envAddr == "" && envScope == "" {
		return parseAPIURLs(defaultAPI)
	}
	var cfg consul.Config
	if err := envconfig.ProcessWith(ctx, &envconfig.Config{Target: &cfg, Lookuper: envconfig.LookuperFunc(lookup)}); err != nil {
		return nil, usageError{fmt.Errorf("consul settings: %w", err)}
	}
	if e.consul != "" {
		cfg.Addr = e.consul
	}
	envNamespace, _ := lookup("RAMD_NAMESPACE")
	scope := firstNonEmpty(e.scope, envScope, defaultScope)
	namespace := firstNonEmpty(e.namespace, envNamespace, defaultNamespace)
	envService, _ := lookup("RAMD_SERVICE_NAME")
	found, err := discover(ctx, cfg, namespace, scope, envService)
	if err != nil {
		return nil, err
	}
	urls, err := parseAPIURLs(strings.Join(found, ","))
	if err != nil {
		return nil, fmt.Errorf("member record in Consul: %w", err)
	}
	return urls, nil
}

// discover reads the members' api_url from their records under <namespace>/<scope>/members/,
// the leader's first; when there are none (another namespace, or the key-value store is
// closed to this token), from the api_url meta of the cluster's service in the catalog
// (service name: the scope as a DNS label, or $RAMD_SERVICE_NAME), the primary's first.
func discover(ctx context.Context, cfg consul.Config, namespace, scope, service string) ([]string, error) {
	c, err := consul.New(cfg, nil)
	if err != nil {
		return nil, usageError{err}
	}
	store := c.Store(namespace, scope)
	where := fmt.Sprintf("%s%s in Consul at %s", store.Prefix(), consul.KeyMembers, firstNonEmpty(cfg.Addr, "127.0.0.1:8500"))
	pairs, kvErr := store.List(ctx, consul.KeyMembers)
	leader := ""
	if p, err := store.Get(ctx, consul.KeyLeader, false); err == nil {
		leader = string(p.Value)
	}
	var urls []string
	for _, p := range pairs {
		var m consul.Member
		if json.Unmarshal(p.Value, &m) != nil || m.APIURL == "" {
			continue
		}
		u := client.BaseURL(m.APIURL)
		if strings.TrimPrefix(p.Key, consul.KeyMembers) == leader {
			urls = append([]string{u}, urls...)
		} else {
			urls = append(urls, u)
		}
	}
	if len(urls) > 0 {
		return urls, nil
	}
	service = firstNonEmpty(service, routing.SanitizeName(scope))
	entries, catErr := c.CatalogService(ctx, service, "")
	for _, e := range entries {
		u := e.ServiceMeta[routing.MetaAPIURL]
		if u == "" {
			continue
		}
		if e.ServiceMeta[routing.MetaRole] == string(routing.RolePrimary) {
			urls = append([]string{client.BaseURL(u)}, urls...)
		} else {
			urls = append(urls, client.BaseURL(u))
		}
	}
	if len(urls) > 0 {
		return urls, nil
	}
	if kvErr != nil && catErr != nil {
		return nil, fmt.Errorf("discover the API from %s: %w (catalog: %w)", where, kvErr, catErr)
	}
	return nil, fmt.Errorf("no member with an api_url under %s nor in the catalog's service %q (check --scope and --namespace, or give --api)", where, service)
}

// options are the flags every command shares: where the API is and how to print.
type options struct {
	fs     *flag.FlagSet
	ep     endpoint
	output string
	stderr io.Writer
	lookup func(string) (string, bool) // the environment: os.LookupEnv
	// cluster is the cluster name given as patronictl takes it, a positional argument: it
	// is the scope for discovery, and the API that answers must serve that cluster.
	cluster string
}

// newOptions builds the flag set of "ramctrl <cmd>" with the shared flags; defaultOutput ""
// leaves --output out (the command prints no data).
func newOptions(cmd string, stderr io.Writer, defaultOutput string) *options {
	o := &options{fs: flag.NewFlagSet("ramctrl "+cmd, flag.ContinueOnError), stderr: stderr, lookup: os.LookupEnv}
	o.fs.SetOutput(stderr)
	o.ep.register(o.fs)
	if defaultOutput != "" {
		const help = "output format: table (pretty), json, yaml or tsv"
		o.fs.StringVar(&o.output, "output", defaultOutput, help)
		o.fs.StringVar(&o.output, "o", defaultOutput, "short for --output")
		o.fs.StringVar(&o.output, "format", defaultOutput, "the same as --output (patronictl's name)")
		o.fs.StringVar(&o.output, "f", defaultOutput, "short for --format")
	}
	return o
}

// parse parses args, refuses positional arguments and checks --output. When ok is false the command returns code.
func (o *options) parse(args []string) (code int, ok bool) {
	if err := o.fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return exitOK, false
		}
		return exitUsage, false
	}
	switch {
	case o.fs.NArg() == 1:
		o.cluster = o.fs.Arg(0) // patronictl's CLUSTER_NAME
	case o.fs.NArg() > 1:
		fmt.Fprintf(o.stderr, "%s: unexpected argument %q (only the cluster's name may be given)\n", o.fs.Name(), o.fs.Arg(1))
		return exitUsage, false
	}
	if o.output != "" && !validFormat(o.output) {
		fmt.Fprintf(o.stderr, "%s: --output must be table, json, yaml or tsv, not %q\n", o.fs.Name(), o.output)
		return exitUsage, false
	}
	return exitOK, true
}

// client resolves the API URLs and builds the client. When ok is false the command returns
// code (the reason is printed).
func (o *options) client(ctx context.Context, envAPI string) (c *client.Client, code int, ok bool) {
	if o.cluster != "" && o.ep.scope == "" {
		o.ep.scope = o.cluster
	}
	urls, err := o.ep.urls(ctx, envAPI, o.lookup)
	var ue usageError
	switch {
	case errors.As(err, &ue):
		fmt.Fprintf(o.stderr, "%s: %v\n", o.fs.Name(), err)
		return nil, exitUsage, false
	case err != nil:
		fmt.Fprintf(o.stderr, "ramctrl: %v\n", err)
		return nil, exitError, false
	}
	c = newClient(urls, requestTimeout)
	if o.cluster != "" {
		if err := checkCluster(ctx, c, o.cluster); err != nil {
			fmt.Fprintf(o.stderr, "%s: %v\n", o.fs.Name(), err)
			return nil, exitUsage, false
		}
	}
	return c, exitOK, true
}

// checkCluster refuses to go on when the API serves another cluster than the one named.
func checkCluster(ctx context.Context, c *client.Client, name string) error {
	cl, err := c.Cluster(ctx)
	if err != nil {
		return err
	}
	if cl.Scope != name {
		return fmt.Errorf("the API at %s serves cluster %q, not %q", strings.Join(c.URLs(), ","), cl.Scope, name)
	}
	return nil
}

// connect parses args and builds the client, for commands with nothing to check in between.
// When ok is false the command returns code.
func (o *options) connect(ctx context.Context, args []string, envAPI string) (c *client.Client, code int, ok bool) {
	if code, ok := o.parse(args); !ok {
		return nil, code, false
	}
	return o.client(ctx, envAPI)
}

// json reports whether a document was asked for (--output json or yaml) rather than a
// table.
func (o *options) json() bool { return o.output == formatJSON || o.output == formatYAML }

// bind returns w bound to the --output flag (see formatWriter); commands print through it.
func (o *options) bind(w io.Writer) io.Writer { return &formatWriter{w: w, format: &o.output} }
