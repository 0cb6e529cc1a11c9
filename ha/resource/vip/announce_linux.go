package vip

import (
	"fmt"
	"net"
	"net/netip"
	"runtime"

	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"
)

// announcer sends gratuitous ARP pairs on one interface through a raw
// AF_PACKET socket (packet(7)); frames are built by AppendGratuitous.
type announcer struct {
	fd       int
	to       unix.SockaddrLinklayer
	req, rep []byte
}

func htons(v uint16) uint16 { return v<<8 | v>>8 }

func newAnnouncer(ns netns.NsHandle, ifindex int, mac net.HardwareAddr, ip netip.Addr) (*announcer, error) {
	fd, err := packetSocket(ns, 0) // protocol 0: send only, receive nothing
	if err != nil {
		return nil, err
	}
	a := &announcer{
		fd:  fd,
		req: AppendGratuitous(nil, OpRequest, mac, ip),
		rep: AppendGratuitous(nil, OpReply, mac, ip),
	}
	a.to = unix.SockaddrLinklayer{Protocol: htons(etherTypeARP), Ifindex: ifindex, Halen: 6}
	copy(a.to.Addr[:], broadcast)
	return a, nil
}

func (a *announcer) sendPair() error {
	for _, f := range [][]byte{a.req, a.rep} {
		if err := unix.Sendto(a.fd, f, 0, &a.to); err != nil {
			return fmt.Errorf("send gratuitous arp on ifindex %d: %w", a.to.Ifindex, err)
		}
	}
	return nil
}

func (a *announcer) close() { unix.Close(a.fd) }

// packetSocket opens an AF_PACKET raw socket for protocol (host order) in
// namespace ns (current when ns <= 0). A socket keeps the namespace it was
// created in, so only its creation runs on a thread moved into ns; that runs
// on a fresh goroutine whose thread is discarded if it cannot move back.
func packetSocket(ns netns.NsHandle, protocol uint16) (int, error) {
	open := func() (int, error) {
		fd, err := unix.Socket(unix.AF_PACKET, unix.SOCK_RAW|unix.SOCK_CLOEXEC, int(htons(protocol)))
		if err != nil {
			return -1, fmt.Errorf("open packet socket: %w (needs CAP_NET_RAW)", err)
		}
		return fd, nil
	}
	if ns <= 0 {
		return open()
	}
	type result struct {
		fd  int
		err error
	}
	ch := make(chan result, 1)
	go func() {
		runtime.LockOSThread()
		orig, err := netns.Get()
		if err != nil {
			runtime.UnlockOSThread()
			ch <- result{-1, fmt.Errorf("get current netns: %w", err)}
			return
		}
		defer orig.Close()
		if err := netns.Set(ns); err != nil {
			runtime.UnlockOSThread()
			ch <- result{-1, fmt.Errorf("enter netns: %w", err)}
			return
		}
		fd, err := open()
		ch <- result{fd, err}
		if netns.Set(orig) == nil {
			runtime.UnlockOSThread()
		} // else: exit locked so the runtime discards the thread
	}()
	r := <-ch
	return r.fd, r.err
}
