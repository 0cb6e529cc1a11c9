package diskhb

import (
	"errors"
	"fmt"
	"time"
)

// ErrForeign is a peer slot of another cluster or node: the arbiter is
// shared by mistake, or the node list differs between the nodes.
var ErrForeign = errors.New("diskhb: slot of another cluster or node")

// Tracker is the pure liveness rule of the peer's slot: the peer is alive
// while its slot changed (another boot or sequence) within the deadtime.
// A slot that stays the same is a dead writer, however often it is read.
type Tracker struct {
	Cluster uint64
	Peer    string

	seen    bool
	moved   bool
	last    Slot
	changed time.Duration
}

// Observe records a read of the peer's slot at now and reports whether it
// changed since the previous read (the first valid read counts as a
// change only if the caller has no older knowledge: it does, here, since
// a slot written by an earlier run proves nothing about the present; so
// the first read is not a change).
func (t *Tracker) Observe(s Slot, now time.Duration) (changed bool, err error) {
	if s.Cluster != t.Cluster || s.Node != t.Peer {
		return false, fmt.Errorf("%w: node %q (want %q)", ErrForeign, s.Node, t.Peer)
	}
	if !t.seen {
		t.seen, t.last = true, s
		return false, nil
	}
	if s.Boot == t.last.Boot && s.Seq == t.last.Seq {
		return false, nil
	}
	t.last, t.changed, t.moved = s, now, true
	return true, nil
}

// Alive reports whether the slot changed within deadtime of now.
func (t *Tracker) Alive(now, deadtime time.Duration) bool {
	return t.moved && now-t.changed < deadtime
}

// Last returns the last slot read and when it last changed (ok false
// before any read).
func (t *Tracker) Last() (s Slot, changedAt time.Duration, ok bool) {
	return t.last, t.changed, t.seen
}
