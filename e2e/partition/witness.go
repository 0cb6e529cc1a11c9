package partition

import (
	"cmp"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/tandem-ha/tandem/e2e/partition/stamp"
	"github.com/tandem-ha/tandem/ha/fence"
	"github.com/tandem-ha/tandem/target/audit"
	"github.com/tandem-ha/tandem/target/durability"
)

// Block is one block of the shared range as the checker read it back.
type Block struct {
	Stamp stamp.Stamp
	// Err is stamp.ErrNotStamped for a block never written, another
	// error for a torn or corrupted one.
	Err error
}

// Range is the LBA range every writer writes round and round.
type Range struct{ Base, Blocks uint64 }

// NodeCounts are the witness's counts of one node's writer.
type NodeCounts struct {
	// Accepted and Refused count the node's writes in the audit.
	Accepted, Refused int
	// AfterFence are writes accepted although the other node's fence had
	// taken the reservation (audit.AcceptedAfterFence).
	AfterFence int
	// AfterTakeover are writes accepted after the other node's first
	// accepted write, in the target's order: two writers on one range.
	AfterTakeover int
	// Unacked were accepted but never acknowledged to the writer (error,
	// timeout, or in flight when it was killed).
	Unacked int
}

// Verdict is the judgement of one row.
type Verdict struct {
	// Nodes are the counts per node; Order lists the nodes by their first
	// accepted write.
	Nodes map[string]*NodeCounts
	Order []string
	// Fenced says the audit shows a fence: the reservation passed from
	// one node's fence session to the other's, at PR generation FenceGen
	// (the lowest generation seen under the new holder).
	Fenced   bool
	FenceGen uint32
	// AfterFence and Dual sum the nodes' AfterFence and AfterTakeover:
	// both must be 0.
	AfterFence, Dual int
	// Blocks is the number of blocks judged; DiskVsWitness of them hold
	// a write of another writer than the audit's last accepted one.
	Blocks, DiskVsWitness int
	// Lost and Unexpected are durability.Check's findings against the
	// writers' histories: acknowledged durable writes gone, and blocks
	// holding what no write could leave (a refused write, a torn block).
	Lost, Unexpected int
	// AckedUnaudited are acknowledged writes the audit has no accepted
	// record of; LostWithKill those excused because a SIGKILL of the
	// target took the audit's unflushed tail along.
	AckedUnaudited, LostWithKill int
	// Dropped records make the audit incomplete.
	Dropped uint64
	// Problems describe the first findings of each kind.
	Problems []string
}

// OK reports whether the row is clean: one writer at a time, nothing
// acknowledged lost, the disk and the witness agree.
func (v *Verdict) OK() bool {
	return v.AfterFence == 0 && v.Dual == 0 && v.DiskVsWitness == 0 && v.Lost == 0 && v.Unexpected == 0 &&
		v.AckedUnaudited == 0 && v.Dropped == 0
}

const maxProblems = 4 // per kind, for the report

func (v *Verdict) problem(kind string, n *int, format string, args ...any) {
	*n++
	if *n <= maxProblems {
		v.Problems = append(v.Problems, kind+": "+fmt.Sprintf(format, args...))
	}
}

// writerRec is an audit record of a writer's write with the daemon run
// it belongs to.
type writerRec struct {
	*audit.Record
	node string
	run  int
	used bool // matched to an acknowledged write
}

