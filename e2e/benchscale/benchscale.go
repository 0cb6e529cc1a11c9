// Package benchscale measures tandem-target at scale (issue 15): 256
// sessions from 64 initiator names over 64 LUNs of one target against 1
// session at the same total queue depth (4 KiB random reads), a login
// storm of 256 sessions, and the target's memory per idle session.
//
// The verdicts (Goals.Check) are pure; Run starts the target and drives
// it through tandem's native initiator in this process.
package benchscale

import (
	"fmt"
	"strings"
	"time"
)

// Result is one measurement.
type Result struct {
	// ManyIOPS: Sessions sessions over LUNs LUNs, Depth/Sessions each.
	ManyIOPS float64
	// OneIOPS: one session at Depth on one LUN.
	OneIOPS float64
	// Storm is the time Sessions concurrent logins took.
	Storm time.Duration
	// PerSession is the target's RSS growth per idle session, bytes.
	PerSession                        int64
	Sessions, Initiators, LUNs, Depth int
}

// Goals are issue 15's bounds.
type Goals struct {
	// MaxLoss is the IOPS the many sessions may lose against one, 0..1.
	MaxLoss       float64
	MaxStorm      time.Duration
	MaxPerSession int64
}

// DefaultGoals: < 5 % loss, a storm under 2 s, < 64 KiB per idle session.
func DefaultGoals() Goals {
	return Goals{MaxLoss: 0.05, MaxStorm: 2 * time.Second, MaxPerSession: 64 << 10}
}

// Loss is how much aggregate IOPS the many sessions lost against one
// (negative when they did better).
func (r Result) Loss() float64 {
	if r.OneIOPS == 0 {
		return 0
	}
	return 1 - r.ManyIOPS/r.OneIOPS
}

// Check lists the goals r misses.
func (g Goals) Check(r Result) []string {
	var miss []string
	if r.Loss() >= g.MaxLoss {
		miss = append(miss, fmt.Sprintf("%d sessions lose %.1f%% of one session's IOPS (goal < %.0f%%)", r.Sessions, 100*r.Loss(), 100*g.MaxLoss))
	}
	if r.Storm >= g.MaxStorm {
		miss = append(miss, fmt.Sprintf("login storm of %d sessions took %s (goal < %s)", r.Sessions, r.Storm.Round(time.Millisecond), g.MaxStorm))
	}
	if r.PerSession >= g.MaxPerSession {
		miss = append(miss, fmt.Sprintf("%d KiB per idle session (goal < %d KiB)", r.PerSession>>10, g.MaxPerSession>>10))
	}
	return miss
}

// Table renders r as Markdown with the goals.
func Table(r Result, g Goals) string {
	var b strings.Builder
	b.WriteString("| measure | result | goal |\n|---|---|---|\n")
	fmt.Fprintf(&b, "| 4 KiB random read, 1 session, depth %d | %.1fk IOPS | |\n", r.Depth, r.OneIOPS/1000)
	fmt.Fprintf(&b, "| same, %d sessions from %d initiators over %d LUNs | %.1fk IOPS (%+.1f%%) | loss < %.0f%% |\n",
		r.Sessions, r.Initiators, r.LUNs, r.ManyIOPS/1000, -100*r.Loss(), 100*g.MaxLoss)
	fmt.Fprintf(&b, "| login storm, %d sessions | %s | < %s |\n", r.Sessions, r.Storm.Round(time.Millisecond), g.MaxStorm)
	fmt.Fprintf(&b, "| target memory per idle session (RSS delta) | %.1f KiB | < %d KiB |\n", float64(r.PerSession)/1024, g.MaxPerSession>>10)
	return b.String()
}
