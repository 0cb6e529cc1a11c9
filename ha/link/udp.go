package link

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"sync"
	"syscall"

	"github.com/tandem-ha/tandem/ha/config"
)

// UDP is a Transport over a UDP socket.
type UDP struct {
	index    int
	conn     *net.UDPConn
	dst      *net.UDPAddr
	log      *slog.Logger
	counters Counters
	wg       sync.WaitGroup
	setup    func() // WithReceiverSetup
}

// Option adjusts Open.
type Option func(*UDP)

// WithReceiverSetup runs f first thing in the receive goroutine, e.g. to
// give its thread a realtime policy (ha/internal/rt).
func WithReceiverSetup(f func()) Option { return func(u *UDP) { u.setup = f } }

// Open opens the socket of link index as described by l (already resolved
// for this node by config.Load) and starts delivering what it receives
// into out. A nil log discards.
func Open(index int, l config.Link, out chan<- Datagram, log *slog.Logger, opts ...Option) (*UDP, error) {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	u := &UDP{index: index, log: log.With("link", l.Name),
		dst: net.UDPAddrFromAddrPort(netip.AddrPortFrom(l.Peer, uint16(l.Port)))}
	var err error
	switch l.Mode {
	case config.ModeUnicast:
		u.conn, err = listen(netip.AddrPortFrom(l.Local, uint16(l.Port)), l.Interface, false)
	case config.ModeBroadcast:
		bind := netip.IPv4Unspecified()
		u.conn, err = listen(netip.AddrPortFrom(bind, uint16(l.Port)), l.Interface, true)
	case config.ModeMulticast:
		// Bound to the group, so only the group's traffic arrives here.
		u.conn, err = listen(netip.AddrPortFrom(l.Peer, uint16(l.Port)), l.Interface, false)
		if err == nil {
			err = joinGroup(u.conn, l.Interface, l.Peer)
		}
	default:
		err = fmt.Errorf("unknown mode %q", l.Mode)
	}
	if err != nil {
		if u.conn != nil {
			u.conn.Close()
		}
		return nil, fmt.Errorf("open link %s (%s on %q, port %d): %w", l.Name, l.Mode, l.Interface, l.Port, err)
	}
	for _, o := range opts {
		o(u)
	}
	u.wg.Add(1)
	go u.receive(out)
	return u, nil
}

func listen(addr netip.AddrPort, dev string, broadcast bool) (*net.UDPConn, error) {
	lc := net.ListenConfig{Control: func(_, _ string, c syscall.RawConn) error {
		var serr error
		err := c.Control(func(fd uintptr) { serr = sockopts(int(fd), dev, broadcast) })
		if err != nil {
			return err
		}
		return serr
	}}
	pc, err := lc.ListenPacket(context.Background(), "udp4", addr.String())
	if err != nil {
		return nil, err
	}
	return pc.(*net.UDPConn), nil
}

func (u *UDP) receive(out chan<- Datagram) {
	defer u.wg.Done()
	if u.setup != nil {
		u.setup()
	}
	for {
		buf := make([]byte, maxDatagram)
		n, from, err := u.conn.ReadFromUDPAddrPort(buf)
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return
			}
			u.log.Debug("receive", "err", err)
			continue
		}
		deliver(out, Datagram{Link: u.index, Data: buf[:n], From: from}, &u.counters)
	}
}

// Send implements Transport.
func (u *UDP) Send(b []byte) error {
	if _, err := u.conn.WriteToUDP(b, u.dst); err != nil {
		u.counters.SendErrors.Add(1)
		if errors.Is(err, net.ErrClosed) {
			return ErrClosed
		}
		return fmt.Errorf("send to %v: %w", u.dst, err)
	}
	u.counters.Sent.Add(1)
	return nil
}

// Counters implements Transport.
func (u *UDP) Counters() *Counters { return &u.counters }

// Close implements Transport.
func (u *UDP) Close() error {
	err := u.conn.Close()
	u.wg.Wait()
	return err
}