// Judge checks a row from three independent sources: the writers' ack
// logs (events), the target's audit of the data LUN (recs), and the
// shared range read back at the end (disk, by LBA). Pure.
func Judge(events []stamp.Event, recs []audit.Record, disk map[uint64]Block, rng Range) Verdict {
	v := Verdict{Nodes: map[string]*NodeCounts{}}
	counts := func(n string) *NodeCounts {
		if v.Nodes[n] == nil {
			v.Nodes[n] = &NodeCounts{}
		}
		return v.Nodes[n]
	}
	v.Dropped = audit.Summarize(recs).Dropped
	if v.Dropped > 0 {
		v.Problems = append(v.Problems, fmt.Sprintf("audit incomplete: %d records dropped", v.Dropped))
	}

	// The writers' writes in the target's order: daemon run, then the
	// LU's range-lock order (Seq).
	var runStarts []int64
	var ws []*writerRec
	run := 0
	for i := range recs {
		r := &recs[i]
		if r.Kind == audit.KindStart {
			run++
			runStarts = append(runStarts, r.Time)
			continue
		}
		n := stamp.NodeOfInitiator(r.Initiator)
		if r.Kind != audit.KindWrite || n == "" {
			continue
		}
		if r.Accepted() {
			counts(n).Accepted++
		} else {
			counts(n).Refused++
		}
		ws = append(ws, &writerRec{Record: r, node: n, run: run})
	}
	ordered := slices.Clone(ws)
	slices.SortStableFunc(ordered, func(a, b *writerRec) int {
		if a.run != b.run {
			return a.run - b.run
		}
		return cmp.Compare(a.Seq, b.Seq)
	})

	// Two writers on one range: a node's write accepted after a node
	// that came later had its first write accepted.
	first := map[string]int{}
	for i, w := range ordered {
		if _, ok := first[w.node]; !ok && w.Accepted() {
			first[w.node] = i
			v.Order = append(v.Order, w.node)
		}
	}
	for i, w := range ordered {
		if !w.Accepted() {
			continue
		}
		for _, later := range v.Order {
			if f := first[later]; later != w.node && f > first[w.node] && f < i {
				counts(w.node).AfterTakeover++
				v.problem("dual writer", &v.Dual, "%s's write of LBA %d (run %d seq %d) accepted after %s's first write (run %d seq %d)",
					w.node, w.LBA, w.run, w.Seq, later, ordered[f].run, ordered[f].Seq)
				break
			}
		}
	}

	v.judgeFence(ws, counts)
	genOf := v.judgeAcks(events, ws, runStarts, counts)
	v.judgeDisk(recs, disk, genOf)
	v.judgeDurability(events, disk, rng)
	return v
}

// judgeFence finds the first hand-over of the reservation from one
// node's fence session to the other's, in the stream's (completion)
// order, since refused writes have no Seq, and counts the old node's
// writes accepted after it.
func (v *Verdict) judgeFence(ordered []*writerRec, counts func(string) *NodeCounts) {
	holder := func(r *writerRec) string {
		for _, n := range Nodes {
			if r.ResType != 0 && strings.EqualFold(r.HolderInitiator, fence.InitiatorName(Cluster, n)) {
				return n
			}
		}
		return ""
	}
	prev, at := "", -1
	for i, r := range ordered {
		h := holder(r)
		if h != "" && prev != "" && h != prev {
			at = i
			break
		}
		if h != "" {
			prev = h
		}
	}
	if at < 0 {
		return
	}
	newHolder, fenceRun := holder(ordered[at]), ordered[at].run
	v.Fenced = true
	v.FenceGen = ordered[at].Generation
	var inRun []audit.Record
	for _, r := range ordered {
		if r.run == fenceRun {
			inRun = append(inRun, *r.Record)
			if holder(r) == newHolder {
				v.FenceGen = min(v.FenceGen, r.Generation)
			}
		}
	}
	fenced := Nexus(prev)
	after := audit.AcceptedAfterFence(inRun, fenced, v.FenceGen)
	for _, r := range ordered {
		if r.run > fenceRun && r.Accepted() && r.Blocks > 0 && fenced.Matches(r.Record) {
			after = append(after, *r.Record)
		}
	}
	for _, r := range after {
		counts(prev).AfterFence++
		v.problem("accepted after the fence", &v.AfterFence, "%s's write of LBA %d at PR generation %d, fence at generation %d by %s",
			prev, r.LBA, r.Generation, v.FenceGen, newHolder)
	}
}

