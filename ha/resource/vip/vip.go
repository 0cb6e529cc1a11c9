// Package vip moves a virtual IPv4 address between nodes: Start adds it to an
// interface with netlink and announces it with gratuitous ARP (RFC 5944
// section 4.6), Stop removes it, Monitor checks that it is still there.
package vip

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"sync"
	"time"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"

	"github.com/tandem-ha/tandem/ha/resource"
)

// Type is the Spec.Type of this package.
const Type = "vip"

// Defaults of the announcement, as heartbeat's IPaddr2 (5 pairs, 200 ms apart).
const (
	DefaultARPCount    = 5
	DefaultARPInterval = 200 * time.Millisecond
)

func init() { resource.Register(Type, Params, New) }

// Params is the vip type's parameter table.
var Params = []resource.Param{
	{Key: "address", Required: true, Example: "192.0.2.10/24", Doc: "the VIP in CIDR notation, inside a subnet of interface"},
	{Key: "interface", Required: true, Example: "eth0", Doc: "the interface that carries it (it has an address in the VIP's subnet)"},
	{Key: "arp_count", Example: "5", Doc: "gratuitous ARP request+reply pairs sent on start (default 5; 0 sends none)"},
	{Key: "arp_interval", Example: "200ms", Doc: "time between two pairs (default 200ms)"},
}

// Config describes one VIP.
type Config struct {
	// Address is the VIP with the prefix length it is added with.
	Address netip.Prefix
	// Interface carries the VIP; it must already have an address whose subnet
	// contains Address (the VIP rides on an existing subnet).
	Interface string
	// ARPCount is how many request+reply pairs to send; 0 sends none.
	ARPCount int
	// ARPInterval separates two pairs.
	ARPInterval time.Duration
	// NetNS, when > 0, is the network namespace to work in instead of the
	// current one (tests and network labs).
	NetNS netns.NsHandle
}

// VIP is a resource.Resource and resource.Checker.
type VIP struct {
	name string
	cfg  Config
	log  *slog.Logger

	mu      sync.Mutex
	stopARP context.CancelFunc
	arpDone chan struct{}
}

// New builds a VIP from spec params address, interface, arp_count and
// arp_interval.
func New(spec resource.Spec, log *slog.Logger) (resource.Resource, error) {
	p := resource.NewParams(spec)
	addr := p.Required("address")
	var cfg Config
	cfg.Interface = p.Required("interface")
	cfg.ARPCount = p.Int("arp_count", DefaultARPCount)
	cfg.ARPInterval = p.Duration("arp_interval", DefaultARPInterval)
	if addr != "" {
		pfx, err := netip.ParsePrefix(addr)
		switch {
		case err != nil:
			p.Fail("address", fmt.Sprintf("%q is not an address in CIDR notation", addr), "write it with its prefix length, e.g. 192.0.2.10/24")
		case !pfx.Addr().Is4():
			p.Fail("address", fmt.Sprintf("%q is not IPv4", addr), "use an IPv4 address; IPv6 VIPs are not supported yet")
		case pfx.Bits() == 0:
			p.Fail("address", fmt.Sprintf("%q has prefix length 0", addr), "use the prefix length of the interface's subnet, e.g. /24")
		default:
			cfg.Address = pfx
		}
	}
	if len(cfg.Interface) >= unix.IFNAMSIZ {
		p.Fail("interface", fmt.Sprintf("%q is longer than %d bytes", cfg.Interface, unix.IFNAMSIZ-1), "use the name shown by ip link")
	}
	if err := p.Err(); err != nil {
		return nil, err
	}
	return NewVIP(spec.Name, cfg, log), nil
}

// NewVIP returns a VIP for cfg; it does not touch the host.
func NewVIP(name string, cfg Config, log *slog.Logger) *VIP {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &VIP{name: name, cfg: cfg, log: log}
}

// Name implements resource.Resource.
func (v *VIP) Name() string { return v.name }

// handle opens a route netlink socket only: with no family named,
// netlink opens every family it knows, and fails on a kernel without
// xfrm_user or nfnetlink, which a VIP never uses.
func (v *VIP) handle() (*netlink.Handle, error) {
	if v.cfg.NetNS > 0 {
		return netlink.NewHandleAt(v.cfg.NetNS, unix.NETLINK_ROUTE)
	}
	return netlink.NewHandle(unix.NETLINK_ROUTE)
}

