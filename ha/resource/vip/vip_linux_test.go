package vip

import (
	"context"
	"net"
	"net/netip"
	"os"
	"runtime"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"

	"github.com/tandem-ha/tandem/ha/resource"
)

// lab is a fresh network namespace holding a veth pair: "vip0" (10.99.0.1/24)
// carries the VIP, its peer "cap0" captures what vip0 sends.
type lab struct {
	ns  netns.NsHandle
	h   *netlink.Handle
	cap int // AF_PACKET socket bound to cap0
}

func newLab(t *testing.T) *lab {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("vip tests need root to create a network namespace; run: sudo go test ./ha/resource/vip/")
	}
	ns := func() netns.NsHandle {
		runtime.LockOSThread()
		defer runtime.UnlockOSThread()
		orig, err := netns.Get()
		require.NoError(t, err)
		defer orig.Close()
		ns, err := netns.New() // creates and enters it
		require.NoError(t, err)
		require.NoError(t, netns.Set(orig))
		return ns
	}()
	l := &lab{ns: ns, cap: -1}
	// The namespace has no bind mount: closing the last handle (and the
	// sockets made in it) destroys it with its veth pair, even on failure.
	t.Cleanup(func() {
		if l.cap >= 0 {
			unix.Close(l.cap)
		}
		if l.h != nil {
			l.h.Close()
		}
		ns.Close()
	})
	h, err := netlink.NewHandleAt(ns)
	require.NoError(t, err)
	l.h = h
	veth := &netlink.Veth{LinkAttrs: netlink.LinkAttrs{Name: "vip0"}, PeerName: "cap0"}
	require.NoError(t, h.LinkAdd(veth))
	vip0, err := h.LinkByName("vip0")
	require.NoError(t, err)
	cap0, err := h.LinkByName("cap0")
	require.NoError(t, err)
	base, _ := netlink.ParseAddr("10.99.0.1/24")
	require.NoError(t, h.AddrAdd(vip0, base))
	require.NoError(t, h.LinkSetUp(vip0))
	require.NoError(t, h.LinkSetUp(cap0))

	fd, err := packetSocket(ns, etherTypeARP)
	require.NoError(t, err)
	l.cap = fd
	require.NoError(t, unix.Bind(fd, &unix.SockaddrLinklayer{Protocol: htons(etherTypeARP), Ifindex: cap0.Attrs().Index}))
	return l
}

// capture collects gratuitous ARP frames for ip until quiet for idle.
func (l *lab) capture(t *testing.T, ip netip.Addr, idle time.Duration) []Packet {
	t.Helper()
	tv := unix.NsecToTimeval(idle.Nanoseconds())
	require.NoError(t, unix.SetsockoptTimeval(l.cap, unix.SOL_SOCKET, unix.SO_RCVTIMEO, &tv))
	var got []Packet
	buf := make([]byte, 1600)
	for {
		n, _, err := unix.Recvfrom(l.cap, buf, 0)
		if err != nil {
			return got // timeout
		}
		p, err := ParseFrame(buf[:n])
		if err == nil && p.IsGratuitous() && p.SenderIP == ip {
			got = append(got, p)
		}
	}
}

func TestVIPLifecycle(t *testing.T) {
	l := newLab(t)
	ip := netip.MustParsePrefix("10.99.0.100/24")
	v := NewVIP("web", Config{Address: ip, Interface: "vip0", ARPCount: 3, ARPInterval: 100 * time.Millisecond, NetNS: l.ns}, nil)
	ctx := context.Background()

	st, err := v.Monitor(ctx)
	require.NoError(t, err)
	assert.Equal(t, resource.StatusStopped, st)
	require.NoError(t, v.Check(ctx))

	begin := time.Now()
	require.NoError(t, v.Start(ctx))
	assert.Less(t, time.Since(begin), 100*time.Millisecond, "Start must not wait for the whole announcement")

	st, err = v.Monitor(ctx)
	require.NoError(t, err)
	assert.Equal(t, resource.StatusRunning, st)

	frames := l.capture(t, ip.Addr(), 500*time.Millisecond)
	require.Len(t, frames, 6, "3 request+reply pairs")
	vip0, err := l.h.LinkByName("vip0")
	require.NoError(t, err)
	for i, f := range frames {
		want := OpRequest
		if i%2 == 1 {
			want = OpReply
		}
		assert.Equal(t, want, f.Op, "frame %d", i)
		assert.Equal(t, vip0.Attrs().HardwareAddr, f.SenderHW)
		assert.Equal(t, net.HardwareAddr(broadcast), f.Dst)
	}

	require.NoError(t, v.Start(ctx), "start of a running VIP succeeds")
	require.NoError(t, v.Stop(ctx))
	st, err = v.Monitor(ctx)
	require.NoError(t, err)
	assert.Equal(t, resource.StatusStopped, st)
	require.NoError(t, v.Stop(ctx), "stop of an absent VIP succeeds")
	addrs, err := l.h.AddrList(vip0, netlink.FAMILY_V4)
	require.NoError(t, err)
	assert.Len(t, addrs, 1, "only the base address is left")
}

func TestVIPStopCancelsAnnouncement(t *testing.T) {
	l := newLab(t)
	ip := netip.MustParsePrefix("10.99.0.101/24")
	v := NewVIP("web", Config{Address: ip, Interface: "vip0", ARPCount: 50, ARPInterval: time.Second, NetNS: l.ns}, nil)
	require.NoError(t, v.Start(context.Background()))
	require.NoError(t, v.Stop(context.Background()))
	assert.Len(t, l.capture(t, ip.Addr(), 300*time.Millisecond), 2, "only the first pair went out")
}

func TestVIPWrongSubnet(t *testing.T) {
	l := newLab(t)
	v := NewVIP("web", Config{Address: netip.MustParsePrefix("10.98.0.5/24"), Interface: "vip0", NetNS: l.ns}, nil)
	err := v.Start(context.Background())
	require.Error(t, err)
	assert.Contains(t, err.Error(), "params.address")
	assert.Contains(t, err.Error(), "10.99.0.1/24")
	assert.Error(t, v.Check(context.Background()))

	v = NewVIP("web", Config{Address: netip.MustParsePrefix("10.99.0.5/24"), Interface: "nope0", NetNS: l.ns}, nil)
	st, err := v.Monitor(context.Background())
	assert.Equal(t, resource.StatusFailed, st)
	assert.ErrorContains(t, err, "params.interface")
	assert.NoError(t, v.Stop(context.Background()), "no interface, no address: stopped")
}
