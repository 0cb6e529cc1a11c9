package vm

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"os"
	"os/signal"
	"sync"
	"syscall"

	"github.com/tandem-ha/tandem/e2e/internal/netlab"
)

// DefaultSubnet is the lab's private subnet; the host side takes .1 and
// guest i (from 0) takes .11+i. It lives only inside the lab's network
// namespace, so labs on the same subnet run side by side.
var DefaultSubnet = netip.MustParsePrefix("10.213.7.0/24")

// Names inside the lab's namespace: one bridge, one tap per guest.
const (
	hostNS = "host"
	bridge = "tdm-br"
)

// LabOptions configure a Lab.
type LabOptions struct {
	// Dir holds per-guest logs and sockets; keep it short (unix sockets).
	Dir string
	// Subnet is the bridge's subnet; default DefaultSubnet.
	Subnet netip.Prefix
	// Image is booted by AddGuest.
	Image *Image
	// Accel is qemu's accelerator for every guest; default "tcg" (see
	// Config.Accel).
	Accel string
	// HandleSignals makes SIGINT and SIGTERM tear the lab down and exit
	// the process with status 130 (for commands; tests use t.Cleanup).
	HandleSignals bool
	// Logger; nil discards.
	Logger *slog.Logger
}

// Lab is a network namespace holding a bridge with the host side's
// address, the guests' taps on it, the guests' qemu processes and the
// host-side processes of a test (Host): nothing of it is in the root
// namespace. Close tears down everything it made, also when called from a
// signal handler.
type Lab struct {
	opts LabOptions
	log  *slog.Logger
	net  *netlab.Lab
	// HostAddr is the host side's address on the bridge, e.g. 10.213.7.1/24.
	HostAddr netip.Prefix

	mu      sync.Mutex
	guests  []*VM
	defers  []func()
	closed  bool
	stopSig func()
	// closeDone is closed when the first Close has finished; later callers
	// wait for it, so a signal-driven Close is never cut short by the main
	// goroutine's deferred Close and exit.
	closeDone chan struct{}
}

// NewLab creates the namespace and its bridge, with the host side at .1.
func NewLab(ctx context.Context, o LabOptions) (*Lab, error) {
	if o.Subnet == (netip.Prefix{}) {
		o.Subnet = DefaultSubnet
	}
	log := o.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	host, err := HostAddr(o.Subnet)
	if err != nil {
		return nil, err
	}
	l := &Lab{opts: o, log: log, HostAddr: host, closeDone: make(chan struct{})}
	if o.HandleSignals {
		ch := make(chan os.Signal, 1)
		signal.Notify(ch, syscall.SIGINT, syscall.SIGTERM)
		done := make(chan struct{})
		l.stopSig = func() { signal.Stop(ch); close(done) }
		go func() {
			select {
			case s := <-ch:
				log.Warn("signal: tearing the lab down", "signal", s.String())
				l.Close()
				os.Exit(130)
			case <-done:
			}
		}()
	}
	n, err := netlab.Build(netlab.Topology{
		Prefix:     "tdmv",
		Namespaces: []string{hostNS},
		// Snooping stays on, the kernel's default: guests use no multicast.
		Bridges: []netlab.Bridge{{NS: hostNS, Name: bridge, Addr: host, Snooping: true}},
	})
	if err != nil {
		l.Close()
		return nil, fmt.Errorf("vm: %w", err)
	}
	l.mu.Lock()
	l.net = n
	l.mu.Unlock()
	log.Info("bridge up", "netns", n.Netns(hostNS), "bridge", bridge, "host", host.String())
	return l, nil
}

// Host is the lab namespace's node: run the test's host-side processes
// (a target) with Host().Start, open its sockets with Host().Do and
// connect from it with Host().DialContext.
func (l *Lab) Host() *netlab.Node { return l.net.Node(hostNS) }

// Netns is the name of the lab's network namespace.
func (l *Lab) Netns() string { return l.net.Netns(hostNS) }