// withLink runs fn with a route netlink handle, the interface and its
// IPv4 addresses.
func (v *VIP) withLink(fn func(h *netlink.Handle, l netlink.Link, addrs []netlink.Addr) error) error {
	h, err := v.handle()
	if err != nil {
		return fmt.Errorf("vip %s: open netlink: %w", v.name, err)
	}
	defer h.Close()
	l, addrs, err := v.link(h)
	if err != nil {
		return err
	}
	return fn(h, l, addrs)
}

func (v *VIP) ipnet() *net.IPNet {
	return &net.IPNet{IP: v.cfg.Address.Addr().AsSlice(), Mask: net.CIDRMask(v.cfg.Address.Bits(), 32)}
}

// link returns the interface and its IPv4 addresses.
func (v *VIP) link(h *netlink.Handle) (netlink.Link, []netlink.Addr, error) {
	l, err := h.LinkByName(v.cfg.Interface)
	if err != nil {
		return nil, nil, fmt.Errorf("vip %s: interface %q: %w (fix params.interface or create the interface)", v.name, v.cfg.Interface, err)
	}
	addrs, err := h.AddrList(l, netlink.FAMILY_V4)
	if err != nil {
		return nil, nil, fmt.Errorf("vip %s: list addresses of %q: %w", v.name, v.cfg.Interface, err)
	}
	return l, addrs, nil
}

// checkSubnet requires an address other than the VIP whose subnet contains
// the VIP, so that neighbours on that subnet can reach it.
func (v *VIP) checkSubnet(addrs []netlink.Addr) error {
	vip := v.cfg.Address.Addr()
	var have []string
	for _, a := range addrs {
		ip, ok := netip.AddrFromSlice(a.IP.To4())
		if !ok || ip == vip {
			continue
		}
		ones, _ := a.Mask.Size()
		have = append(have, fmt.Sprintf("%s/%d", ip, ones))
		if a.IPNet.Contains(vip.AsSlice()) {
			return nil
		}
	}
	if len(have) == 0 {
		have = []string{"none"}
	}
	return &resource.SpecError{Name: v.name, Type: Type, Key: "params.address",
		Problem: fmt.Sprintf("%s is in no subnet of interface %s (its IPv4 addresses: %v)", v.cfg.Address, v.cfg.Interface, have),
		Fix:     "pick a free address in one of those subnets, or set params.interface to the interface of the VIP's subnet"}
}

// Check implements resource.Checker: the interface exists and one of its
// subnets holds the VIP.
func (v *VIP) Check(ctx context.Context) error {
	return v.withLink(func(_ *netlink.Handle, _ netlink.Link, addrs []netlink.Addr) error {
		return v.checkSubnet(addrs)
	})
}

func hasAddr(addrs []netlink.Addr, vip netip.Addr) bool {
	for _, a := range addrs {
		if ip, ok := netip.AddrFromSlice(a.IP.To4()); ok && ip == vip {
			return true
		}
	}
	return false
}

// Start adds the VIP (a no-op when present), sends the first gratuitous ARP
// pair and leaves the remaining ones to a background goroutine, so failover
// is not delayed by the announcement.
func (v *VIP) Start(ctx context.Context) error {
	return v.withLink(func(h *netlink.Handle, link netlink.Link, addrs []netlink.Addr) error {
		return v.start(h, link, addrs)
	})
}

func (v *VIP) start(h *netlink.Handle, link netlink.Link, addrs []netlink.Addr) error {
	if err := v.checkSubnet(addrs); err != nil {
		return err
	}
	if link.Attrs().Flags&net.FlagUp == 0 {
		return fmt.Errorf("vip %s: interface %s is down (bring it up: ip link set %s up)", v.name, v.cfg.Interface, v.cfg.Interface)
	}
	if !hasAddr(addrs, v.cfg.Address.Addr()) {
		if err := h.AddrAdd(link, &netlink.Addr{IPNet: v.ipnet()}); err != nil && !errors.Is(err, unix.EEXIST) {
			return fmt.Errorf("vip %s: add %s to %s: %w", v.name, v.cfg.Address, v.cfg.Interface, err)
		}
		v.log.Info("vip added", "address", v.cfg.Address.String(), "interface", v.cfg.Interface)
	}
	v.startAnnounce(link)
	return nil
}