// Nexus is every session of node's writer.
func Nexus(node string) audit.Nexus { return audit.Nexus{Initiator: stamp.WriterInitiator(node)} }

type genInfo struct {
	node string
	isid [6]byte
	ok   bool // isid known
}

// judgeAcks matches every acknowledged write with an accepted record of
// the same nexus and LBA completed between submission and reply; what
// remains of the audit was accepted but never acknowledged.
func (v *Verdict) judgeAcks(events []stamp.Event, ws []*writerRec, runStarts []int64, counts func(string) *NodeCounts) map[uint64]genInfo {
	genOf := map[uint64]genInfo{}
	for _, e := range events {
		if isid, ok := e.ISID(); ok {
			genOf[e.Gen] = genInfo{node: e.Node, isid: isid, ok: true}
		} else if _, seen := genOf[e.Gen]; !seen {
			genOf[e.Gen] = genInfo{node: e.Node}
		}
	}
	type key struct {
		node string
		lba  uint64
	}
	byKey := map[key][]*writerRec{}
	for _, w := range ws {
		if w.Accepted() && w.Blocks > 0 {
			byKey[key{w.node, w.LBA}] = append(byKey[key{w.node, w.LBA}], w)
		}
	}
	runOf := func(t int64) int {
		n := 0
		for _, s := range runStarts {
			if s <= t {
				n++
			}
		}
		return n
	}
	for _, e := range events {
		if e.Kind != stamp.KindAck {
			continue
		}
		g := genOf[e.Gen]
		same := func(w *writerRec) bool { return !g.ok || w.ISID == g.isid }
		i := slices.IndexFunc(byKey[key{e.Node, e.LBA}], func(w *writerRec) bool {
			return !w.used && same(w) && w.Time >= e.Time && w.Time <= e.Acked
		})
		if i >= 0 {
			byKey[key{e.Node, e.LBA}][i].used = true
			continue
		}
		// The audit loses only its unflushed tail to a SIGKILL: an ack
		// is excused when its run was killed (a later run exists) and no
		// later write of the same writer made it into that run's records.
		r := runOf(e.Acked)
		later := slices.ContainsFunc(ws, func(w *writerRec) bool { return w.run == r && w.node == e.Node && same(w) && w.Time > e.Acked })
		if r < len(runStarts) && !later {
			v.LostWithKill++
			continue
		}
		v.problem("acknowledged but not in the audit", &v.AckedUnaudited, "%s gen %d seq %d LBA %d acked at %s",
			e.Node, e.Gen, e.Seq, e.LBA, stampTime(e.Acked))
	}
	for _, w := range ws {
		if w.Accepted() && w.Blocks > 0 && !w.used {
			counts(w.node).Unacked++
		}
	}
	return genOf
}

// judgeDisk compares every block with its last accepted writer in the
// audit. A block whose last write went without FUA may hold an older
// write after a power cut: judgeDurability judges it.
func (v *Verdict) judgeDisk(recs []audit.Record, disk map[uint64]Block, genOf map[uint64]genInfo) {
	lbas := make([]uint64, 0, len(disk))
	for lba := range disk {
		lbas = append(lbas, lba)
	}
	slices.Sort(lbas)
	v.Blocks = len(lbas)
	var writes []audit.Record
	for _, r := range recs {
		if r.Kind == audit.KindStart || stamp.NodeOfInitiator(r.Initiator) != "" {
			writes = append(writes, r)
		}
	}
	last := audit.LastWriters(writes, lbas)
	for _, lba := range lbas {
		b := disk[lba]
		r, audited := last[lba]
		switch {
		case audited && r.Flags&audit.FlagFUA == 0:
		case !audited && errors.Is(b.Err, stamp.ErrNotStamped):
		case !audited:
			v.problem("disk vs witness", &v.DiskVsWitness, "LBA %d holds %s, but the audit has no accepted write of it", lba, describe(b))
		case b.Err != nil:
			v.problem("disk vs witness", &v.DiskVsWitness, "LBA %d holds %s, but the audit's last writer is %s", lba, describe(b), nexusName(&r))
		default:
			g := genOf[b.Stamp.Gen]
			if b.Stamp.Node != stamp.NodeOfInitiator(r.Initiator) || g.ok && g.isid != r.ISID || b.Stamp.LBA != lba {
				v.problem("disk vs witness", &v.DiskVsWitness, "LBA %d holds %s, but the audit's last writer is %s", lba, describe(b), nexusName(&r))
			}
		}
	}
}

