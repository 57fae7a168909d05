package main

import (
	"fmt"
	"strings"
)

// diffContext is how many unchanged lines a hunk shows around a change, as diff -u does.
const diffContext = 3

// maxDiffCells bounds the longest-common-subsequence table (lines of a times lines of b); past
// it the diff replaces the whole text, which is still correct, only longer.
const maxDiffCells = 4 << 20

// diffLine is one line of an edit script: ' ' kept, '-' removed, '+' added. a and b count the
// lines of each side before it.
type diffLine struct {
	op   byte
	text string
	a, b int
}

// unifiedDiff returns a unified diff of two texts, line by line ("" when they are equal).
func unifiedDiff(nameA, nameB, a, b string) string {
	if a == b {
		return ""
	}
	script := editScript(splitLines(a), splitLines(b))
	var out strings.Builder
	fmt.Fprintf(&out, "--- %s\n+++ %s\n", nameA, nameB)
	for i := 0; i < len(script); {
		if script[i].op == ' ' {
			i++
			continue
		}
		start := max(i-diffContext, 0)
		end := i
		// Extend the hunk while the next change is within two contexts of the last one.
		for j := i; j < len(script); j++ {
			if script[j].op != ' ' {
				if j-end-1 > 2*diffContext {
					break
				}
				end = j
			}
		}
		end = min(end+diffContext+1, len(script))
		writeHunk(&out, script[start:end])
		i = end
	}
	return out.String()
}

// writeHunk writes one "@@ -a,n +b,m @@" hunk.
func writeHunk(out *strings.Builder, h []diffLine) {
	var na, nb int
	for _, l := range h {
		if l.op != '+' {
			na++
		}
		if l.op != '-' {
			nb++
		}
	}
	fmt.Fprintf(out, "@@ -%s +%s @@\n", hunkRange(h[0].a, na), hunkRange(h[0].b, nb))
	for _, l := range h {
		out.WriteByte(l.op)
		out.WriteString(l.text)
		out.WriteByte('\n')
	}
}

// hunkRange is "start,count" with start 1-based, or the line before when count is 0.
func hunkRange(before, count int) string {
	if count == 0 {
		return fmt.Sprintf("%d,0", before)
	}
	return fmt.Sprintf("%d,%d", before+1, count)
}

// editScript turns a into b by a longest common subsequence of lines.
func editScript(a, b []string) []diffLine {
	var script []diffLine
	add := func(op byte, text string, i, j int) { script = append(script, diffLine{op, text, i, j}) }
	if len(a)*len(b) > maxDiffCells {
		for i, l := range a {
			add('-', l, i, 0)
		}
		for j, l := range b {
			add('+', l, len(a), j)
		}
		return script
	}
	// lcs[i][j] is the length of the longest common subsequence of a[i:] and b[j:].
	lcs := make([][]int, len(a)+1)
	for i := range lcs {
		lcs[i] = make([]int, len(b)+1)
	}
	for i := len(a) - 1; i >= 0; i-- {
		for j := len(b) - 1; j >= 0; j-- {
			if a[i] == b[j] {
				lcs[i][j] = lcs[i+1][j+1] + 1
			} else {
				lcs[i][j] = max(lcs[i+1][j], lcs[i][j+1])
			}
		}
	}
	i, j := 0, 0
	for i < len(a) || j < len(b) {
		switch {
		case i < len(a) && j < len(b) && a[i] == b[j]:
			add(' ', a[i], i, j)
			i, j = i+1, j+1
		case j < len(b) && (i == len(a) || lcs[i][j+1] > lcs[i+1][j]):
			add('+', b[j], i, j)
			j++
		default:
			add('-', a[i], i, j)
			i++
		}
	}
	return script
}

// splitLines splits text into lines without their newlines.
func splitLines(s string) []string {
	if s == "" {
		return nil
	}
	return strings.Split(strings.TrimSuffix(s, "\n"), "\n")
}
