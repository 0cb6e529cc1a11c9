// Package vmtas judges the VM test of aborted tasks (issue 11, e2e/cmd/tasvm):
// guest A writes with several commands in flight, guest B sends PERSISTENT
// RESERVE OUT PREEMPT AND ABORT against A's key, and every write of A must
// then complete (TASK ABORTED, turned by A's kernel into a retry that meets
// RESERVATION CONFLICT, or the conflict itself) within a bound, without
// A's SCSI error handler stepping in (abort, LUN reset), which would hit
// B's next PR command with a unit attention.
//
// The guests report what they do as event lines on their event ports
// (e2e/vm Config.EventPort); the host stamps each line on arrival, so
// both guests' events are on the host's one clock. Judge decides from
// those stamped events alone; Escalations reads a guest's kernel log.
// Both are pure.
//
// Event lines (guest side, one per line):
//
//	write-start w=W n=N     writer W issues its write number N
//	write-done w=W n=N err=TEXT   it returned; TEXT empty on success
//	writer-exit w=W         writer W stopped (after its first error)
//	preempt-sent            B issues PREEMPT AND ABORT
//	preempt-done err=TEXT   it returned; TEXT empty on success
package vmtas

import (
	"errors"
	"fmt"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"
)

// Event kinds.
const (
	KindWriteStart   = "write-start"
	KindWriteDone    = "write-done"
	KindWriterExit   = "writer-exit"
	KindPreemptSent  = "preempt-sent"
	KindPreemptDone  = "preempt-done"
	errField         = " err="
	maxEventLineSize = 4096
)

// Event is one guest event line with the host's arrival time.
type Event struct {
	At     time.Time
	Kind   string
	Writer int
	Seq    int
	// Err is the error text of a *-done event; "" on success.
	Err string
}

// FormatEvent is the guest side's line for e (without At and newline).
func FormatEvent(e Event) string {
	switch e.Kind {
	case KindWriteStart:
		return fmt.Sprintf("%s w=%d n=%d", e.Kind, e.Writer, e.Seq)
	case KindWriteDone:
		return fmt.Sprintf("%s w=%d n=%d%s%s", e.Kind, e.Writer, e.Seq, errField, oneLine(e.Err))
	case KindWriterExit:
		return fmt.Sprintf("%s w=%d", e.Kind, e.Writer)
	case KindPreemptDone:
		return e.Kind + errField + oneLine(e.Err)
	}
	return e.Kind
}

func oneLine(s string) string { return strings.ReplaceAll(s, "\n", " ") }

// ErrBadEvent is returned by ParseEvent for a line that is no event.
var ErrBadEvent = errors.New("vmtas: not an event line")

// ParseEvent reads one event line (FormatEvent's output); At is left zero.
func ParseEvent(line string) (Event, error) {
	line = strings.TrimRight(line, "\r\n")
	if len(line) > maxEventLineSize {
		return Event{}, fmt.Errorf("%w: %d bytes", ErrBadEvent, len(line))
	}
	var e Event
	rest, errText, hasErr := strings.Cut(line, errField)
	if !hasErr && strings.HasSuffix(line, strings.TrimRight(errField, " ")) {
		return Event{}, fmt.Errorf("%w: %q", ErrBadEvent, line)
	}
	f := strings.Fields(rest)
	if len(f) == 0 {
		return Event{}, fmt.Errorf("%w: empty", ErrBadEvent)
	}
	e.Kind, e.Err = f[0], errText
	want := map[string][]string{
		KindWriteStart:  {"w", "n"},
		KindWriteDone:   {"w", "n"},
		KindWriterExit:  {"w"},
		KindPreemptSent: nil,
		KindPreemptDone: nil,
	}
	keys, ok := want[e.Kind]
	if !ok || len(f)-1 != len(keys) {
		return Event{}, fmt.Errorf("%w: %q", ErrBadEvent, line)
	}
	if needErr := e.Kind == KindWriteDone || e.Kind == KindPreemptDone; needErr != hasErr {
		return Event{}, fmt.Errorf("%w: %q", ErrBadEvent, line)
	}
	for i, k := range keys {
		v, found := strings.CutPrefix(f[1+i], k+"=")
		n, err := strconv.Atoi(v)
		if !found || err != nil || n < 0 {
			return Event{}, fmt.Errorf("%w: %q", ErrBadEvent, line)
		}
		if k == "w" {
			e.Writer = n
		} else {
			e.Seq = n
		}
	}
	return e, nil
}

// Criteria are what Judge holds the run to.
type Criteria struct {
	// Bound is how long after the preempt was sent every write of A must
	// have completed (the issue asks 1 s).
	Bound time.Duration
	// MinInFlight is how many of A's writes must have been in flight when
	// the preempt was sent; fewer and the run proves nothing.
	MinInFlight int
}

// Write is one write of A as the report shows it; times are relative to
// the preempt being sent.
type Write struct {
	Writer, Seq int
	Start       time.Duration
	// Done is when it returned; valid only when Completed.
	Done      time.Duration
	Completed bool
	Err       string
}

