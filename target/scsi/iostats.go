package scsi

import (
	"sync/atomic"
	"time"

	wscsi "github.com/tandem-ha/tandem/wire/scsi"
)

// LatencyBounds are the upper bounds of the command latency histogram
// (IOStats.Latency): from a page-cache hit (some microseconds) past
// SlowCommand, so a slow disk shows long before initiators abort.
var LatencyBounds = [...]time.Duration{
	25 * time.Microsecond, 50 * time.Microsecond, 100 * time.Microsecond, 250 * time.Microsecond,
	500 * time.Microsecond, time.Millisecond, 2500 * time.Microsecond, 5 * time.Millisecond,
	10 * time.Millisecond, 25 * time.Millisecond, 50 * time.Millisecond, 100 * time.Millisecond,
	250 * time.Millisecond, 500 * time.Millisecond, time.Second, 2500 * time.Millisecond, 5 * time.Second,
}

// IOClass groups commands for IOStats.
type IOClass int

// The classes: commands that read the medium, that write it, and the
// rest.
const (
	ClassRead IOClass = iota
	ClassWrite
	ClassOther
	numClasses
)

// String is the class's metric label.
func (c IOClass) String() string {
	switch c {
	case ClassRead:
		return "read"
	case ClassWrite:
		return "write"
	}
	return "other"
}

// ClassStats are the counters of one class.
type ClassStats struct {
	Commands uint64
	// Bytes moved: data-in of reads, data-out taken by writes.
	Bytes uint64
	// Errors ended in CHECK CONDITION.
	Errors uint64
	// Latency counts commands by execution time: Latency[i] those up to
	// LatencyBounds[i], the last one those above every bound.
	Latency [len(LatencyBounds) + 1]uint64
	// LatencySum is the total execution time.
	LatencySum time.Duration
}

// IOStats are an LU's command counters since it was opened.
type IOStats struct {
	Class [numClasses]ClassStats
	// Conflicts ended in RESERVATION CONFLICT.
	Conflicts uint64
	// ReservationChanges are reservation commands (PERSISTENT RESERVE
	// OUT, RESERVE, RELEASE) that completed with GOOD.
	ReservationChanges uint64
}

// ioCounters is IOStats in atomics: execute adds to them on every
// command, without locks or allocation.
type ioCounters struct {
	class [numClasses]struct {
		commands, bytes, errors, sumNanos atomic.Uint64
		latency                           [len(LatencyBounds) + 1]atomic.Uint64
	}
	conflicts, reservations atomic.Uint64
}

func classOf(c *command) IOClass {
	switch {
	case c == nil:
		return ClassOther
	case c.access == accessRead && c.dir == dirIn:
		return ClassRead
	case audited(c):
		return ClassWrite
	}
	return ClassOther
}

// note counts one executed command.
func (s *ioCounters) note(c *command, r *Result, took time.Duration) {
	cl := &s.class[classOf(c)]
	cl.commands.Add(1)
	switch {
	case r.Status == wscsi.StatusCheckCondition:
		cl.errors.Add(1)
	case r.Status == wscsi.StatusReservationConflict:
		s.conflicts.Add(1)
	default:
		if n := len(r.DataIn); n > 0 {
			cl.bytes.Add(uint64(n))
		} else if c != nil && c.dir == dirOut {
			cl.bytes.Add(uint64(r.DataOutWanted))
		}
		if c != nil && isReservationChange(c.op) {
			s.reservations.Add(1)
		}
	}
	cl.sumNanos.Add(uint64(max(took, 0)))
	i := 0
	for i < len(LatencyBounds) && took > LatencyBounds[i] {
		i++
	}
	cl.latency[i].Add(1)
}

func isReservationChange(op byte) bool {
	switch op {
	case wscsi.OpPersistentReserveOut, wscsi.OpReserve6, wscsi.OpRelease6, wscsi.OpReserve10, wscsi.OpRelease10:
		return true
	}
	return false
}

// IOStats returns the LU's command counters.
func (lu *LU) IOStats() IOStats {
	var st IOStats
	s := &lu.io
	for i := range st.Class {
		c, o := &s.class[i], &st.Class[i]
		o.Commands, o.Bytes, o.Errors = c.commands.Load(), c.bytes.Load(), c.errors.Load()
		o.LatencySum = time.Duration(c.sumNanos.Load())
		for j := range o.Latency {
			o.Latency[j] = c.latency[j].Load()
		}
	}
	st.Conflicts, st.ReservationChanges = s.conflicts.Load(), s.reservations.Load()
	return st
}