// Announce implements resource.Announcer: the gratuitous ARP of Start again
// (arp_count pairs, arp_interval apart, the first at once), when the VIP
// is on the interface; nothing when it is not.
func (v *VIP) Announce(ctx context.Context) error {
	return v.withLink(func(_ *netlink.Handle, link netlink.Link, addrs []netlink.Addr) error {
		if !hasAddr(addrs, v.cfg.Address.Addr()) {
			return nil
		}
		v.log.Info("vip re-announced", "address", v.cfg.Address.String(), "interface", v.cfg.Interface)
		v.startAnnounce(link)
		return nil
	})
}

func (v *VIP) startAnnounce(link netlink.Link) {
	v.stopAnnounce()
	if v.cfg.ARPCount == 0 {
		return
	}
	mac := link.Attrs().HardwareAddr
	if len(mac) != 6 {
		v.log.Warn("vip: interface has no Ethernet address, not sending gratuitous ARP", "interface", v.cfg.Interface)
		return
	}
	a, err := newAnnouncer(v.cfg.NetNS, link.Attrs().Index, mac, v.cfg.Address.Addr())
	if err != nil {
		// The address is up; neighbours will learn it on their next ARP
		// refresh. Failing Start for this would only cause a failover loop.
		v.log.Warn("vip: cannot send gratuitous ARP", "err", err)
		return
	}
	if err := a.sendPair(); err != nil {
		v.log.Warn("vip: gratuitous ARP failed", "err", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	v.mu.Lock()
	v.stopARP, v.arpDone = cancel, done
	v.mu.Unlock()
	go func() {
		defer close(done)
		defer a.close()
		t := time.NewTicker(v.cfg.ARPInterval)
		defer t.Stop()
		for i := 1; i < v.cfg.ARPCount; i++ {
			select {
			case <-ctx.Done():
				return
			case <-t.C:
			}
			if err := a.sendPair(); err != nil {
				v.log.Warn("vip: gratuitous ARP failed", "err", err)
			}
		}
	}()
}

// stopAnnounce cancels a running announcement and waits for it to end.
func (v *VIP) stopAnnounce() {
	v.mu.Lock()
	cancel, done := v.stopARP, v.arpDone
	v.stopARP, v.arpDone = nil, nil
	v.mu.Unlock()
	if cancel != nil {
		cancel()
		<-done
	}
}

// Stop removes the VIP; an absent address or interface is success.
func (v *VIP) Stop(ctx context.Context) error {
	v.stopAnnounce()
	h, err := v.handle()
	if err != nil {
		return fmt.Errorf("vip %s: open netlink: %w", v.name, err)
	}
	defer h.Close()
	link, err := h.LinkByName(v.cfg.Interface)
	if err != nil {
		var nf netlink.LinkNotFoundError
		if errors.As(err, &nf) {
			return nil
		}
		return fmt.Errorf("vip %s: interface %q: %w", v.name, v.cfg.Interface, err)
	}
	err = h.AddrDel(link, &netlink.Addr{IPNet: v.ipnet()})
	if err != nil && !errors.Is(err, unix.EADDRNOTAVAIL) && !errors.Is(err, unix.ENOENT) && !errors.Is(err, unix.ESRCH) {
		return fmt.Errorf("vip %s: remove %s from %s: %w", v.name, v.cfg.Address, v.cfg.Interface, err)
	}
	if err == nil {
		v.log.Info("vip removed", "address", v.cfg.Address.String(), "interface", v.cfg.Interface)
	}
	return nil
}

// Monitor reports running while the VIP is on the interface, stopped when it
// is not, and failed when the interface is gone.
func (v *VIP) Monitor(ctx context.Context) (resource.Status, error) {
	st := resource.StatusFailed
	err := v.withLink(func(_ *netlink.Handle, _ netlink.Link, addrs []netlink.Addr) error {
		st = resource.StatusStopped
		if hasAddr(addrs, v.cfg.Address.Addr()) {
			st = resource.StatusRunning
		}
		return nil
	})
	return st, err
}
