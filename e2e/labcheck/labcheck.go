// Package labcheck is the VM lab's checker (issue 13), in Jepsen's manner:
// it judges a whole run afterwards from what the client recorded (every
// put attempt with its outcome and host timestamps), what was read back
// from the queue at the end, and the filesystem's mount history (agents'
// events stamped on arrival at the host), never from the system's own
// claims of success. It is pure: no I/O, no clock.
//
// Rules:
//  1. Every acknowledged message is on the queue at the end (none lost).
//  2. A message is on the queue at most once per attempt that may have
//     been applied: acknowledged ones plus those whose outcome is unknown
//     (Info); a refused attempt (Fail) never justifies a copy.
//  3. Nothing is on the queue that was never put.
//  4. No two nodes had the filesystem mounted read-write at one moment,
//     unless one of them had been fenced before the overlap began: its
//     mount could no longer write, which rule 6 proves from the target.
//  5. e2fsck -fn found the filesystem clean after the run.
//  6. The target accepted no write from a fenced node after the fence
//     (from the target's audit stream, target/audit: the reservation
//     holder moving away from a node's initiator is the fence; writes of
//     that initiator admitted at or after its PR generation are
//     violations). A fence the agents report but the audit does not show
//     is a problem too: the excuse of rule 4 then has no witness.
package labcheck

import (
	"fmt"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/tandem-ha/tandem/target/audit"
)

// Outcome of one put attempt.
type Outcome int

// Outcomes, after Jepsen: OK was acknowledged, Fail was refused before
// it could take effect (connection refused, the queue manager said it is
// not available), Info may or may not have taken effect (timeout,
// connection lost after sending).
const (
	OK Outcome = iota
	Fail
	Info
)

func (o Outcome) String() string {
	switch o {
	case OK:
		return "ok"
	case Fail:
		return "fail"
	case Info:
		return "info"
	}
	return fmt.Sprintf("outcome(%d)", int(o))
}

// Put is one attempt to put message Seq.
type Put struct {
	Seq        int
	Start, End time.Time
	Outcome    Outcome
	Err        string
}

// Mount is one interval during which Node had the filesystem mounted
// read-write; a zero To means still mounted at the end of the run.
type Mount struct {
	Node     string
	From, To time.Time
}

// EventKind is what a node event says about the filesystem.
type EventKind int

// Event kinds: the filesystem was mounted or unmounted on the node, or the
// node lost power (which ends any mount it had).
const (
	Mounted EventKind = iota
	Unmounted
	PoweredOff
)

// Event is one node event, stamped on arrival at the host.
type Event struct {
	At   time.Time
	Node string
	Kind EventKind
}

// Intervals turns node events into mount intervals. A mount with no end
// stays open (To zero); a mount event while mounted is ignored (the
// resource reports an already mounted filesystem again).
func Intervals(evs []Event) []Mount {
	evs = slices.Clone(evs)
	sort.SliceStable(evs, func(a, b int) bool { return evs[a].At.Before(evs[b].At) })
	open := map[string]int{} // node -> index in out
	var out []Mount
	for _, e := range evs {
		i, isOpen := open[e.Node]
		switch e.Kind {
		case Mounted:
			if !isOpen {
				open[e.Node] = len(out)
				out = append(out, Mount{Node: e.Node, From: e.At})
			}
		case Unmounted, PoweredOff:
			if isOpen {
				out[i].To = e.At
				delete(open, e.Node)
			}
		}
	}
	return out
}

// History is everything a run recorded.
type History struct {
	Puts []Put
	// Final is the sequence numbers read back from the queue at the end,
	// in queue order.
	Final []int
	// Mounts of the shared filesystem per node.
	Mounts []Mount
	// FsckClean is e2fsck -fn's verdict after the run; FsckOutput its text.
	FsckClean  bool
	FsckOutput string
	// Fences are the fences the agents reported (the fencer's log line,
	// stamped on arrival): Node was fenced at At.
	Fences []Fence
	// Audit is the target's write history of the shared LUN; Initiators
	// maps a node to its iSCSI initiator name. A nil Audit skips rule 6
	// (and then no fence excuses a dual mount).
	Audit      []audit.Record
	Initiators map[string]string
}

// Fence is one node fenced by its peer.
type Fence struct {
	Node string
	At   time.Time
}

