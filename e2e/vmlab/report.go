package vmlab

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"text/tabwriter"
	"time"
)

// Table is the report's table as text.
func Table(outs []Outcome) string {
	var b strings.Builder
	w := tabwriter.NewWriter(&b, 0, 0, 2, ' ', 0)
	fmt.Fprintln(w, "scenario\toutcome\tfault -> first ack\tlongest gap\tacked\tlost\tduplicated\tfenced node\twrites refused / accepted after fence\tactive before -> after\tsplit")
	for _, o := range outs {
		v := "pass"
		if !o.Passed {
			v = "FAIL"
		}
		fenced := o.Fenced
		if fenced == "" {
			fenced = "-"
		}
		lost := fmt.Sprint(o.Lost)
		if o.Lost < 0 {
			lost = "?"
		}
		fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%d\t%s\t%d\t%s\t%d / %d\t%s -> %s\t%s\n", o.Scenario, v, o.Recovery.Round(time.Millisecond),
			o.Outage.Round(time.Millisecond), o.Acked, lost, o.Dup, fenced, o.Refused, o.WritesAfterFence, o.Before, o.After, SplitString(o.Split))
	}
	w.Flush()
	return b.String()
}

// SplitString prints a split in the takeover's order.
func SplitString(s map[string]time.Duration) string {
	var parts []string
	for _, k := range []string{"detection", "iscsi+fence", "fsck+mount", "mq start", "vip", "client"} {
		if d, ok := s[k]; ok {
			parts = append(parts, fmt.Sprintf("%s %s", k, d.Round(time.Millisecond)))
		}
	}
	return strings.Join(parts, ", ")
}

// BenchSummary is the median and worst recovery of the runs, with the
// median split.
func BenchSummary(outs []Outcome) string {
	var rec []time.Duration
	split := map[string][]time.Duration{}
	for _, o := range outs {
		if o.Recovery > 0 {
			rec = append(rec, o.Recovery)
		}
		for k, v := range o.Split {
			split[k] = append(split[k], v)
		}
	}
	if len(rec) == 0 {
		return "no run recovered\n"
	}
	med := map[string]time.Duration{}
	for k, v := range split {
		med[k] = median(v)
	}
	return fmt.Sprintf("power-off -> first ack via VIP, %d runs: median %s, worst %s; median split: %s\n",
		len(rec), median(rec).Round(time.Millisecond), slices.Max(rec).Round(time.Millisecond), SplitString(med))
}

func median(d []time.Duration) time.Duration {
	d = slices.Clone(d)
	slices.Sort(d)
	return d[len(d)/2]
}

// WriteReport writes the report folder (the table and every scenario's
// events) and returns the page's path.
func WriteReport(dir string, outs []Outcome) (string, error) {
	var b strings.Builder
	b.WriteString("<!doctype html><meta charset=utf-8><title>tandem VM lab</title><h1>tandem VM lab</h1><pre>")
	b.WriteString(htmlEscape(Table(outs)))
	b.WriteString("</pre>")
	for i, o := range outs {
		name := fmt.Sprintf("%02d-%s", i+1, o.Scenario)
		var ev strings.Builder
		for _, e := range o.Events {
			fmt.Fprintf(&ev, "%8.3fs %-8s %s\n", e.At.Sub(o.Start).Seconds(), e.Node, e.Line)
		}
		if err := os.WriteFile(filepath.Join(dir, name+".events.txt"), []byte(ev.String()), 0o644); err != nil {
			return "", err
		}
		svg, err := Timeline(o)
		if err != nil {
			return "", err
		}
		tl := timelineName(i, o.Scenario)
		if err := os.WriteFile(filepath.Join(dir, tl), svg, 0o644); err != nil {
			return "", err
		}
		fmt.Fprintf(&b, "<h2>%s</h2><p>%s</p><p><img src=%q alt=\"timeline\"></p><p><a href=%q>events</a></p>",
			htmlEscape(o.Scenario), htmlEscape(strings.Join(o.Problems, "; ")), tl, name+".events.txt")
	}
	p := filepath.Join(dir, "index.html")
	return p, os.WriteFile(p, []byte(b.String()), 0o644)
}

func htmlEscape(s string) string {
	return strings.NewReplacer("&", "&amp;", "<", "&lt;", ">", "&gt;").Replace(s)
}
