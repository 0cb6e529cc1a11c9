package netlab

import (
	"fmt"
	"net/netip"
	"slices"
)

// maxIfName is the kernel's limit on interface names (IFNAMSIZ-1).
const maxIfName = 15

// Topology declares a lab network. Namespaces are logical names; Build
// names the real ones Prefix+random+"-"+name, so labs run side by side.
type Topology struct {
	// Prefix starts every namespace name (e.g. "tndh"); keep it short.
	Prefix string
	// Namespaces are created in this order; Close stops their nodes'
	// processes in this order too.
	Namespaces []string
	// Bridges live inside a namespace.
	Bridges []Bridge
	// Veths join two namespaces (or a namespace and a bridge in another).
	Veths []Veth
	// Taps are tap devices for qemu guests, on a bridge of their
	// namespace; qemu, run in that namespace, opens them by name.
	Taps []Tap
	// Tables are nftables tables installed at Build.
	Tables []Table
}

// Bridge is a Linux bridge in namespace NS, up, forwarding at once
// (forward_delay 0).
type Bridge struct {
	NS, Name string
	// Addr, when valid, is the bridge's own address (the namespace's
	// address on that segment).
	Addr netip.Prefix
	// Snooping keeps IGMP snooping on; off (the default) floods multicast
	// to every port, which heartbeat multicast over veths needs.
	Snooping bool
}

// End is one side of a veth pair.
type End struct {
	NS, Dev string
	// Addr, when valid, is the interface's address.
	Addr netip.Prefix
	// Bridge, when set, enslaves the end to that bridge of NS.
	Bridge string
}

// Veth is a veth pair; both ends are brought up.
type Veth struct{ A, B End }

// Tap is a persistent tap device in NS, enslaved to Bridge and up.
type Tap struct{ NS, Name, Bridge string }

// Table is an nftables table: Body holds its chains and rules, in nft's
// syntax, without the surrounding "table FAMILY NAME { }".
type Table struct{ NS, Family, Name, Body string }

// Validate checks names and references without touching the system.
func (t Topology) Validate() error {
	if len(t.Namespaces) == 0 {
		return fmt.Errorf("netlab: no namespaces: declare at least one")
	}
	// Prefix + 6 random hex + "-" + name must fit ip netns's file names;
	// keep them readable in `ip netns list`, too.
	for _, ns := range t.Namespaces {
		if ns == "" || len(t.Prefix)+7+len(ns) > 32 {
			return fmt.Errorf("netlab: namespace %q: use 1..%d bytes with prefix %q", ns, 32-7-len(t.Prefix), t.Prefix)
		}
	}
	devs := map[[2]string]bool{}
	dev := func(ns, name string) error {
		if !slices.Contains(t.Namespaces, ns) {
			return fmt.Errorf("netlab: interface %s: namespace %q is not declared", name, ns)
		}
		if name == "" || len(name) > maxIfName {
			return fmt.Errorf("netlab: interface %q in %s: use 1..%d bytes", name, ns, maxIfName)
		}
		k := [2]string{ns, name}
		if devs[k] {
			return fmt.Errorf("netlab: interface %s declared twice in namespace %s", name, ns)
		}
		devs[k] = true
		return nil
	}
	bridges := map[[2]string]bool{}
	for _, b := range t.Bridges {
		if err := dev(b.NS, b.Name); err != nil {
			return err
		}
		bridges[[2]string{b.NS, b.Name}] = true
	}
	port := func(ns, name, br string) error {
		if br != "" && !bridges[[2]string{ns, br}] {
			return fmt.Errorf("netlab: %s in %s: bridge %q is not declared in that namespace", name, ns, br)
		}
		return nil
	}
	for _, v := range t.Veths {
		for _, e := range []End{v.A, v.B} {
			if err := dev(e.NS, e.Dev); err != nil {
				return err
			}
			if err := port(e.NS, e.Dev, e.Bridge); err != nil {
				return err
			}
		}
	}
	for _, tp := range t.Taps {
		if err := dev(tp.NS, tp.Name); err != nil {
			return err
		}
		if tp.Bridge == "" {
			return fmt.Errorf("netlab: tap %s: no bridge: name the bridge of %s it joins", tp.Name, tp.NS)
		}
		if err := port(tp.NS, tp.Name, tp.Bridge); err != nil {
			return err
		}
	}
	for _, tb := range t.Tables {
		if !slices.Contains(t.Namespaces, tb.NS) || tb.Family == "" || tb.Name == "" {
			return fmt.Errorf("netlab: nft table %q: needs a declared namespace (%q), a family and a name", tb.Name, tb.NS)
		}
	}
	return nil
}

// tools are the programs Build runs.
func (t Topology) tools() []string {
	if len(t.Tables) > 0 {
		return []string{"ip", "nft"}
	}
	return []string{"ip"}
}

// plan is the command list that builds t once its namespaces exist
// (netns maps logical names to real ones), in phases: loopbacks up,
// every device created, ports enslaved, addresses added, then links up,
// bridges first, so that no node link carries traffic before the segment
// behind it is complete.
func (t Topology) plan(netns map[string]string) [][]string {
	var s [][]string
	ip := func(ns string, args ...string) { s = append(s, append([]string{"ip", "-n", netns[ns]}, args...)) }
	for _, ns := range t.Namespaces {
		ip(ns, "link", "set", "dev", "lo", "up")
	}
	for _, b := range t.Bridges {
		snoop := "0"
		if b.Snooping {
			snoop = "1"
		}
		ip(b.NS, "link", "add", "name", b.Name, "type", "bridge", "mcast_snooping", snoop, "forward_delay", "0")
	}
	for _, v := range t.Veths {
		s = append(s, []string{"ip", "link", "add", "name", v.A.Dev, "netns", netns[v.A.NS], "type", "veth",
			"peer", "name", v.B.Dev, "netns", netns[v.B.NS]})
	}
	var ends []End
	for _, v := range t.Veths {
		ends = append(ends, v.A, v.B)
	}
	for _, e := range ends {
		if e.Bridge != "" {
			ip(e.NS, "link", "set", "dev", e.Dev, "master", e.Bridge, "up")
		}
	}
	for _, b := range t.Bridges {
		if b.Addr.IsValid() {
			ip(b.NS, "addr", "add", b.Addr.String(), "dev", b.Name)
		}
		ip(b.NS, "link", "set", "dev", b.Name, "up")
	}
	for _, e := range ends {
		if e.Addr.IsValid() {
			ip(e.NS, "addr", "add", e.Addr.String(), "dev", e.Dev)
		}
		if e.Bridge == "" {
			ip(e.NS, "link", "set", "dev", e.Dev, "up")
		}
	}
	for _, tp := range t.Taps {
		s = append(s, tapSteps(tp, netns[tp.NS])...)
	}
	return s
}

func tapSteps(tp Tap, netns string) [][]string {
	return [][]string{
		{"ip", "-n", netns, "tuntap", "add", "dev", tp.Name, "mode", "tap"},
		{"ip", "-n", netns, "link", "set", "dev", tp.Name, "master", tp.Bridge, "up"},
	}
}
