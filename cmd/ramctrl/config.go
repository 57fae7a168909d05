package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"slices"
	"sort"
	"strings"

	"github.com/ramd-project/ramd/api/client"
)

const configUsage = `usage: ramctrl config show [--output json|table]
       ramctrl config edit [--force] [--set KEY=VALUE]... [--apply FILE]`

// runConfig: ramctrl config show | ramctrl config edit.
func runConfig(ctx context.Context, args []string, envAPI string, stdin io.Reader, stdout, stderr io.Writer) int {
	if len(args) == 0 || (args[0] != "show" && args[0] != "edit") {
		fmt.Fprintln(stderr, configUsage)
		return exitUsage
	}
	if args[0] == "edit" {
		return runConfigEdit(ctx, args[1:], envAPI, stdin, stdout, stderr)
	}
	o := newOptions("config show", stderr, "json")
	stdout = o.bind(stdout)
	c, code, ok := o.connect(ctx, args[1:], envAPI)
	if !ok {
		return code
	}
	cfg, err := c.Config(ctx)
	if err == nil {
		if o.json() {
			err = writeJSON(stdout, cfg.Doc)
		} else {
			err = renderConfig(stdout, cfg.Doc)
		}
	}
	return report(stderr, err)
}

// renderConfig prints the configuration as key/value rows, nested keys joined by dots (the
// names --set takes).
func renderConfig(w io.Writer, doc map[string]any) error {
	rows := map[string]string{}
	flatten("", doc, rows)
	keys := make([]string, 0, len(rows))
	for k := range rows {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	tw := newTable(w, 0, 0, 2)
	fmt.Fprintln(tw, "Key\tValue")
	for _, k := range keys {
		fmt.Fprintf(tw, "%s\t%s\n", k, rows[k])
	}
	return tw.Flush()
}

// flatten adds the leaves of doc to rows under dotted keys; strings print bare, other values
// as JSON.
func flatten(prefix string, doc map[string]any, rows map[string]string) {
	for k, v := range doc {
		key := prefix + k
		if m, ok := v.(map[string]any); ok && len(m) > 0 {
			flatten(key+".", m, rows)
			continue
		}
		if s, ok := v.(string); ok {
			rows[key] = s
			continue
		}
		b, _ := json.Marshal(v)
		rows[key] = string(b)
	}
}

// setFlag collects repeated --set KEY=VALUE arguments.
type setFlag []string

func (s *setFlag) String() string     { return strings.Join(*s, " ") }
func (s *setFlag) Set(v string) error { *s = append(*s, v); return nil }

// runConfigEdit changes the dynamic configuration by compare-and-set against the version it
// read: in $VISUAL/$EDITOR, with --set (PATCH) or with --apply FILE (PUT). It shows the diff
// and asks before writing unless --force; a refused write changes nothing and exits 1.
func runConfigEdit(ctx context.Context, args []string, envAPI string, stdin io.Reader, stdout, stderr io.Writer) int {
	o := newOptions("config edit", stderr, "")
	force := o.fs.Bool("force", false, "apply without asking for confirmation")
	var sets, pgSets setFlag
	o.fs.Var(&sets, "set", "KEY=VALUE to change without an editor (repeatable): VALUE is JSON, a bare word a string, null deletes; dots name nested keys")
	o.fs.Var(&sets, "s", "short for --set (patronictl's)")
	o.fs.Var(&pgSets, "pg", "NAME=VALUE: the PostgreSQL parameter NAME (postgresql.parameters.NAME), as patronictl's --pg")
	o.fs.Var(&pgSets, "p", "short for --pg")
	apply := o.fs.String("apply", "", "replace the whole configuration with this JSON file (- reads stdin and needs --force)")
	o.fs.StringVar(apply, "replace", "", "the same as --apply (patronictl's name for replacing)")
	if code, ok := o.parse(args); !ok {
		return code
	}
	for _, p := range pgSets {
		sets = append(sets, "postgresql.parameters."+p)
	}
	patch, err := parseSets(sets)
	switch {
	case err != nil:
		fmt.Fprintf(stderr, "ramctrl config edit: %v\n", err)
		return exitUsage
	case len(sets) > 0 && *apply != "":
		fmt.Fprintln(stderr, "ramctrl config edit: --set and --apply exclude each other")
		return exitUsage
	case *apply == "-" && !*force:
		fmt.Fprintln(stderr, "ramctrl config edit: --apply - reads stdin, so it cannot ask: add --force")
		return exitUsage
	}
	var applied []byte
	if *apply != "" {
		if applied, err = readInput(*apply, stdin); err != nil {
			fmt.Fprintf(stderr, "ramctrl: --apply: %v\n", err)
			return exitError
		}
	}
	c, code, ok := o.client(ctx, envAPI)
	if !ok {
		return code
	}
	e := &configEdit{c: c, stdin: stdin, stdout: stdout, stderr: stderr, force: *force}
	if err := e.load(ctx); err != nil {
		fmt.Fprintf(stderr, "ramctrl: %v\n", err)
		return exitError
	}
	switch {
	case len(sets) > 0:
		next, _ := decodeObject([]byte(e.before))
		mergeInto(next, patch)
		return e.write(ctx, http.MethodPatch, next, patch)
	case *apply != "":
		next, err := decodeObject(applied)
		if err != nil {
			fmt.Fprintf(stderr, "ramctrl: --apply %s: %v\n", *apply, err)
			return exitError
		}
		return e.write(ctx, http.MethodPut, next, next)
	}
	next, err := e.editor(ctx, os.LookupEnv)
	if err != nil {
		fmt.Fprintf(stderr, "ramctrl: %v\n", err)
		return exitError
	}
	return e.write(ctx, http.MethodPut, next, next)
}

// configEdit is one edit of the dynamic configuration: what was read and how to talk back.
type configEdit struct {
	c      *client.Client
	stdin  io.Reader
	stdout io.Writer
	stderr io.Writer
	force  bool
	etag   string // the ETag of GET /config, the Consul index the write is conditional on
	before string // the configuration as read, pretty-printed
}

// load reads the configuration and its ETag.
func (e *configEdit) load(ctx context.Context) error {
	cfg, err := e.c.Config(ctx)
	if err != nil {
		return err
	}
	e.etag, e.before = cfg.ETag, pretty(cfg.Doc)
	if e.etag == "" {
		fmt.Fprintln(e.stderr, "ramctrl: warning: GET /config sent no ETag, so the write cannot be conditional")
	}
	return nil
}

// editor lets the operator edit the configuration in $VISUAL, $EDITOR or vi and returns the
// result. An edit that is not a JSON object is kept in its file, and the error says where.
func (e *configEdit) editor(ctx context.Context, lookup func(string) (string, bool)) (map[string]any, error) {
	f, err := os.CreateTemp("", "ramctrl-config-*.json")
	if err != nil {
		return nil, err
	}
	path := f.Name()
	_, err = f.WriteString(e.before)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		_ = os.Remove(path)
		return nil, err
	}
	visual, _ := lookup("VISUAL")
	editor, _ := lookup("EDITOR")
	argv := strings.Fields(firstNonEmpty(strings.TrimSpace(visual), strings.TrimSpace(editor), "vi"))
	cmd := exec.CommandContext(ctx, argv[0], append(argv[1:], path)...)
	// Only a terminal goes to the editor: a copied reader would swallow the confirmation.
	if in, ok := e.stdin.(*os.File); ok {
		cmd.Stdin = in
	}
	cmd.Stdout, cmd.Stderr = e.stdout, e.stderr
	if err := cmd.Run(); err != nil {
		_ = os.Remove(path)
		return nil, fmt.Errorf("editor %s: %w; nothing was changed", strings.Join(argv, " "), err)
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	next, err := decodeObject(b)
	if err != nil {
		return nil, fmt.Errorf("the edited configuration is not a JSON object (%w); nothing was changed, the edit is kept in %s", err, path)
	}
	_ = os.Remove(path)
	return next, nil
}

// write shows the change from what was read to next and sends body (a PATCH or a PUT) with
// If-Match.
func (e *configEdit) write(ctx context.Context, method string, next, body map[string]any) int {
	after := pretty(next)
	if after == e.before {
		fmt.Fprintln(e.stdout, "no changes")
		return exitOK
	}
	fmt.Fprint(e.stdout, unifiedDiff("config (ETag "+e.etag+")", "config (edited)", e.before, after))
	if !e.force && !confirm(e.stdin, e.stderr, "apply these changes") {
		fmt.Fprintln(e.stderr, "ramctrl: aborted, nothing was changed")
		return exitError
	}
	var err error
	if method == http.MethodPatch {
		var out client.ConfigWrite
		out, err = e.c.PatchConfigWarnings(ctx, body, e.etag)
		for _, w := range out.Warnings {
			fmt.Fprintf(e.stderr, "warning: %s\n", w)
		}
	} else {
		_, err = e.c.ReplaceConfig(ctx, body, e.etag)
	}
	var r *client.Error
	switch {
	case err == nil:
		fmt.Fprintln(e.stdout, "configuration updated")
		return exitOK
	case !errors.As(err, &r):
		fmt.Fprintf(e.stderr, "ramctrl: %v\n", err)
	case r.Code == http.StatusConflict || r.Code == http.StatusPreconditionFailed:
		fmt.Fprintf(e.stderr, "ramctrl: the configuration changed since it was read (%s); nothing was changed, run the command again\n", r.Status)
	case r.Code >= 400 && r.Code < 500:
		fmt.Fprintf(e.stderr, "ramctrl: %s /config refused (%s): %s\nnothing was changed\n", method, r.Status, r.Reason())
	default:
		fmt.Fprintf(e.stderr, "ramctrl: %s /config failed (%s): %s\n", method, r.Status, r.Reason())
	}
	return exitError
}

// parseSets turns KEY=VALUE arguments into a JSON merge patch. VALUE is JSON, and anything
// that is not JSON is a string; null deletes the key; dots in KEY name nested keys.
func parseSets(sets []string) (map[string]any, error) {
	patch := map[string]any{}
	for _, s := range sets {
		key, raw, ok := strings.Cut(s, "=")
		path := strings.Split(key, ".")
		if !ok || slices.Contains(path, "") {
			return nil, fmt.Errorf("--set %q: want KEY=VALUE (nested keys as a.b.c)", s)
		}
		var v any = raw
		dec := json.NewDecoder(strings.NewReader(raw))
		dec.UseNumber()
		var parsed any
		if dec.Decode(&parsed) == nil && !dec.More() {
			v = parsed
		}
		m := patch
		for _, p := range path[:len(path)-1] {
			sub, ok := m[p].(map[string]any)
			if !ok {
				sub = map[string]any{}
				m[p] = sub
			}
			m = sub
		}
		m[path[len(path)-1]] = v
	}
	return patch, nil
}

// mergeInto applies the JSON merge patch (RFC 7386) patch to doc in place: null deletes,
// objects merge, anything else replaces.
func mergeInto(doc, patch map[string]any) {
	for k, pv := range patch {
		sub, isObject := pv.(map[string]any)
		switch {
		case pv == nil:
			delete(doc, k)
		case isObject:
			target, ok := doc[k].(map[string]any)
			if !ok {
				target = map[string]any{}
				doc[k] = target
			}
			mergeInto(target, sub)
		default:
			doc[k] = pv
		}
	}
}

// decodeObject parses a JSON object, keeping numbers as written.
func decodeObject(b []byte) (map[string]any, error) {
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	var doc map[string]any
	if err := dec.Decode(&doc); err != nil {
		return nil, err
	}
	if doc == nil {
		return nil, errors.New("not a JSON object")
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return nil, errors.New("text after the JSON object")
	}
	return doc, nil
}

// pretty is doc as JSON indented by two spaces with sorted keys, as the editor shows it.
func pretty(doc map[string]any) string {
	var b strings.Builder
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	enc.SetIndent("", "  ")
	_ = enc.Encode(doc)
	return b.String()
}

// readInput reads a file, or stdin for "-".
func readInput(name string, stdin io.Reader) ([]byte, error) {
	if name == "-" {
		return io.ReadAll(io.LimitReader(stdin, 8<<20))
	}
	return os.ReadFile(name)
}
