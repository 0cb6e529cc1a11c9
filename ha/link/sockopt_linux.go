package link

import (
	"fmt"
	"net"
	"net/netip"

	"golang.org/x/sys/unix"
)

// sockopts runs before bind: SO_REUSEADDR so several links (and a
// restarted agent) can share the port, SO_BINDTODEVICE so a link's
// datagrams really use its cable and not whatever route the kernel
// prefers, SO_BROADCAST for broadcast links.
func sockopts(fd int, dev string, broadcast bool) error {
	if err := unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_REUSEADDR, 1); err != nil {
		return fmt.Errorf("SO_REUSEADDR: %w", err)
	}
	if dev != "" {
		if err := unix.BindToDevice(fd, dev); err != nil {
			return fmt.Errorf("SO_BINDTODEVICE %s: %w (does the interface exist?)", dev, err)
		}
	}
	if broadcast {
		if err := unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_BROADCAST, 1); err != nil {
			return fmt.Errorf("SO_BROADCAST: %w", err)
		}
	}
	return nil
}

// joinGroup joins group on dev, sends to it through dev with TTL 1 and
// without looping our own datagrams back.
func joinGroup(c *net.UDPConn, dev string, group netip.Addr) error {
	ifi, err := net.InterfaceByName(dev)
	if err != nil {
		return fmt.Errorf("interface %s: %w", dev, err)
	}
	rc, err := c.SyscallConn()
	if err != nil {
		return err
	}
	var serr error
	err = rc.Control(func(fd uintptr) {
		mreq := &unix.IPMreqn{Multiaddr: group.As4(), Ifindex: int32(ifi.Index)}
		if serr = unix.SetsockoptIPMreqn(int(fd), unix.IPPROTO_IP, unix.IP_ADD_MEMBERSHIP, mreq); serr != nil {
			serr = fmt.Errorf("join %v on %s: %w", group, dev, serr)
			return
		}
		if serr = unix.SetsockoptIPMreqn(int(fd), unix.IPPROTO_IP, unix.IP_MULTICAST_IF, &unix.IPMreqn{Ifindex: int32(ifi.Index)}); serr != nil {
			serr = fmt.Errorf("IP_MULTICAST_IF %s: %w", dev, serr)
			return
		}
		if serr = unix.SetsockoptInt(int(fd), unix.IPPROTO_IP, unix.IP_MULTICAST_TTL, 1); serr != nil {
			return
		}
		serr = unix.SetsockoptInt(int(fd), unix.IPPROTO_IP, unix.IP_MULTICAST_LOOP, 0)
	})
	if err != nil {
		return err
	}
	return serr
}
