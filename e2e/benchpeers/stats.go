package benchpeers

import (
	"fmt"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"
)

// Pattern is one workload.
type Pattern struct {
	// Name is the row label, e.g. "4 KiB rand read d32".
	Name string
	// Client is "qemu-img" or "tandem-bench".
	Client string
	Write  bool
	Seq    bool
	Size   int // bytes per I/O
	Depth  int
	// Count is the number of I/Os of a qemu-img run (tandem-bench runs
	// for a duration instead).
	Count int
}

// Sample is one run of a pattern against one peer.
type Sample struct {
	Peer    string
	Pattern string
	IOPS    float64
	MiBps   float64
	// CPUPerIO is the target's user+system CPU time over the run divided
	// by the I/Os; 0 when unknown.
	CPUPerIO time.Duration
	// Stalled: the run made no progress for the stall limit; the peer
	// was restarted and the sample carries no figures.
	Stalled bool
	// Failed: the client failed against the peer (an interoperability
	// error); the sample carries no figures.
	Failed bool
}

// Row is the median of a pattern's samples for each peer.
type Row struct {
	Pattern string
	Cells   map[string]Cell
}

// Cell is one peer's medians of one pattern.
type Cell struct {
	IOPS, MiBps float64
	CPUPerIO    time.Duration
	Runs        int // runs with figures
	Stalled     int
	Failed      int
}

// Median is the median of xs (the mean of the middle two for an even
// count); 0 for none.
func Median(xs []float64) float64 {
	if len(xs) == 0 {
		return 0
	}
	s := slices.Clone(xs)
	slices.Sort(s)
	n := len(s)
	if n%2 == 1 {
		return s[n/2]
	}
	return (s[n/2-1] + s[n/2]) / 2
}

// Summarize groups samples by pattern (in the order of patterns) and peer
// and takes medians over the runs that did not stall.
func Summarize(patterns []string, samples []Sample) []Row {
	var rows []Row
	for _, p := range patterns {
		type acc struct {
			iops, mib, cpu []float64
			stalled        int
			failed         int
		}
		by := map[string]*acc{}
		for _, s := range samples {
			if s.Pattern != p {
				continue
			}
			a := by[s.Peer]
			if a == nil {
				a = &acc{}
				by[s.Peer] = a
			}
			if s.Stalled {
				a.stalled++
				continue
			}
			if s.Failed {
				a.failed++
				continue
			}
			a.iops = append(a.iops, s.IOPS)
			a.mib = append(a.mib, s.MiBps)
			if s.CPUPerIO > 0 {
				a.cpu = append(a.cpu, float64(s.CPUPerIO))
			}
		}
		row := Row{Pattern: p, Cells: map[string]Cell{}}
		for peer, a := range by {
			row.Cells[peer] = Cell{IOPS: Median(a.iops), MiBps: Median(a.mib),
				CPUPerIO: time.Duration(Median(a.cpu)), Runs: len(a.iops), Stalled: a.stalled, Failed: a.failed}
		}
		rows = append(rows, row)
	}
	return rows
}

// StallWatch decides when a run has stalled: its progress counter (the
// target's socket bytes) has not moved by MinStep for Limit. MinStep
// keeps keep-alives (NOP-Out and NOP-In, some 100 bytes every few
// seconds) from counting as progress. Times are given, so tests drive it
// without a clock.
type StallWatch struct {
	Limit   time.Duration
	MinStep uint64

	last    uint64
	since   time.Time
	started bool
}

// Observe records the counter at now and reports whether the run has
// made no progress for Limit.
func (w *StallWatch) Observe(now time.Time, counter uint64) bool {
	if !w.started || counter < w.last || counter-w.last >= max(w.MinStep, 1) {
		w.started, w.last, w.since = true, counter, now
		return false
	}
	return now.Sub(w.since) >= w.Limit
}

var qemuDone = regexp.MustCompile(`Run completed in ([0-9.]+) seconds`)