// TargetFence is a fence as the target saw it: the reservation holder
// moved away from Initiator; Gen is the PR generation of the first write
// admitted under the new holder. The fence lasts over the audit records
// [From, To): until Initiator holds the reservation again (a failback).
type TargetFence struct {
	Initiator string
	Gen       uint32
	From, To  int
}

// TargetFences finds the fences in an audit stream: every change of the
// reservation holder away from a non-empty holder.
func TargetFences(recs []audit.Record) []TargetFence {
	var out []TargetFence
	holder := ""
	for i := range recs {
		r := &recs[i]
		if r.Kind != audit.KindWrite || r.ResType == 0 {
			continue
		}
		h := strings.ToLower(r.HolderInitiator)
		if h == holder {
			continue
		}
		for j := range out {
			if out[j].Initiator == h && out[j].To == len(recs) {
				out[j].To = i
			}
		}
		if holder != "" {
			out = append(out, TargetFence{Initiator: holder, Gen: r.Generation, From: i, To: len(recs)})
		}
		holder = h
	}
	return out
}

// Overlap is a moment two nodes both had the filesystem mounted.
type Overlap struct {
	A, B     Mount
	From, To time.Time
}

// Result is the checker's verdict.
type Result struct {
	// Acked is the number of distinct messages acknowledged.
	Acked int
	// Lost are acknowledged messages missing from the queue.
	Lost []int
	// Duplicated are messages on the queue more than once (allowed or not);
	// BadDuplicates are those with more copies than attempts that may have
	// been applied.
	Duplicated, BadDuplicates []int
	// Phantoms are messages on the queue that were never put.
	Phantoms []int
	// DualMounts are the moments two nodes had the filesystem mounted;
	// FencedOverlaps those excused because one node had been fenced.
	DualMounts, FencedOverlaps []Overlap
	// WritesAfterFence are writes the target accepted from a fenced node
	// after the fence.
	WritesAfterFence []audit.Record
	FsckClean        bool
	// Problems says in words what failed; empty means the run passed.
	Problems []string
}

// OK reports whether the run passed every rule.
func (r Result) OK() bool { return len(r.Problems) == 0 }

// Check judges h.
func Check(h History) Result {
	ok := map[int]int{}
	maybe := map[int]int{}
	tried := map[int]bool{}
	for _, p := range h.Puts {
		tried[p.Seq] = true
		switch p.Outcome {
		case OK:
			ok[p.Seq]++
			maybe[p.Seq]++
		case Info:
			maybe[p.Seq]++
		}
	}
	copies := map[int]int{}
	for _, s := range h.Final {
		copies[s]++
	}
	var r Result
	r.Acked = len(ok)
	r.FsckClean = h.FsckClean
	for s := range ok {
		if copies[s] == 0 {
			r.Lost = append(r.Lost, s)
		}
	}
	for s, n := range copies {
		switch {
		case !tried[s]:
			r.Phantoms = append(r.Phantoms, s)
		case n > 1:
			r.Duplicated = append(r.Duplicated, s)
			if n > maybe[s] {
				r.BadDuplicates = append(r.BadDuplicates, s)
			}
		}
	}
	for _, l := range []*[]int{&r.Lost, &r.Duplicated, &r.BadDuplicates, &r.Phantoms} {
		slices.Sort(*l)
	}
	var tf []TargetFence
	if h.Audit != nil {
		tf = TargetFences(h.Audit)
		for _, f := range tf {
			r.WritesAfterFence = append(r.WritesAfterFence, audit.AcceptedAfterFence(h.Audit[f.From:f.To], audit.Nexus{Initiator: f.Initiator}, f.Gen)...)
		}
		if s := audit.Summarize(h.Audit); s.Dropped > 0 {
			r.Problems = append(r.Problems, fmt.Sprintf("the target's audit lost %d records: writes after a fence cannot be ruled out", s.Dropped))
		}
	}
	seen := func(node string) bool {
		ini := strings.ToLower(h.Initiators[node])
		return ini != "" && slices.ContainsFunc(tf, func(f TargetFence) bool { return f.Initiator == ini })
	}
	for _, f := range h.Fences {
		if h.Audit != nil && !seen(f.Node) {
			r.Problems = append(r.Problems, fmt.Sprintf("%s was reported fenced at %s but the target's audit shows no reservation taken from it",
				f.Node, f.At.Format("15:04:05.000")))
		}
	}
	for _, o := range Overlaps(h.Mounts) {
		if h.Audit != nil && slices.ContainsFunc(h.Fences, func(f Fence) bool {
			return (f.Node == o.A.Node || f.Node == o.B.Node) && !f.At.After(o.From) && seen(f.Node)
		}) {
			r.FencedOverlaps = append(r.FencedOverlaps, o)
			continue
		}
		r.DualMounts = append(r.DualMounts, o)
	}
	for _, w := range r.WritesAfterFence {
		r.Problems = append(r.Problems, fmt.Sprintf("the target accepted a write from %s after it was fenced: lba %d, %d blocks, generation %d",
			w.Initiator, w.LBA, w.Blocks, w.Generation))
	}
	if len(r.Lost) > 0 {
		r.Problems = append(r.Problems, fmt.Sprintf("%d acknowledged messages lost: %s", len(r.Lost), short(r.Lost)))
	}
	if len(r.BadDuplicates) > 0 {
		r.Problems = append(r.Problems, fmt.Sprintf("%d messages duplicated with no unacknowledged put to explain it: %s", len(r.BadDuplicates), short(r.BadDuplicates)))
	}
	if len(r.Phantoms) > 0 {
		r.Problems = append(r.Problems, fmt.Sprintf("%d messages on the queue were never put: %s", len(r.Phantoms), short(r.Phantoms)))
	}
	for _, o := range r.DualMounts {
		r.Problems = append(r.Problems, fmt.Sprintf("dual mount: %s and %s both had the filesystem mounted from %s for %s",
			o.A.Node, o.B.Node, o.From.Format("15:04:05.000"), o.To.Sub(o.From).Round(time.Millisecond)))
	}
	if !h.FsckClean {
		r.Problems = append(r.Problems, "e2fsck -fn did not find the filesystem clean: "+firstLines(h.FsckOutput, 5))
	}
	return r
}