// Report is Judge's verdict.
type Report struct {
	// Preempt is when B sent PREEMPT AND ABORT; PreemptTook how long it took.
	Preempt     time.Time
	PreemptTook time.Duration
	// InFlight are the writes started before the preempt and not done by
	// then; After those started after it.
	InFlight, After []Write
	// Violations is empty when the run passes.
	Violations []string
}

// OK reports whether the run passed.
func (r Report) OK() bool { return len(r.Violations) == 0 }

// Judge decides from the stamped events of both guests, as seen at now
// (the end of the observation), whether A's writes ended as they must.
func Judge(events []Event, now time.Time, c Criteria) Report {
	var r Report
	var sent, done *Event
	for i := range events {
		switch e := &events[i]; e.Kind {
		case KindPreemptSent:
			if sent == nil {
				sent = e
			}
		case KindPreemptDone:
			if done == nil {
				done = e
			}
		}
	}
	if sent == nil {
		r.Violations = append(r.Violations, "B never sent PREEMPT AND ABORT")
		return r
	}
	r.Preempt = sent.At
	switch {
	case done == nil:
		r.Violations = append(r.Violations, fmt.Sprintf("PREEMPT AND ABORT did not return within %s", now.Sub(sent.At).Round(time.Millisecond)))
	case done.Err != "":
		r.Violations = append(r.Violations, "PREEMPT AND ABORT failed: "+done.Err)
	default:
		r.PreemptTook = done.At.Sub(sent.At)
	}
	type key struct{ w, n int }
	writes := map[key]*Write{}
	var order []key
	exited := map[int]bool{}
	for _, e := range events {
		k := key{e.Writer, e.Seq}
		switch e.Kind {
		case KindWriteStart:
			if writes[k] == nil {
				writes[k] = &Write{Writer: e.Writer, Seq: e.Seq, Start: e.At.Sub(sent.At)}
				order = append(order, k)
			}
		case KindWriteDone:
			if w := writes[k]; w != nil && !w.Completed {
				w.Completed, w.Done, w.Err = true, e.At.Sub(sent.At), e.Err
			}
		case KindWriterExit:
			exited[e.Writer] = true
		}
	}
	writers := map[int]bool{}
	for _, k := range order {
		w := writes[k]
		writers[w.Writer] = true
		switch {
		case w.Start <= 0 && (!w.Completed || w.Done > 0):
			r.InFlight = append(r.InFlight, *w)
		case w.Start > 0:
			r.After = append(r.After, *w)
		}
	}
	if n := len(r.InFlight); n < c.MinInFlight {
		r.Violations = append(r.Violations, fmt.Sprintf("only %d writes were in flight when the preempt was sent, want at least %d: the run proves nothing", n, c.MinInFlight))
	}
	for _, w := range slices.Concat(r.InFlight, r.After) {
		switch {
		case !w.Completed:
			r.Violations = append(r.Violations, fmt.Sprintf("write w=%d n=%d got no response: still in flight %s after the preempt", w.Writer, w.Seq, now.Sub(sent.At).Round(time.Millisecond)))
		case w.Done > c.Bound:
			r.Violations = append(r.Violations, fmt.Sprintf("write w=%d n=%d completed %s after the preempt, over the bound of %s", w.Writer, w.Seq, w.Done.Round(time.Millisecond), c.Bound))
		}
	}
	ws := make([]int, 0, len(writers))
	for w := range writers {
		ws = append(ws, w)
	}
	slices.Sort(ws)
	for _, w := range ws {
		if !exited[w] {
			r.Violations = append(r.Violations, fmt.Sprintf("writer %d never stopped: its writes kept succeeding or hang after the preempt", w))
		}
	}
	return r
}

// escalation matches kernel log lines of the SCSI error handler and the
// iSCSI initiator stepping in: command timeouts, aborts, device, target,
// bus or host resets, connection errors, the UA a reset leaves behind.
// "reservation conflict" and "critical nexus error" are the expected
// answer to a fenced node's writes and are not listed.
var escalation = regexp.MustCompile(`(?i)abort|reset|timing out|timed out|timeout|scsi_eh|error handler|conn error|offline|recovery`)

// Escalations returns the lines of a kernel log (dmesg) that show error
// handling beyond a plain command failure.
func Escalations(dmesg string) []string {
	var out []string
	for _, l := range strings.Split(dmesg, "\n") {
		if escalation.MatchString(l) {
			out = append(out, strings.TrimSpace(l))
		}
	}
	return out
}

// After returns the part of a kernel log after the last line containing
// mark (a line the test wrote to /dev/kmsg), or all of it without one.
func After(dmesg, mark string) string {
	i := strings.LastIndex(dmesg, mark)
	if i < 0 {
		return dmesg
	}
	rest := dmesg[i:]
	if j := strings.IndexByte(rest, '\n'); j >= 0 {
		return rest[j+1:]
	}
	return ""
}
