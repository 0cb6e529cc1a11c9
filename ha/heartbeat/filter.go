package heartbeat

import (
	"errors"
	"sync"
)

var (
	// ErrForeign is returned by Filter.Accept for a heartbeat of another
	// cluster sharing the network: give each cluster its own name and port.
	ErrForeign = errors.New("heartbeat: datagram of another cluster")
	// ErrSelf is returned by Filter.Accept for a datagram carrying our own
	// node name: a looped-back send, or a peer configured with our name.
	ErrSelf = errors.New("heartbeat: datagram carries this node's own name (looped back, or both nodes use the same name)")
	// ErrReplay is returned by Filter.Accept for a datagram already seen, too
	// old for the window, or from an earlier boot of its sender.
	ErrReplay = errors.New("heartbeat: replayed or stale datagram")
)

// Window is how far behind the newest sequence number a datagram may arrive
// and still be accepted once; covers reordering between links.
const Window = 64

// Stats counts what a Filter dropped and accepted.
type Stats struct {
	Accepted, Forged, Malformed, Foreign, Self, Replayed uint64
}

// Filter drops foreign, looped-back and replayed heartbeats. It keeps, per
// sending node, the newest boot generation and a sliding window of sequence
// numbers (the anti-replay window of RFC 4303 section 3.4.3). Safe for
// concurrent use by the receivers of several links.
type Filter struct {
	cluster, self string

	mu    sync.Mutex
	peers map[string]*window
	stats Stats
}

type window struct {
	boot uint64
	top  uint64 // highest sequence number accepted in this boot
	bits uint64 // bit i set: top-i was accepted
}

// NewFilter returns a Filter for node self of cluster.
func NewFilter(cluster, self string) *Filter {
	return &Filter{cluster: cluster, self: self, peers: make(map[string]*window)}
}

// Receive opens a datagram with key and passes it through Accept, counting
// forged and malformed datagrams as well. It is the one call a link
// receiver needs.
func (f *Filter) Receive(key, b []byte) (Message, error) {
	m, err := Open(key, b)
	if err != nil {
		f.mu.Lock()
		if errors.Is(err, ErrForged) {
			f.stats.Forged++
		} else {
			f.stats.Malformed++
		}
		f.mu.Unlock()
		return Message{}, err
	}
	if err := f.Accept(m); err != nil {
		return Message{}, err
	}
	return m, nil
}

// Accept checks an authenticated message: it returns ErrForeign, ErrSelf or
// ErrReplay (and counts them), or nil and records m as seen. A higher Boot
// from a node resets its window; a lower one is refused, since datagrams of
// an earlier run may be replayed by anyone who recorded them.
func (f *Filter) Accept(m Message) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if m.Cluster != f.cluster {
		f.stats.Foreign++
		return ErrForeign
	}
	if m.Node == f.self {
		f.stats.Self++
		return ErrSelf
	}
	w := f.peers[m.Node]
	if w == nil {
		w = &window{boot: m.Boot, top: m.Seq, bits: 1}
		f.peers[m.Node] = w
		f.stats.Accepted++
		return nil
	}
	if !w.accept(m.Boot, m.Seq) {
		f.stats.Replayed++
		return ErrReplay
	}
	f.stats.Accepted++
	return nil
}

func (w *window) accept(boot, seq uint64) bool {
	switch {
	case boot < w.boot:
		return false
	case boot > w.boot:
		*w = window{boot: boot, top: seq, bits: 1}
		return true
	case seq > w.top:
		if d := seq - w.top; d >= Window {
			w.bits = 1
		} else {
			w.bits = w.bits<<d | 1
		}
		w.top = seq
		return true
	}
	d := w.top - seq
	if d >= Window || w.bits&(1<<d) != 0 {
		return false
	}
	w.bits |= 1 << d
	return true
}

// Stats returns the counters so far.
func (f *Filter) Stats() Stats {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.stats
}
