// Package importer holds what the configuration importers share: the
// finding every importer reports for a line of the original that has no
// equivalent, or that was unsafe. The importers themselves
// (importer/heartbeat, importer/tgt) are pure: they parse text they are
// given and return a typed configuration plus findings; reading the
// original files and writing the results is tandemctl's job.
package importer

import (
	"fmt"
	"strings"
)

// Kind classifies a finding.
type Kind string

// Finding kinds.
const (
	// Unmapped: the line has no equivalent in tandem and was left out.
	Unmapped Kind = "unmapped"
	// Warning: imported, but the original (or the import) is unsafe or
	// changes behaviour; read Message.
	Warning Kind = "warning"
	// Note: imported with a small difference worth knowing.
	Note Kind = "note"
)

// Finding is one remark about the original configuration.
type Finding struct {
	Kind Kind `json:"kind"`
	// File and Line locate the original line; Line 0 means the whole file
	// (or none, for a remark about the result).
	File string `json:"file,omitempty"`
	Line int    `json:"line,omitempty"`
	// Directive is the original directive (never its secret arguments).
	Directive string `json:"directive,omitempty"`
	// Message says what happened and what to do.
	Message string `json:"message"`
	// YAML, when set, is the exact block to add to the imported file.
	YAML string `json:"yaml,omitempty"`
}

// String renders f on one line (plus the YAML block, indented).
func (f Finding) String() string {
	var b strings.Builder
	b.WriteString(string(f.Kind))
	if f.File != "" {
		b.WriteString(" " + f.File)
		if f.Line > 0 {
			fmt.Fprintf(&b, ":%d", f.Line)
		}
	}
	if f.Directive != "" {
		b.WriteString(" " + f.Directive)
	}
	b.WriteString(": " + f.Message)
	if f.YAML != "" {
		for _, l := range strings.Split(strings.TrimRight(f.YAML, "\n"), "\n") {
			b.WriteString("\n    " + l)
		}
	}
	return b.String()
}

// Line is one logical line of a configuration file: its number (the first
// physical line when continued), its fields, without the comment.
type Line struct {
	N      int
	Fields []string
}

// SplitLines splits text into non-empty lines of fields. A '#' starts a
// comment; a trailing '\' continues the line on the next one.
func SplitLines(text string) []Line {
	var out []Line
	var cur []string
	start := 0
	for i, raw := range strings.Split(text, "\n") {
		if c := strings.IndexByte(raw, '#'); c >= 0 {
			raw = raw[:c]
		}
		raw = strings.TrimRight(raw, " \t\r")
		cont := strings.HasSuffix(raw, "\\")
		raw = strings.TrimSuffix(raw, "\\")
		if len(cur) == 0 {
			start = i + 1
		}
		cur = append(cur, strings.Fields(raw)...)
		if cont {
			continue
		}
		if len(cur) > 0 {
			out = append(out, Line{N: start, Fields: cur})
		}
		cur = nil
	}
	if len(cur) > 0 {
		out = append(out, Line{N: start, Fields: cur})
	}
	return out
}
