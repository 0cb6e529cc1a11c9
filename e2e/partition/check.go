package partition

import (
	"fmt"
	"os"
	"slices"
	"sort"
	"time"

	"github.com/tandem-ha/tandem/e2e/partition/stamp"
)

// Instance is one writer run (one generation) as its ack log tells it.
type Instance struct {
	Node          string
	Gen           uint64
	Start         int64 // registration time (unix ns), 0 if not logged
	Acks          []stamp.Event
	FirstConflict int64 // submission time of the first conflicted write, 0: none
	Conflicts     int
	Errors        int
	Stop          string // why it stopped, "" if it did not log a stop
}

// FirstAck and LastAck return the first and last acknowledged writes.
func (in *Instance) FirstAck() (stamp.Event, bool) {
	if len(in.Acks) == 0 {
		return stamp.Event{}, false
	}
	return in.Acks[0], true
}

func (in *Instance) LastAck() (stamp.Event, bool) {
	if len(in.Acks) == 0 {
		return stamp.Event{}, false
	}
	return in.Acks[len(in.Acks)-1], true
}

// Analysis is the single-writer verdict over every writer of a row.
type Analysis struct {
	// Instances with at least one event, ordered by first ack (those
	// without acks last).
	Instances []*Instance
	// Acked is the number of acknowledged writes.
	Acked int
	// DualAcks counts writes accepted from one node although they were
	// submitted after the other node's newer writer had a write accepted:
	// a provable dual writer (the write ran on the target after the other
	// node's first write had completed).
	DualAcks int
	// AfterConflict counts writes accepted from an instance after it had
	// been refused with RESERVATION CONFLICT (submitted later): a fenced
	// writer that got back in.
	AfterConflict int
	// Problems describe each violation, for the report.
	Problems []string
	// FencePoint is the first ack of the last writer to take over, the
	// moment from which only it may write (zero: nothing moved).
	FencePoint time.Time
}

// Analyze judges the events of every ack log. Pure: the test feeds it
// what the writers logged.
func Analyze(events []stamp.Event) Analysis {
	byGen := map[uint64]*Instance{}
	var order []uint64
	for _, e := range events {
		in := byGen[e.Gen]
		if in == nil {
			in = &Instance{Node: e.Node, Gen: e.Gen}
			byGen[e.Gen] = in
			order = append(order, e.Gen)
		}
		switch e.Kind {
		case stamp.KindStart:
			in.Start = e.Time
		case stamp.KindAck:
			in.Acks = append(in.Acks, e)
		case stamp.KindConflict:
			in.Conflicts++
			if in.FirstConflict == 0 || e.Time < in.FirstConflict {
				in.FirstConflict = e.Time
			}
		case stamp.KindError:
			in.Errors++
		case stamp.KindStop:
			in.Stop = e.Info
		}
	}
	var a Analysis
	for _, g := range order {
		in := byGen[g]
		sort.Slice(in.Acks, func(i, j int) bool { return in.Acks[i].Acked < in.Acks[j].Acked })
		a.Instances = append(a.Instances, in)
		a.Acked += len(in.Acks)
	}
	slices.SortStableFunc(a.Instances, func(x, y *Instance) int {
		fx, okx := x.FirstAck()
		fy, oky := y.FirstAck()
		switch {
		case okx && oky:
			return int(fx.Acked - fy.Acked)
		case okx:
			return -1
		case oky:
			return 1
		}
		return 0
	})
	for _, in := range a.Instances {
		if in.FirstConflict == 0 {
			continue
		}
		n := 0
		for _, e := range in.Acks {
			if e.Time > in.FirstConflict {
				n++
			}
		}
		if n > 0 {
			a.AfterConflict += n
			a.Problems = append(a.Problems, fmt.Sprintf("%s gen %d: %d writes accepted after its first RESERVATION CONFLICT", in.Node, in.Gen, n))
		}
	}
	for i, x := range a.Instances {
		for _, y := range a.Instances[i+1:] {
			fy, ok := y.FirstAck()
			if !ok || y.Node == x.Node {
				continue
			}
			n := 0
			for _, e := range x.Acks {
				if e.Time > fy.Acked {
					n++
				}
			}
			if n > 0 {
				a.DualAcks += n
				a.Problems = append(a.Problems, fmt.Sprintf("dual writer: %s gen %d had %d writes accepted that it submitted after %s gen %d's first accepted write at %s",
					x.Node, x.Gen, n, y.Node, y.Gen, stampTime(fy.Acked)))
			}
		}
	}
	// The fence point: the first ack of the last instance whose node
	// differs from the instance before it.
	for i := 1; i < len(a.Instances); i++ {
		if f, ok := a.Instances[i].FirstAck(); ok && a.Instances[i].Node != a.Instances[i-1].Node {
			a.FencePoint = time.Unix(0, f.Acked)
		}
	}
	return a
}

// Writers lists the nodes that had writes accepted at or after t.
func (a Analysis) Writers(t time.Time) []string {
	var out []string
	for _, in := range a.Instances {
		if l, ok := in.LastAck(); ok && l.Acked >= t.UnixNano() && !slices.Contains(out, in.Node) {
			out = append(out, in.Node)
		}
	}
	sort.Strings(out)
	return out
}

// LastAckOf is node's last accepted write (zero time: none).
func (a Analysis) LastAckOf(node string) time.Time {
	var t int64
	for _, in := range a.Instances {
		if l, ok := in.LastAck(); ok && in.Node == node && l.Acked > t {
			t = l.Acked
		}
	}
	if t == 0 {
		return time.Time{}
	}
	return time.Unix(0, t)
}

// FirstAckAfter is node's first write accepted from a writer that
// registered after t (zero time: none).
func (a Analysis) FirstAckAfter(node string, t time.Time) time.Time {
	var best int64
	for _, in := range a.Instances {
		if in.Node != node || in.Start < t.UnixNano() {
			continue
		}
		if f, ok := in.FirstAck(); ok && (best == 0 || f.Acked < best) {
			best = f.Acked
		}
	}
	if best == 0 {
		return time.Time{}
	}
	return time.Unix(0, best)
}

// FirstConflict is the first conflict of node's writers at or after t.
func (a Analysis) FirstConflict(node string, t time.Time) time.Time {
	var best int64
	for _, in := range a.Instances {
		if in.Node == node && in.FirstConflict >= t.UnixNano() && (best == 0 || in.FirstConflict < best) {
			best = in.FirstConflict
		}
	}
	if best == 0 {
		return time.Time{}
	}
	return time.Unix(0, best)
}

func stampTime(ns int64) string { return time.Unix(0, ns).Format("15:04:05.000") }

// ReadAckLogs parses the ack logs at paths (a missing file is empty).
func ReadAckLogs(paths ...string) ([]stamp.Event, error) {
	var all []stamp.Event
	for _, p := range paths {
		f, err := os.Open(p)
		if os.IsNotExist(err) {
			continue
		}
		if err != nil {
			return nil, err
		}
		evs, err := stamp.ParseLog(f)
		f.Close()
		if err != nil {
			return nil, fmt.Errorf("%s: %w", p, err)
		}
		all = append(all, evs...)
	}
	return all, nil
}

func timeNS(ns int64) time.Time { return time.Unix(0, ns) }
