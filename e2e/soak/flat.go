package soak

import (
	"fmt"
	"math"
	"slices"
)

// Limits say how flat a resource series must stay.
//
// The first Warmup fraction of the rounds is warm-up: caches, connection
// pools, the Go heap and preallocated rings settle there, so it is not
// judged (the target's audit ring of 65536 records, about 8 MiB, is paged
// in over the first 30-odd rounds of the partition lab: a plateau, not a
// leak). The window (Window of the rounds, at least MinWindow) right after
// warm-up is the baseline; the last window of the run is compared with it. Medians, not
// means or single samples, so that one GC cycle or one round caught in a
// transition does not decide: a leak moves the median, noise does not.
type Limits struct {
	// Warmup is the fraction of rounds before the baseline (0.3: the
	// first 30 %).
	Warmup float64
	// Window is the fraction of rounds in the baseline and the last
	// window (0.1: 10 %).
	Window float64
	// MinWindow is the least number of rounds in a window.
	MinWindow int
	// Rel is the growth allowed from the baseline's median to the last
	// window's (0.05: 5 %).
	Rel float64
	// Abs is added to the allowance, for series of small numbers (a
	// process with 12 fds may hold 13 during a reconnect: 8 %, no leak).
	Abs float64
}

// DefaultLimits: the first 30 % is warm-up, windows of 10 % of the rounds
// (at least 3), 5 % growth.
// Abs is per measure (FDSlack, GoroutineSlack, ThreadSlack, RSSSlackKiB).
func DefaultLimits(abs float64) Limits {
	return Limits{Warmup: 0.3, Window: 0.10, MinWindow: 3, Rel: 0.05, Abs: abs}
}

// Absolute slacks per measure.
const (
	FDSlack        = 4    // a session being re-established, a control socket client
	GoroutineSlack = 8    // a resource operation or a scrape in flight
	ThreadSlack    = 2    // an OS thread parked for a blocking syscall
	RSSSlackKiB    = 2048 // one Go heap arena's worth of GC timing
)

// Verdict is the judgement of one series.
type Verdict struct {
	// Base and Last are the medians of the baseline and the last window;
	// Allowed is the most Last may be.
	Base, Last, Allowed float64
	// Window is the rounds per window; Judged is false when the series is
	// too short for a warm-up and two windows.
	Window int
	Judged bool
	OK     bool
}

func (v Verdict) String() string {
	if !v.Judged {
		return "not judged (too few rounds)"
	}
	res := "flat"
	if !v.OK {
		res = "GROWING"
	}
	return fmt.Sprintf("%s: baseline median %.0f, last median %.0f, allowed %.0f (windows of %d rounds)", res, v.Base, v.Last, v.Allowed, v.Window)
}

// Flat judges one series (one value per round, in round order).
func Flat(vals []float64, lim Limits) Verdict {
	n := len(vals)
	w := max(int(math.Ceil(float64(n)*lim.Window)), lim.MinWindow, 1)
	warm := int(math.Ceil(float64(n) * lim.Warmup))
	if n < warm+2*w {
		return Verdict{Window: w}
	}
	base := median(vals[warm : warm+w])
	last := median(vals[n-w:])
	allowed := base*(1+lim.Rel) + lim.Abs
	return Verdict{Base: base, Last: last, Allowed: allowed, Window: w, Judged: true, OK: last <= allowed}
}

func median(v []float64) float64 {
	s := slices.Clone(v)
	slices.Sort(s)
	m := len(s) / 2
	if len(s)%2 == 1 {
		return s[m]
	}
	return (s[m-1] + s[m]) / 2
}