// Overlaps returns every pair of mounts of different nodes that overlap
// in time; an open mount (To zero) lasts forever.
func Overlaps(ms []Mount) []Overlap {
	var out []Overlap
	end := func(m Mount) time.Time {
		if m.To.IsZero() {
			return time.Unix(1<<40, 0)
		}
		return m.To
	}
	for i := range ms {
		for j := i + 1; j < len(ms); j++ {
			a, b := ms[i], ms[j]
			if a.Node == b.Node {
				continue
			}
			from := later(a.From, b.From)
			to := earlier(end(a), end(b))
			if from.Before(to) {
				out = append(out, Overlap{A: a, B: b, From: from, To: to})
			}
		}
	}
	return out
}

func later(a, b time.Time) time.Time {
	if a.After(b) {
		return a
	}
	return b
}

func earlier(a, b time.Time) time.Time {
	if a.Before(b) {
		return a
	}
	return b
}

// FirstAckAfter is the end of the first acknowledged put that ended after
// t (zero when there is none): the service is back for clients.
func FirstAckAfter(puts []Put, t time.Time) time.Time {
	var first time.Time
	for _, p := range puts {
		if p.Outcome == OK && p.End.After(t) && (first.IsZero() || p.End.Before(first)) {
			first = p.End
		}
	}
	return first
}

// LongestGap is the longest time between two consecutive acknowledgements
// (by ack time) within [from, to].
func LongestGap(puts []Put, from, to time.Time) time.Duration {
	acks := []time.Time{from}
	for _, p := range puts {
		if p.Outcome == OK && !p.End.Before(from) && !p.End.After(to) {
			acks = append(acks, p.End)
		}
	}
	acks = append(acks, to)
	slices.SortFunc(acks, func(a, b time.Time) int { return a.Compare(b) })
	var gap time.Duration
	for i := 1; i < len(acks); i++ {
		gap = max(gap, acks[i].Sub(acks[i-1]))
	}
	return gap
}

func short(s []int) string {
	if len(s) > 10 {
		return fmt.Sprint(s[:10]) + "..."
	}
	return fmt.Sprint(s)
}

func firstLines(s string, n int) string {
	lines := 0
	for i, c := range s {
		if c == '\n' {
			if lines++; lines == n {
				return s[:i]
			}
		}
	}
	return s
}

// LastEnd is the end of the last put attempt (zero with none).
func LastEnd(puts []Put) time.Time {
	var t time.Time
	for _, p := range puts {
		if p.End.After(t) {
			t = p.End
		}
	}
	return t
}
