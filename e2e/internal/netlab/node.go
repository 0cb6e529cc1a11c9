package netlab

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/tandem-ha/tandem/e2e/internal/proc"
)

// Node is one namespace of a lab and the processes started in it, by
// role ("agent", "target", "qemu-g0").
type Node struct {
	// Name is the logical name, Netns the namespace's.
	Name, Netns string

	mu    sync.Mutex
	procs map[string]procEntry
	order []string
}

type procEntry struct {
	p *proc.Process
	// grace before SIGKILL when the lab closes; 0 kills at once.
	grace time.Duration
}

// Start runs bin in the node's namespace as role, output appended to log.
// grace is how long Close (and StopAll) lets it exit on SIGTERM before
// SIGKILL; 0 kills at once. A role that still runs is refused.
func (n *Node) Start(role string, grace time.Duration, log, bin string, args ...string) (*proc.Process, error) {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.procs[role].p.Running() {
		return nil, fmt.Errorf("%s: %s already running (pid %d): stop it first", n.Name, role, n.procs[role].p.PID())
	}
	p, err := proc.Start(bin, args, proc.Options{Log: log, Netns: n.Netns})
	if err != nil {
		return nil, fmt.Errorf("%s: start %s: %w", n.Name, role, err)
	}
	if _, ok := n.procs[role]; !ok {
		n.order = append(n.order, role)
	}
	n.procs[role] = procEntry{p: p, grace: grace}
	return p, nil
}

// Proc is the last process started as role; nil if none.
func (n *Node) Proc(role string) *proc.Process {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.procs[role].p
}

// Running reports whether role's process is alive.
func (n *Node) Running(role string) bool { return n.Proc(role).Running() }

// Stop sends role's process SIGTERM, then SIGKILL after grace.
func (n *Node) Stop(role string, grace time.Duration) error {
	if p := n.Proc(role); p != nil {
		return p.Stop(grace)
	}
	return nil
}

// Kill kills role's process with SIGKILL.
func (n *Node) Kill(role string) error {
	if p := n.Proc(role); p != nil {
		return p.Kill()
	}
	return nil
}

// StopAll stops every process the node started, in start order, each with
// the grace it was started with.
func (n *Node) StopAll() error {
	n.mu.Lock()
	var es []procEntry
	for _, r := range n.order {
		es = append(es, n.procs[r])
	}
	n.mu.Unlock()
	var errs []error
	for _, e := range es {
		if e.grace > 0 {
			errs = append(errs, e.p.Stop(e.grace))
		} else {
			errs = append(errs, e.p.Kill())
		}
	}
	return errors.Join(errs...)
}

// PIDs lists the processes in the node's namespace: only the lab's, since
// nothing else enters it.
func (n *Node) PIDs() []int { return netnsPIDs(n.Netns) }

// KillAll kills every process in the namespace with SIGKILL (a power cut),
// including those the node's processes started themselves.
func (n *Node) KillAll() { killNetns(n.Netns) }

// Cmdline is the command line of pid (from /proc), arguments joined by
// spaces; "" when it is gone.
func Cmdline(pid int) string {
	b, _ := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/cmdline")
	return strings.ReplaceAll(string(b), "\x00", " ")
}

func netnsPIDs(netns string) []int {
	out, _ := exec.Command("ip", "netns", "pids", netns).Output()
	var pids []int
	for _, f := range strings.Fields(string(out)) {
		if n, err := strconv.Atoi(f); err == nil && n != os.Getpid() {
			pids = append(pids, n)
		}
	}
	return pids
}

func killNetns(netns string) {
	for _, pid := range netnsPIDs(netns) {
		_ = syscall.Kill(pid, syscall.SIGKILL)
	}
}

// IP runs `ip -n NETNS args...`.
func (n *Node) IP(args ...string) error {
	return run("ip", append([]string{"-n", n.Netns}, args...)...)
}

// SetLinks brings the node's devs up or down.
func (n *Node) SetLinks(up bool, devs ...string) error {
	state := "down"
	if up {
		state = "up"
	}
	for _, dev := range devs {
		if err := n.IP("link", "set", "dev", dev, state); err != nil {
			return err
		}
	}
	return nil
}

// HasAddr reports whether dev carries the address addr (no prefix length).
func (n *Node) HasAddr(dev, addr string) bool {
	out, err := exec.Command("ip", "-n", n.Netns, "-o", "addr", "show", "dev", dev).Output()
	return err == nil && strings.Contains(string(out), " "+addr+"/")
}

// Do runs f on a thread switched into the node's namespace; sockets f
// creates belong to the namespace and can be used from any goroutine.
func (n *Node) Do(f func() error) error { return InNetns(n.Netns, f) }

// ListenPacket opens a packet socket in the node's namespace.
func (n *Node) ListenPacket(network, addr string) (net.PacketConn, error) {
	var pc net.PacketConn
	err := n.Do(func() (err error) {
		pc, err = net.ListenPacket(network, addr)
		return err
	})
	return pc, err
}

// DialContext opens a connection from the node's namespace; it has the
// signature of initiator.Options.Dialer.
func (n *Node) DialContext(ctx context.Context, network, addr string) (net.Conn, error) {
	var c net.Conn
	err := n.Do(func() (err error) {
		c, err = (&net.Dialer{}).DialContext(ctx, network, addr)
		return err
	})
	return c, err
}

// InNetns runs f on a thread switched into the named namespace netns.
func InNetns(netns string, f func() error) error {
	runtime.LockOSThread()
	orig, err := os.Open("/proc/thread-self/ns/net")
	if err != nil {
		runtime.UnlockOSThread()
		return err
	}
	defer orig.Close()
	target, err := os.Open(filepath.Join("/run/netns", netns))
	if err != nil {
		runtime.UnlockOSThread()
		return fmt.Errorf("netlab: open namespace %s: %w (was the lab closed?)", netns, err)
	}
	defer target.Close()
	if err := unix.Setns(int(target.Fd()), unix.CLONE_NEWNET); err != nil {
		runtime.UnlockOSThread()
		return fmt.Errorf("netlab: setns %s: %w", netns, err)
	}
	ferr := f()
	if err := unix.Setns(int(orig.Fd()), unix.CLONE_NEWNET); err != nil {
		// The thread is stuck in netns: leave it locked so it dies with the goroutine.
		return fmt.Errorf("netlab: setns back from %s: %w", netns, err)
	}
	runtime.UnlockOSThread()
	return ferr
}