// HostAddr is the host's address on subnet: .1 with the subnet's length.
func HostAddr(subnet netip.Prefix) (netip.Prefix, error) {
	return nthAddr(subnet, 1)
}

// GuestAddr is guest i's address on subnet: .11+i.
func GuestAddr(subnet netip.Prefix, i int) (netip.Prefix, error) {
	return nthAddr(subnet, 11+i)
}

func nthAddr(subnet netip.Prefix, n int) (netip.Prefix, error) {
	if !subnet.Addr().Is4() || subnet.Bits() > 24 {
		return netip.Prefix{}, fmt.Errorf("vm: subnet %s must be IPv4 and /24 or larger", subnet)
	}
	a := subnet.Masked().Addr().As4()
	a[3] += byte(n)
	return netip.PrefixFrom(netip.AddrFrom4(a), subnet.Bits()), nil
}

// GuestOptions are the per-guest settings AddGuest does not derive.
type GuestOptions struct {
	// IQN is the guest's InitiatorName.
	IQN string
	// MemoryMiB; default 256.
	MemoryMiB int
	// NoISCSID keeps /init from starting iscsid.
	NoISCSID bool
	// EventPort gives the guest an event port (Config.EventPort).
	EventPort bool
	// Drives are raw image files the guest sees as virtio disks
	// (Config.Drives: /dev/vda, /dev/vdb, ...).
	Drives []string
}

// AddGuest boots guest number len(guests) named name on the bridge.
func (l *Lab) AddGuest(ctx context.Context, name string, g GuestOptions) (*VM, error) {
	l.mu.Lock()
	if l.closed {
		l.mu.Unlock()
		return nil, errors.New("vm: lab is closed")
	}
	i := len(l.guests)
	l.mu.Unlock()
	ip, err := GuestAddr(l.opts.Subnet, i)
	if err != nil {
		return nil, err
	}
	tap := fmt.Sprintf("tdm-t%d", i)
	if err := l.net.AddTap(netlab.Tap{NS: hostNS, Name: tap, Bridge: bridge}); err != nil {
		return nil, fmt.Errorf("vm: %w", err)
	}
	v, err := Start(ctx, Config{
		Name: name, Image: l.opts.Image, Dir: l.opts.Dir, MemoryMiB: g.MemoryMiB, Accel: l.opts.Accel,
		Netns: l.net.Netns(hostNS), Tap: tap, IP: ip, IQN: g.IQN,
		NoISCSID: g.NoISCSID, EventPort: g.EventPort, Drives: g.Drives, Logger: l.log,
	})
	if err != nil {
		return nil, err
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closed {
		v.Close()
		return nil, errors.New("vm: lab closed during boot")
	}
	l.guests = append(l.guests, v)
	return v, nil
}

// Defer registers f to run first when the lab closes (last registered,
// first run): host-side processes such as the target, so that a signal
// tears them down too.
func (l *Lab) Defer(f func()) {
	l.mu.Lock()
	closed := l.closed
	if !closed {
		l.defers = append(l.defers, f)
	}
	l.mu.Unlock()
	if closed {
		f()
	}
}

// Close runs the deferred teardown, kills every guest and deletes the
// namespace with the bridge and taps. Safe to call twice and
// from a signal handler.
func (l *Lab) Close() error {
	l.mu.Lock()
	if l.closed {
		l.mu.Unlock()
		<-l.closeDone
		return nil
	}
	l.closed = true
	defer close(l.closeDone)
	guests, n, defers := l.guests, l.net, l.defers
	stop := l.stopSig
	l.mu.Unlock()
	for i := len(defers) - 1; i >= 0; i-- {
		defers[i]()
	}
	var errs []error
	for _, g := range guests {
		errs = append(errs, g.Close())
	}
	if n != nil {
		errs = append(errs, n.Close())
	}
	if stop != nil {
		stop()
	}
	l.log.Info("lab torn down")
	return errors.Join(errs...)
}
