// Package link carries sealed heartbeat datagrams over UDP, one Transport
// per configured link: unicast to the peer's address, multicast to a group
// joined on an interface, or broadcast on an interface. A transport knows
// nothing about the heartbeat format; it moves bytes and counts them. The
// agent opens, authenticates and filters what arrives, and records the
// verdicts in the link's Counters.
package link

import (
	"errors"
	"net/netip"
	"sync/atomic"
)

// Datagram is one received datagram and the link it came in on.
type Datagram struct {
	Link int
	Data []byte
	From netip.AddrPort
}

// Transport is one heartbeat link.
type Transport interface {
	// Send transmits one datagram to the peer (or group, or broadcast).
	Send(b []byte) error
	// Counters are the link's statistics.
	Counters() *Counters
	// Close stops the receive loop and releases the socket.
	Close() error
}

// Counters count a link's datagrams; safe for concurrent use.
type Counters struct {
	Sent       atomic.Uint64 // datagrams sent
	SendErrors atomic.Uint64 // Send failures (link down, no route)
	Received   atomic.Uint64 // datagrams accepted as the peer's heartbeat
	Lost       atomic.Uint64 // gaps in the peer's sequence numbers on this link
	Forged     atomic.Uint64 // bad HMAC
	Malformed  atomic.Uint64 // undecodable
	Foreign    atomic.Uint64 // another cluster or an unknown node
	Replayed   atomic.Uint64 // sequence number already seen
	Self       atomic.Uint64 // our own datagram looped back (broadcast, multicast)
	Overflow   atomic.Uint64 // dropped because the agent was not reading
}

// Snapshot is a copy of Counters.
type Snapshot struct {
	Sent, SendErrors, Received, Lost, Forged, Malformed, Foreign, Replayed, Self, Overflow uint64
}

// Snapshot copies the counters.
func (c *Counters) Snapshot() Snapshot {
	return Snapshot{
		Sent: c.Sent.Load(), SendErrors: c.SendErrors.Load(), Received: c.Received.Load(),
		Lost: c.Lost.Load(), Forged: c.Forged.Load(), Malformed: c.Malformed.Load(),
		Foreign: c.Foreign.Load(), Replayed: c.Replayed.Load(), Self: c.Self.Load(),
		Overflow: c.Overflow.Load(),
	}
}

// ErrClosed is returned by Send after Close.
var ErrClosed = errors.New("link closed")

// maxDatagram bounds a heartbeat datagram; anything longer is not ours.
const maxDatagram = 1500

// deliver hands a datagram to the agent without blocking the receive loop:
// a stalled agent loses heartbeats (counted), it does not stall sockets.
func deliver(out chan<- Datagram, d Datagram, c *Counters) {
	select {
	case out <- d:
	default:
		c.Overflow.Add(1)
	}
}
