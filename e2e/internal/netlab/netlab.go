// Package netlab builds the e2e labs' networks from one declaration: named
// network namespaces, veth pairs between them, bridges and tap devices
// inside them, addresses and nftables tables. Build makes all of it (and
// tears down what it made when a step fails); Close removes the
// namespaces, which takes every interface, address and rule with them.
// The root namespace never gets a lab address.
//
// A Node is one namespace and the processes the lab started in it
// (package e2e/internal/proc): a lab's host, whose power cord the lab
// pulls by killing those processes by PID.
//
// Layout: topology.go is the declaration and its pure checks and build
// plan (tested without root); netlab.go carries the plan out with ip(8)
// and nft(8); node.go runs processes and sockets inside a namespace.
package netlab

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"sync"
)

// Lab is a built topology.
type Lab struct {
	topo  Topology
	netns map[string]string // logical name -> namespace name

	mu     sync.Mutex
	nodes  map[string]*Node
	tables map[[2]string]string // (namespace, table) -> family, for SetTable
	closed bool
}

// Build checks t, creates everything it declares and returns the lab. On
// error everything already made is removed again.
func Build(t Topology) (_ *Lab, err error) {
	if err := t.Validate(); err != nil {
		return nil, err
	}
	if os.Geteuid() != 0 {
		return nil, errors.New("netlab: needs root (network namespaces): run as root")
	}
	for _, bin := range t.tools() {
		if _, err := exec.LookPath(bin); err != nil {
			return nil, fmt.Errorf("netlab: needs %s: apt-get install iproute2 nftables", bin)
		}
	}
	var b [3]byte
	_, _ = rand.Read(b[:])
	id := t.Prefix + hex.EncodeToString(b[:])
	l := &Lab{topo: t, netns: map[string]string{}, nodes: map[string]*Node{}, tables: map[[2]string]string{}}
	for _, ns := range t.Namespaces {
		l.netns[ns] = id + "-" + ns
	}
	defer func() {
		if err != nil {
			l.Close()
		}
	}()
	for _, ns := range t.Namespaces {
		if err := run("ip", "netns", "add", l.netns[ns]); err != nil {
			// Not ours: keep Close from deleting a namespace of the same name.
			delete(l.netns, ns)
			return nil, err
		}
	}
	for _, s := range t.plan(l.netns) {
		if err := run(s[0], s[1:]...); err != nil {
			return nil, err
		}
	}
	for _, tb := range t.Tables {
		if err := l.SetTable(tb.NS, tb.Family, tb.Name, tb.Body); err != nil {
			return nil, err
		}
	}
	return l, nil
}

// Netns is the name of the namespace declared as ns ("" if unknown).
func (l *Lab) Netns(ns string) string { return l.netns[ns] }

// Node is the node of namespace ns; it panics on a name the topology does
// not declare (a bug in the lab, not a runtime condition).
func (l *Lab) Node(ns string) *Node {
	l.mu.Lock()
	defer l.mu.Unlock()
	if n := l.nodes[ns]; n != nil {
		return n
	}
	name, ok := l.netns[ns]
	if !ok {
		panic(fmt.Sprintf("netlab: namespace %q is not in the topology", ns))
	}
	n := &Node{Name: ns, Netns: name, procs: map[string]procEntry{}}
	l.nodes[ns] = n
	return n
}

// AddTap creates a tap device after Build (a guest added later), on a
// bridge of its namespace.
func (l *Lab) AddTap(t Tap) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closed {
		return errors.New("netlab: lab is closed")
	}
	topo := l.topo
	topo.Taps = append(append([]Tap(nil), topo.Taps...), t)
	if err := topo.Validate(); err != nil {
		return err
	}
	for _, s := range tapSteps(t, l.netns[t.NS]) {
		if err := run(s[0], s[1:]...); err != nil {
			return err
		}
	}
	l.topo = topo
	return nil
}

// SetTable replaces the nftables table name (family inet, ip, ...) in
// namespace ns with body, the table's contents (chains and rules); an
// empty body only removes it.
func (l *Lab) SetTable(ns, family, name, body string) error {
	netns := l.netns[ns]
	if netns == "" {
		return fmt.Errorf("netlab: nft: namespace %q is not in the topology", ns)
	}
	key := [2]string{netns, name}
	l.mu.Lock()
	old, had := l.tables[key]
	l.mu.Unlock()
	var script strings.Builder
	if had {
		fmt.Fprintf(&script, "delete table %s %s\n", old, name)
	}
	if body != "" {
		fmt.Fprintf(&script, "table %s %s {\n%s}\n", family, name, body)
	}
	if script.Len() == 0 {
		return nil
	}
	cmd := exec.Command("ip", "netns", "exec", netns, "nft", "-f", "-")
	cmd.Stdin = strings.NewReader(script.String())
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("netlab: nft in %s: %v: %s", netns, err, strings.TrimSpace(string(out)))
	}
	l.mu.Lock()
	delete(l.tables, key)
	if body != "" {
		l.tables[key] = family
	}
	l.mu.Unlock()
	return nil
}

// Close stops every process the nodes started (SIGTERM with each one's
// grace, then SIGKILL), kills whatever else still runs in the lab's
// namespaces (children those processes left behind; only this lab's
// processes live there) and deletes the namespaces. Safe to call twice.
func (l *Lab) Close() error {
	l.mu.Lock()
	if l.closed {
		l.mu.Unlock()
		return nil
	}
	l.closed = true
	nodes := make([]*Node, 0, len(l.nodes))
	for _, ns := range l.topo.Namespaces {
		if n := l.nodes[ns]; n != nil {
			nodes = append(nodes, n)
		}
	}
	l.mu.Unlock()
	var errs []error
	for _, n := range nodes {
		errs = append(errs, n.StopAll())
	}
	for _, ns := range l.topo.Namespaces {
		if name, ok := l.netns[ns]; ok {
			killNetns(name)
			errs = append(errs, run("ip", "netns", "del", name))
		}
	}
	return errors.Join(errs...)
}

// run runs a command and returns its output in the error.
func run(name string, args ...string) error {
	out, err := exec.Command(name, args...).CombinedOutput()
	if err != nil {
		return fmt.Errorf("%s %s: %v: %s", name, strings.Join(args, " "), err, strings.TrimSpace(string(out)))
	}
	return nil
}