// ParseQemuBench returns the run time qemu-img bench printed.
func ParseQemuBench(out string) (time.Duration, error) {
	m := qemuDone.FindStringSubmatch(out)
	if m == nil {
		return 0, fmt.Errorf("qemu-img bench printed no \"Run completed\" line: %q", lastLine(out))
	}
	s, err := strconv.ParseFloat(m[1], 64)
	if err != nil || s <= 0 {
		return 0, fmt.Errorf("qemu-img bench run time %q is not a positive number", m[1])
	}
	return time.Duration(s * float64(time.Second)), nil
}

func lastLine(s string) string {
	s = strings.TrimSpace(s)
	if i := strings.LastIndexByte(s, '\n'); i >= 0 {
		return s[i+1:]
	}
	return s
}

// Meta heads the table: where and when it was measured.
type Meta struct {
	Date    time.Time
	Machine string // e.g. "2 cores, Debian 12, load average 6.1"
	Reps    int
	Command string
}

// Table renders rows as Markdown: per pattern the median IOPS (MiB/s for
// sequential patterns) and target CPU per I/O of every peer, and each
// other peer's ratio to base (tandem's lead when base is the first).
func Table(rows []Row, peers []string, base string, seq map[string]bool, m Meta) string {
	head := []string{"pattern"}
	head = append(head, peers...)
	for _, p := range peers {
		if p != base {
			head = append(head, base+" / "+p)
		}
	}
	for _, p := range peers {
		head = append(head, "CPU/IO "+p)
	}
	var b strings.Builder
	b.WriteString("| " + strings.Join(head, " | ") + " |\n|" + strings.Repeat("---|", len(head)) + "\n")
	for _, r := range rows {
		fmt.Fprintf(&b, "| %s |", r.Pattern)
		for _, p := range peers {
			b.WriteString(" " + cellValue(r.Cells[p], seq[r.Pattern]) + " |")
		}
		bc := r.Cells[base]
		for _, p := range peers {
			if p == base {
				continue
			}
			c := r.Cells[p]
			if bc.Runs == 0 || c.Runs == 0 {
				b.WriteString(" - |")
				continue
			}
			x, y := bc.IOPS, c.IOPS
			if seq[r.Pattern] {
				x, y = bc.MiBps, c.MiBps
			}
			fmt.Fprintf(&b, " %.2fx |", x/y)
		}
		for _, p := range peers {
			c := r.Cells[p]
			if c.CPUPerIO == 0 {
				b.WriteString(" - |")
				continue
			}
			fmt.Fprintf(&b, " %.1f us |", float64(c.CPUPerIO)/float64(time.Microsecond))
		}
		b.WriteString("\n")
	}
	fmt.Fprintf(&b, "\nMedians of %d interleaved repetitions; IOPS, or MiB/s for sequential patterns; "+
		"CPU/IO is the target's user+system time per I/O from /proc/PID/stat. A cell marked \"N stalled\" "+
		"counts runs that made no progress (the target was restarted, the run left out of the median); \"N failed\" counts runs the client ended in an error.\n", m.Reps)
	fmt.Fprintf(&b, "Produced by `%s` on %s, %s.\n", m.Command, m.Machine, m.Date.UTC().Format("2006-01-02"))
	return b.String()
}

func cellValue(c Cell, seq bool) string {
	var s string
	switch {
	case c.Runs == 0 && c.Stalled == 0 && c.Failed == 0:
		return "-"
	case c.Runs == 0:
		s = "no run"
	case seq:
		s = fmt.Sprintf("%.0f MiB/s", c.MiBps)
	case c.IOPS >= 1000:
		s = fmt.Sprintf("%.1fk", c.IOPS/1000)
	default:
		s = fmt.Sprintf("%.0f", c.IOPS)
	}
	if c.Stalled > 0 {
		s += fmt.Sprintf(" (%d stalled)", c.Stalled)
	}
	if c.Failed > 0 {
		s += fmt.Sprintf(" (%d failed)", c.Failed)
	}
	return s
}
