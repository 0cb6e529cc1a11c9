// Package durability judges what a storage device kept across a power
// cut against what it acknowledged, as Jepsen's checkers do with LazyFS:
// from the client's history and the blocks read back afterwards, never
// from the device's own account. It is pure: the labs record the history
// and read the blocks, Check decides.
//
// The rules (SBC-3 5.8, 5.22): a write completed with FUA is durable when
// acknowledged, and so is every write to a block completed before a
// SYNCHRONIZE CACHE that completed; any other write may or may not have
// survived, and so may a write whose outcome is unknown (Jepsen's
// "info"). A block read back must hold its last durable write or one of
// the writes that may have survived after it.
package durability

import "slices"

// Kind is an operation's kind.
type Kind uint8

// Operation kinds.
const (
	// Write puts Tag on every block of [LBA, LBA+Blocks).
	Write Kind = iota + 1
	// Sync is SYNCHRONIZE CACHE of the whole LU.
	Sync
)

// Outcome is what the client learned of an operation.
type Outcome uint8

// Outcomes.
const (
	// OK: acknowledged with GOOD.
	OK Outcome = iota + 1
	// Failed: refused with a status that means it did nothing.
	Failed
	// Unknown: no answer (timeout, connection lost, power cut in flight);
	// it may or may not have taken effect, and is never acknowledged.
	Unknown
)

// Op is one operation of a client's history, in the order the client
// issued them, each after the previous one completed.
type Op struct {
	Kind    Kind
	LBA     uint64
	Blocks  uint64
	FUA     bool
	Tag     uint64 // nonzero, unique per write; 0 is a block never written
	Outcome Outcome
}

// Finding is a block that holds what it must not.
type Finding struct {
	LBA uint64
	// Want is the tag of the last write to the block that was durable;
	// Got is the tag read back.
	Want, Got uint64
}

// Report is the verdict.
type Report struct {
	// Lost are blocks whose durable write is gone (an older write or
	// zeros in its place): data acknowledged before it was durable.
	Lost []Finding
	// Unexpected are blocks holding a tag no write to them could leave.
	Unexpected []Finding
}

// OK reports whether nothing was found.
func (r Report) OK() bool { return len(r.Lost) == 0 && len(r.Unexpected) == 0 }

// block is what may be on one block after a power cut.
type block struct {
	durable uint64
	// maybe are the writes after durable that may have survived, oldest
	// first, with whether each was acknowledged.
	maybe []candidate
	// older are the tags written before durable: reading one back is a
	// loss, not an unknown tag.
	older []uint64
}

type candidate struct {
	tag   uint64
	acked bool
}

// Check judges the blocks read back (tag by LBA; an LBA missing from
// readBack is not judged) against history.
func Check(history []Op, readBack map[uint64]uint64) Report {
	blocks := map[uint64]*block{}
	get := func(lba uint64) *block {
		b := blocks[lba]
		if b == nil {
			b = &block{}
			blocks[lba] = b
		}
		return b
	}
	for _, op := range history {
		switch {
		case op.Kind == Write && op.Outcome == OK && op.FUA:
			for lba := op.LBA; lba < op.LBA+op.Blocks; lba++ {
				b := get(lba)
				b.retire()
				b.older = append(b.older, b.durable)
				b.durable = op.Tag
			}
		case op.Kind == Write && (op.Outcome == OK || op.Outcome == Unknown):
			for lba := op.LBA; lba < op.LBA+op.Blocks; lba++ {
				b := get(lba)
				b.maybe = append(b.maybe, candidate{tag: op.Tag, acked: op.Outcome == OK})
			}
		case op.Kind == Sync && op.Outcome == OK:
			for _, b := range blocks {
				b.sync()
			}
		}
	}
	var r Report
	lbas := make([]uint64, 0, len(readBack))
	for lba := range readBack {
		lbas = append(lbas, lba)
	}
	slices.Sort(lbas)
	for _, lba := range lbas {
		got := readBack[lba]
		b := blocks[lba]
		if b == nil {
			b = &block{}
		}
		switch {
		case got == b.durable || slices.ContainsFunc(b.maybe, func(c candidate) bool { return c.tag == got }):
		case got == 0 || slices.Contains(b.older, got):
			r.Lost = append(r.Lost, Finding{LBA: lba, Want: b.durable, Got: got})
		default:
			r.Unexpected = append(r.Unexpected, Finding{LBA: lba, Want: b.durable, Got: got})
		}
	}
	return r
}

// retire moves every candidate into older: a durable write replaces them.
func (b *block) retire() {
	for _, c := range b.maybe {
		b.older = append(b.older, c.tag)
	}
	b.maybe = b.maybe[:0]
}

// sync makes the last acknowledged candidate durable; unknown writes
// after it stay possible.
func (b *block) sync() {
	last := -1
	for i, c := range b.maybe {
		if c.acked {
			last = i
		}
	}
	if last < 0 {
		return
	}
	keep := slices.Clone(b.maybe[last+1:])
	b.older = append(b.older, b.durable)
	for _, c := range b.maybe[:last] {
		b.older = append(b.older, c.tag)
	}
	b.durable = b.maybe[last].tag
	b.maybe = keep
}