// judgeDurability replays the writers' histories through
// durability.Check. Writes of different writers are ordered by
// submission: they overlap only where two nodes wrote at once, which the
// witness reports anyway.
func (v *Verdict) judgeDurability(events []stamp.Event, disk map[uint64]Block, rng Range) {
	type op struct {
		at int64
		durability.Op
	}
	var ops []op
	lastSeq := map[uint64]stamp.Event{}
	for _, e := range events {
		o := durability.Op{Kind: durability.Write, LBA: e.LBA, Blocks: 1, FUA: e.FUA, Tag: stamp.Tag(e.Gen, e.Seq)}
		switch e.Kind {
		case stamp.KindAck:
			o.Outcome = durability.OK
		case stamp.KindConflict:
			o.Outcome = durability.Failed
		case stamp.KindError:
			o.Outcome = durability.Unknown
		default:
			continue
		}
		ops = append(ops, op{e.Time, o})
		if l, ok := lastSeq[e.Gen]; !ok || e.Seq > l.Seq {
			lastSeq[e.Gen] = e
		}
	}
	// A writer killed with a write in flight never logged it: it may
	// have landed.
	for gen, l := range lastSeq {
		if rng.Blocks == 0 {
			break
		}
		next := rng.Base + (l.LBA-rng.Base+1)%rng.Blocks
		ops = append(ops, op{l.Time + 1, durability.Op{Kind: durability.Write, LBA: next, Blocks: 1,
			Tag: stamp.Tag(gen, l.Seq+1), Outcome: durability.Unknown}})
	}
	slices.SortStableFunc(ops, func(a, b op) int { return cmp.Compare(a.at, b.at) })
	history := make([]durability.Op, len(ops))
	for i, o := range ops {
		history[i] = o.Op
	}
	readBack := map[uint64]uint64{}
	for lba, b := range disk {
		switch {
		case errors.Is(b.Err, stamp.ErrNotStamped):
			readBack[lba] = 0
		case b.Err != nil || b.Stamp.LBA != lba:
			readBack[lba] = 1<<63 | lba // no write leaves this
		default:
			readBack[lba] = stamp.Tag(b.Stamp.Gen, b.Stamp.Seq)
		}
	}
	rep := durability.Check(history, readBack)
	for _, f := range rep.Lost {
		v.problem("acknowledged write lost", &v.Lost, "LBA %d holds %s, want %s", f.LBA, tagName(f.Got), tagName(f.Want))
	}
	for _, f := range rep.Unexpected {
		v.problem("unexpected content", &v.Unexpected, "LBA %d holds %s (%s), last durable %s", f.LBA, tagName(f.Got), describe(disk[f.LBA]), tagName(f.Want))
	}
}

func describe(b Block) string {
	if b.Err != nil {
		return b.Err.Error()
	}
	return fmt.Sprintf("%s gen %d seq %d", b.Stamp.Node, b.Stamp.Gen, b.Stamp.Seq)
}

func tagName(t uint64) string {
	switch {
	case t == 0:
		return "nothing"
	case t>>63 == 1:
		return "no stamp of this block"
	}
	return fmt.Sprintf("gen %d seq %d", t>>32, t&0xffffffff)
}

func nexusName(r *audit.Record) string {
	return fmt.Sprintf("%s isid %x (seq %d)", r.Initiator, r.ISID, r.Seq)
}
