package audit

import (
	"slices"
	"strings"
)

// Nexus names an initiator port: the iSCSI initiator name (compared
// case-insensitively, RFC 3722) and the ISID. A zero ISID matches every
// session of the initiator.
type Nexus struct {
	Initiator string
	ISID      [6]byte
}

// Matches reports whether r came from n.
func (n Nexus) Matches(r *Record) bool {
	return strings.EqualFold(n.Initiator, r.Initiator) && (n.ISID == [6]byte{} || n.ISID == r.ISID)
}

// Summary counts a history.
type Summary struct {
	// Accepted and Refused count write records by status (GOOD or not).
	Accepted, Refused int
	// Dropped is the number of records lost to a full buffer: when it is
	// not zero the history is incomplete, and a checker that found
	// nothing has proven nothing.
	Dropped uint64
}

// Summarize counts recs.
func Summarize(recs []Record) Summary {
	var s Summary
	for i := range recs {
		r := &recs[i]
		switch {
		case r.Kind == KindDropped:
			s.Dropped += r.Dropped
		case r.Accepted():
			s.Accepted++
		case r.Kind == KindWrite:
			s.Refused++
		}
	}
	return s
}

// AcceptedAfterFence returns the writes of fenced that the target
// accepted at or after the fence: admitted under a PR generation of at
// least fenceGen (the generation the fencing PREEMPT produced, as READ
// KEYS reports it after the preempt). A correct target returns none.
// Records carry the generation read just before admission, so a write
// admitted before the fence is never counted against it.
func AcceptedAfterFence(recs []Record, fenced Nexus, fenceGen uint32) []Record {
	var out []Record
	for i := range recs {
		r := &recs[i]
		if r.Accepted() && r.Blocks > 0 && r.Generation >= fenceGen && fenced.Matches(r) {
			out = append(out, *r)
		}
	}
	return out
}

// LastWriters returns, for each of lbas, the accepted write that reached
// that block last (by daemon run, then Seq, then stream order),
// or nothing for a block no accepted write covered.
func LastWriters(recs []Record, lbas []uint64) map[uint64]Record {
	idx := make([]int, 0, len(recs))
	run := make([]int, len(recs)) // which daemon run wrote each record
	cur := 0
	for i := range recs {
		if recs[i].Kind == KindStart {
			cur++
		}
		run[i] = cur
		if recs[i].Accepted() && recs[i].Blocks > 0 {
			idx = append(idx, i)
		}
	}
	slices.SortStableFunc(idx, func(a, b int) int {
		if run[a] != run[b] {
			return run[a] - run[b]
		}
		sa, sb := recs[a].Seq, recs[b].Seq
		switch {
		case sa < sb:
			return -1
		case sa > sb:
			return 1
		}
		return 0
	})
	out := map[uint64]Record{}
	for _, i := range idx {
		r := &recs[i]
		for _, lba := range lbas {
			if lba >= r.LBA && lba-r.LBA < r.Blocks {
				out[lba] = *r
			}
		}
	}
	return out
}

// Writers returns the distinct nexuses with an accepted write covering
// any block of [lba, lba+blocks), in order of first write: more than one
// on a block two nodes must never share is a split brain.
func Writers(recs []Record, lba, blocks uint64) []Nexus {
	var out []Nexus
	for i := range recs {
		r := &recs[i]
		if !r.Accepted() || r.Blocks == 0 || r.LBA >= lba+blocks || lba >= r.LBA+r.Blocks {
			continue
		}
		n := Nexus{Initiator: strings.ToLower(r.Initiator), ISID: r.ISID}
		if !slices.Contains(out, n) {
			out = append(out, n)
		}
	}
	return out
}
