package scsi

import (
	"errors"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

// Backend errors become sense data here, and only here: ENOSPC (a thin
// file or a thin pool out of space) is DATA PROTECT, SPACE ALLOCATION
// FAILED WRITE PROTECT (SBC-3 4.7.3.6); anything else is a MEDIUM ERROR
// whose INFORMATION field names the first LBA that failed (SBC-3 4.18.2:
// the LBA of the first unrecovered error). No soft threshold unit
// attention (38h/07h) is ever due: SBC-3 4.7.3.7 reports it only for a
// threshold armed through the Logical Block Provisioning mode page, which
// this target does not offer (VPD B2h THRESHOLD EXPONENT 0).

// ioFailure is the CHECK CONDITION for err from a backend read (r =
// reasonReadError) or write (reasonWriteError) of blocks from lba, done
// bytes of which completed before the error.
func (lu *LU) ioFailure(r reason, err error, lba uint64, done int) failure {
	f := failure{reason: r, infoValid: true, info: lba + uint64(max(done, 0))>>lu.shift}
	if r == reasonWriteError && errors.Is(err, syscall.ENOSPC) {
		f.reason = reasonSpaceAllocFailed
	}
	return f
}

// syncFailure is the CHECK CONDITION for a failed flush: which block it
// could not write is unknown, so no INFORMATION.
func syncFailure(err error) failure {
	if errors.Is(err, syscall.ENOSPC) {
		return fail(reasonSpaceAllocFailed)
	}
	return fail(reasonWriteError)
}

// FaultStats counts the commands of an LU that met a backend fault.
type FaultStats struct {
	// ReadErrors and WriteErrors ended in MEDIUM ERROR.
	ReadErrors  uint64 `json:"read_errors"`
	WriteErrors uint64 `json:"write_errors"`
	// SpaceAllocFailures ended in SPACE ALLOCATION FAILED WRITE PROTECT.
	SpaceAllocFailures uint64 `json:"space_alloc_failures"`
	// SlowCommands took longer than SlowCommand to execute.
	SlowCommands uint64 `json:"slow_commands"`
}

// SlowCommand is the execution time above which a command counts as slow
// (and is logged as a fault): a healthy disk answers in milliseconds,
// and initiators start aborting after a few seconds.
const SlowCommand = time.Second

type faultCounters struct {
	read, write, space, slow atomic.Uint64
}

// FaultStats returns the LU's fault counters.
func (lu *LU) FaultStats() FaultStats {
	c := &lu.faults
	return FaultStats{ReadErrors: c.read.Load(), WriteErrors: c.write.Load(),
		SpaceAllocFailures: c.space.Load(), SlowCommands: c.slow.Load()}
}

// faultKind names a fault in logs; it is also the burst key with the LUN.
type faultKind string

const (
	faultRead  faultKind = "read error"
	faultWrite faultKind = "write error"
	faultSpace faultKind = "space allocation failed"
	faultSlow  faultKind = "slow command"
)

// count counts a fault of lu and returns its kind, "" if f is none.
func (lu *LU) count(f failure) faultKind {
	switch f.reason {
	case reasonReadError:
		lu.faults.read.Add(1)
		return faultRead
	case reasonWriteError:
		lu.faults.write.Add(1)
		return faultWrite
	case reasonSpaceAllocFailed:
		lu.faults.space.Add(1)
		return faultSpace
	}
	return ""
}

// FaultLogInterval is how often a burst of faults of one kind on one LUN
// is summarized in the log after its first occurrence was logged.
const FaultLogInterval = 10 * time.Second

type burstKey struct {
	lun  uint64
	kind faultKind
}

type burst struct {
	start      time.Time // of the current interval
	suppressed int
}

// faultLog decides which faults reach the log: the first of a burst at
// once, then for each interval in which more came one summary of how
// many. It is pure; the Target calls note and, when told, flush at the
// end of the interval.
type faultLog struct {
	mu     sync.Mutex
	every  time.Duration
	bursts map[burstKey]*burst
}

// note records a fault at now and reports whether to log it; schedule is
// true when a flush of k is due after every (the first suppressed fault
// of an interval).
func (l *faultLog) note(k burstKey, now time.Time) (log, schedule bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.bursts == nil {
		l.bursts = map[burstKey]*burst{}
	}
	b := l.bursts[k]
	if b == nil || (b.suppressed == 0 && now.Sub(b.start) >= l.every) {
		l.bursts[k] = &burst{start: now}
		return true, false
	}
	b.suppressed++
	return false, b.suppressed == 1
}

// flush ends k's interval at now and returns how many faults it
// suppressed. A burst that goes on keeps being summarized; a quiet one is
// forgotten, so its next fault is logged in full again.
func (l *faultLog) flush(k burstKey, now time.Time) int {
	l.mu.Lock()
	defer l.mu.Unlock()
	b := l.bursts[k]
	if b == nil {
		return 0
	}
	n := b.suppressed
	if n == 0 {
		delete(l.bursts, k)
		return 0
	}
	b.start, b.suppressed = now, 0
	return n
}

// clock is the time source of the fault log; tests replace it.
type clock struct {
	now   func() time.Time
	after func(d time.Duration, f func())
}

var realClock = clock{now: time.Now, after: func(d time.Duration, f func()) { time.AfterFunc(d, f) }}

// noteFault counts and logs (rate-limited) the fault f or slowness of a
// command on lun.
func (t *Target) noteFault(lu *LU, lun uint64, op string, f failure, err error, took time.Duration) {
	kind := lu.count(f)
	if kind == "" {
		if took <= SlowCommand {
			return
		}
		lu.faults.slow.Add(1)
		kind = faultSlow
	}
	k := burstKey{lun: lun, kind: kind}
	log, schedule := t.flog.note(k, t.clock.now())
	if log {
		args := []any{"lun", lun, "fault", string(kind), "op", op, "took", took}
		if f.infoValid {
			args = append(args, "lba", f.info)
		}
		if err != nil {
			args = append(args, "err", err)
		}
		t.logger.Warn("backend fault", args...)
	}
	if schedule {
		t.clock.after(t.flog.every, func() { t.flushFaults(k) })
	}
}

func (t *Target) flushFaults(k burstKey) {
	n := t.flog.flush(k, t.clock.now())
	if n == 0 {
		return
	}
	t.logger.Warn("backend fault burst goes on", "lun", k.lun, "fault", string(k.kind), "more", n, "interval", t.flog.every)
}
