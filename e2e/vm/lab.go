package vm

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"os/signal"
	"sync"
	"syscall"
)

// DefaultSubnet is the lab's private subnet; the host takes .1 and guest
// i (from 0) takes .11+i.
var DefaultSubnet = netip.MustParsePrefix("10.213.7.0/24")

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

// Lab is a bridge plus the guests on it. Close tears down everything it
// made, also when called from a signal handler.
type Lab struct {
	opts   LabOptions
	log    *slog.Logger
	Bridge *Bridge
	id     string

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

// NewLab creates the bridge (named tdm-br-<random>) with the host at .1.
func NewLab(ctx context.Context, o LabOptions) (*Lab, error) {
	if o.Subnet == (netip.Prefix{}) {
		o.Subnet = DefaultSubnet
	}
	log := o.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	var r [2]byte
	_, _ = rand.Read(r[:])
	id := hex.EncodeToString(r[:])
	l := &Lab{opts: o, log: log, id: id, closeDone: make(chan struct{})}
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
	host, err := HostAddr(o.Subnet)
	if err != nil {
		l.Close()
		return nil, err
	}
	if err := subnetFree(o.Subnet); err != nil {
		l.Close()
		return nil, err
	}
	b, err := CreateBridge(ctx, "tdm-br-"+id, host)
	if err != nil {
		l.Close()
		return nil, err
	}
	l.mu.Lock()
	l.Bridge = b
	l.mu.Unlock()
	log.Info("bridge up", "bridge", b.Name, "host", host.String())
	return l, nil
}

// subnetFree fails when an interface already has an address in subnet: a
// second bridge there would make routing to the guests ambiguous. It is
// usually a bridge left by a run that was killed with SIGKILL.
func subnetFree(subnet netip.Prefix) error {
	ifs, err := net.Interfaces()
	if err != nil {
		return fmt.Errorf("vm: list interfaces: %w", err)
	}
	for _, ifc := range ifs {
		addrs, _ := ifc.Addrs()
		for _, a := range addrs {
			ipn, ok := a.(*net.IPNet)
			if !ok {
				continue
			}
			if ip, ok := netip.AddrFromSlice(ipn.IP); ok && subnet.Contains(ip.Unmap()) {
				return fmt.Errorf("vm: %s already has %s in the lab subnet %s: if a killed run left it, delete it with `ip link del %s`, or pick another subnet",
					ifc.Name, ipn, subnet, ifc.Name)
			}
		}
	}
	return nil
}

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
	v, err := Start(ctx, Config{
		Name: name, Image: l.opts.Image, Dir: l.opts.Dir, MemoryMiB: g.MemoryMiB, Accel: l.opts.Accel,
		Bridge: l.Bridge, Tap: fmt.Sprintf("tdm-t%s-%d", l.id, i), IP: ip, IQN: g.IQN,
		NoISCSID: g.NoISCSID, Logger: l.log,
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

// Close kills every guest and deletes the bridge. Safe to call twice and
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
	guests, b, defers := l.guests, l.Bridge, l.defers
	stop := l.stopSig
	l.mu.Unlock()
	for i := len(defers) - 1; i >= 0; i-- {
		defers[i]()
	}
	var errs []error
	for _, g := range guests {
		errs = append(errs, g.Close())
	}
	if b != nil {
		errs = append(errs, b.Delete(context.Background()))
	}
	if stop != nil {
		stop()
	}
	l.log.Info("lab torn down")
	return errors.Join(errs...)
}
