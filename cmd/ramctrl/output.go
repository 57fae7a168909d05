package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"

	"github.com/goccy/go-yaml"
)

// Output formats of --output (-o, and patronictl's -f/--format). pretty is patronictl's
// name of the table.
const (
	formatTable  = "table"
	formatPretty = "pretty"
	formatJSON   = "json"
	formatYAML   = "yaml"
	formatTSV    = "tsv"
)

// validFormat reports whether f is an output format ramctrl prints.
func validFormat(f string) bool {
	switch f {
	case formatTable, formatPretty, formatJSON, formatYAML, formatTSV:
		return true
	}
	return false
}

// formatWriter is stdout bound to the command's --output: writeJSON prints YAML through it
// when asked, and newTable separates cells with a tab instead of aligning them for tsv.
// format points at the flag's value, so a writer bound before the flags are parsed follows
// them.
type formatWriter struct {
	w      io.Writer
	format *string
}

// Write writes p unchanged.
func (f *formatWriter) Write(p []byte) (int, error) { return f.w.Write(p) }

// formatOf is the output format w is bound to ("" when it is not a formatWriter).
func formatOf(w io.Writer) string {
	if f, ok := w.(*formatWriter); ok && f.format != nil {
		return *f.format
	}
	return ""
}

// unwrap returns the writer beneath a formatWriter.
func unwrap(w io.Writer) io.Writer {
	if f, ok := w.(*formatWriter); ok {
		return f.w
	}
	return w
}

// writeJSON writes v to w as JSON indented by two spaces, followed by a newline; as YAML
// (block style, keys in the JSON's order) when w is bound to --output yaml.
func writeJSON(w io.Writer, v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return err
	}
	if formatOf(w) == formatYAML {
		y, err := yaml.JSONToYAML(b)
		if err != nil {
			return fmt.Errorf("render YAML: %w", err)
		}
		_, err = w.Write(y)
		return err
	}
	var out bytes.Buffer
	if err := json.Indent(&out, b, "", "  "); err != nil {
		return fmt.Errorf("invalid JSON answer: %w", err)
	}
	out.WriteByte('\n')
	_, err = out.WriteTo(w)
	return err
}

// table is where a command writes tab-separated rows: aligned columns, or the rows as
// they are for tsv.
type table interface {
	io.Writer
	Flush() error
}

// newTable returns the table of w: aligned columns with the given minimum cell width, tab
// width and padding (no trailing blanks when the last cells are empty), or, when w is bound
// to --output tsv, w itself.
func newTable(w io.Writer, minwidth, tabwidth, padding int) table {
	if formatOf(w) == formatTSV {
		return tsvTable{w}
	}
	t := &alignedTable{w: w}
	t.tw = tabwriter.NewWriter(&t.buf, minwidth, tabwidth, padding, ' ', 0)
	return t
}

// alignedTable aligns the rows with a tabwriter and writes them without trailing blanks.
type alignedTable struct {
	w   io.Writer
	buf bytes.Buffer
	tw  *tabwriter.Writer
}

// Write adds rows.
func (t *alignedTable) Write(p []byte) (int, error) { return t.tw.Write(p) }

// Flush aligns the rows written so far and writes them to the underlying writer.
func (t *alignedTable) Flush() error {
	if err := t.tw.Flush(); err != nil {
		return err
	}
	var out bytes.Buffer
	for line := range strings.Lines(t.buf.String()) {
		out.WriteString(strings.TrimRight(line, " \n"))
		out.WriteByte('\n')
	}
	t.buf.Reset()
	_, err := out.WriteTo(t.w)
	return err
}

// tsvTable writes rows unaligned.
type tsvTable struct{ io.Writer }

// Flush does nothing: rows were written as they came.
func (tsvTable) Flush() error { return nil }

// tsv reports whether w is bound to --output tsv (titles and notes around a table are left
// out then, so the output is the table alone).
func tsv(w io.Writer) bool { return formatOf(w) == formatTSV }
