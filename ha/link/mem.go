package link

import (
	"net/netip"
	"sync"
	"sync/atomic"
)

// Mem is an in-memory Transport for tests: a pair of Mem endpoints forms
// one link, which a test can cut (both directions drop) and heal.
type Mem struct {
	index    int
	out      chan<- Datagram
	peer     *Mem
	down     *atomic.Bool
	counters Counters
	mu       sync.Mutex
	closed   bool
}

// MemPair returns the two ends of link index: a delivers what b sends into
// outA and b what a sends into outB.
func MemPair(index int, outA, outB chan<- Datagram) (a, b *Mem) {
	down := new(atomic.Bool)
	a = &Mem{index: index, out: outA, down: down}
	b = &Mem{index: index, out: outB, down: down}
	a.peer, b.peer = b, a
	return a, b
}

// SetDown cuts (true) or heals (false) the link in both directions.
func (m *Mem) SetDown(down bool) { m.down.Store(down) }

// Send implements Transport.
func (m *Mem) Send(b []byte) error {
	m.mu.Lock()
	closed := m.closed
	m.mu.Unlock()
	if closed {
		return ErrClosed
	}
	m.counters.Sent.Add(1)
	if m.down.Load() {
		return nil // a cut cable loses datagrams silently
	}
	p := m.peer
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		return nil
	}
	deliver(p.out, Datagram{Link: p.index, Data: append([]byte(nil), b...), From: netip.AddrPort{}}, &p.counters)
	return nil
}

// Counters implements Transport.
func (m *Mem) Counters() *Counters { return &m.counters }

// Close implements Transport.
func (m *Mem) Close() error {
	m.mu.Lock()
	m.closed = true
	m.mu.Unlock()
	return nil
}
