// Package hanet is a network-namespace lab for tandem-agent: two node
// namespaces joined by a dedicated veth link (the heartbeat cable) and by a
// public bridge that lives in a third, client namespace; a virtual IP on
// the public network; a UDP echo responder in each node namespace that
// answers with the node's name, so the client can tell which node holds the
// VIP. It runs the real tandem-agent binary. Needs root.
//
// Everything it creates is named after a random prefix and torn down by
// Close; it kills only the processes it started, by PID.
package hanet

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/tandem-ha/tandem/ha/control"
)

// Addresses and names of the lab. Interface names are the same inside both
// node namespaces, so one link definition serves both nodes.
const (
	DedicatedIf = "tnd-hb"  // node side of the dedicated veth
	PublicIf    = "tnd-pub" // node side of the public veth
	BridgeIf    = "tnd-br"  // bridge in the client namespace
	EchoPort    = 7777      // UDP echo responder in each node namespace
	Group       = "239.192.76.94"
)

// Nodes are the two node names, Node 0 and 1.
var Nodes = [2]string{"alpha", "beta"}

var (
	dedicatedAddr = [2]string{"10.213.1.1", "10.213.1.2"}
	publicAddr    = [2]string{"10.213.2.1", "10.213.2.2"}
	clientAddr    = "10.213.2.100"
	// VIP is the virtual IP the group carries.
	VIP = netip.MustParseAddr("10.213.2.50")
)

// Timing is written into the agents' config.
type Timing struct{ Keepalive, DeadTime, InitDead time.Duration }

// Options configure a lab.
type Options struct {
	// AgentBin is the tandem-agent binary.
	AgentBin string
	// Dir holds configs, keys, logs and markers.
	Dir string
	// Timing; zero fields take the agent's defaults.
	Timing Timing
	// ScriptMonitor is the monitor interval of the script resource; 0
	// means the resource default.
	ScriptMonitor time.Duration
	// MaxRestarts of the script resource.
	MaxRestarts int
	// LogLevel of the agents (default info).
	LogLevel string
}

// Lab is a running lab.
type Lab struct {
	opt    Options
	prefix string
	ns     [2]string
	client string
	agents [2]*exec.Cmd
	waits  [2]chan struct{}
	echo   [2]net.PacketConn
	probe  net.PacketConn
	mu     sync.Mutex
}

// New builds the namespaces and links and starts the echo responders. On
// error everything already made is torn down.
func New(opt Options) (l *Lab, err error) {
	if os.Geteuid() != 0 {
		return nil, errors.New("hanet: needs root (network namespaces)")
	}
	if _, err := exec.LookPath("ip"); err != nil {
		return nil, errors.New("hanet: needs iproute2 (ip)")
	}
	if opt.LogLevel == "" {
		opt.LogLevel = "info"
	}
	var b [3]byte
	rand.Read(b[:])
	l = &Lab{opt: opt, prefix: "tndh" + hex.EncodeToString(b[:])}
	l.ns = [2]string{l.prefix + "-a", l.prefix + "-b"}
	l.client = l.prefix + "-c"
	defer func() {
		if err != nil {
			l.Close()
			l = nil
		}
	}()
	if err := l.build(); err != nil {
		return nil, err
	}
	if err := l.writeFiles(); err != nil {
		return nil, err
	}
	for i := range 2 {
		name := Nodes[i]
		err := InNetns(l.ns[i], func() error {
			pc, err := net.ListenPacket("udp4", fmt.Sprintf("0.0.0.0:%d", EchoPort))
			l.echo[i] = pc
			return err
		})
		if err != nil {
			return nil, fmt.Errorf("echo responder in %s: %w", l.ns[i], err)
		}
		go ServeEcho(l.echo[i], name)
	}
	err = InNetns(l.client, func() error {
		pc, err := net.ListenPacket("udp4", clientAddr+":0")
		l.probe = pc
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("probe socket: %w", err)
	}
	return l, nil
}

// ServeEcho answers every datagram on pc with name: the service behind a
// lab's VIP, so a probe learns which node holds it.
func ServeEcho(pc net.PacketConn, name string) {
	buf := make([]byte, 64)
	for {
		_, from, err := pc.ReadFrom(buf)
		if err != nil {
			return
		}
		pc.WriteTo([]byte(name), from)
	}
}

func ip(args ...string) error {
	out, err := exec.Command("ip", args...).CombinedOutput()
	if err != nil {
		return fmt.Errorf("ip %s: %v: %s", strings.Join(args, " "), err, strings.TrimSpace(string(out)))
	}
	return nil
}

func (l *Lab) build() error {
	for _, ns := range []string{l.ns[0], l.ns[1], l.client} {
		if err := ip("netns", "add", ns); err != nil {
			return err
		}
		if err := ip("-n", ns, "link", "set", "lo", "up"); err != nil {
			return err
		}
	}
	steps := [][]string{
		{"link", "add", DedicatedIf, "netns", l.ns[0], "type", "veth", "peer", "name", DedicatedIf, "netns", l.ns[1]},
		{"link", "add", PublicIf, "netns", l.ns[0], "type", "veth", "peer", "name", "tnd-pa", "netns", l.client},
		{"link", "add", PublicIf, "netns", l.ns[1], "type", "veth", "peer", "name", "tnd-pb", "netns", l.client},
		{"-n", l.client, "link", "add", BridgeIf, "type", "bridge", "mcast_snooping", "0", "forward_delay", "0"},
		{"-n", l.client, "link", "set", "tnd-pa", "master", BridgeIf, "up"},
		{"-n", l.client, "link", "set", "tnd-pb", "master", BridgeIf, "up"},
		{"-n", l.client, "addr", "add", clientAddr + "/24", "dev", BridgeIf},
		{"-n", l.client, "link", "set", BridgeIf, "up"},
	}
	for i := range 2 {
		steps = append(steps,
			[]string{"-n", l.ns[i], "addr", "add", dedicatedAddr[i] + "/24", "dev", DedicatedIf},
			[]string{"-n", l.ns[i], "addr", "add", publicAddr[i] + "/24", "dev", PublicIf},
			[]string{"-n", l.ns[i], "link", "set", DedicatedIf, "up"},
			[]string{"-n", l.ns[i], "link", "set", PublicIf, "up"})
	}
	for _, s := range steps {
		if err := ip(s...); err != nil {
			return err
		}
	}
	return nil
}

// Close stops the agents it started and removes the namespaces (which
// removes the interfaces and the VIP with them).
func (l *Lab) Close() {
	for i := range 2 {
		// SIGTERM: a killed agent's guard would run stop actions while
		// the lab is being torn down.
		l.Stop(i, 5*time.Second)
		if l.echo[i] != nil {
			l.echo[i].Close()
		}
	}
	if l.probe != nil {
		l.probe.Close()
	}
	for _, ns := range []string{l.ns[0], l.ns[1], l.client} {
		_ = ip("netns", "del", ns)
	}
}

// Path is a file in the lab directory.
func (l *Lab) Path(name string) string { return filepath.Join(l.opt.Dir, name) }

// Socket is node i's control socket.
func (l *Lab) Socket(i int) string { return l.Path(Nodes[i] + ".sock") }

// Marker files the service script obeys, per node.
func (l *Lab) FailMonitorFile(i int) string { return l.Path(Nodes[i] + ".failmon") }
func (l *Lab) FailStopFile(i int) string    { return l.Path(Nodes[i] + ".failstop") }
func (l *Lab) FencedFile(i int) string      { return l.Path(Nodes[i] + ".fenced") }
func (l *Lab) ScriptLog(i int) string       { return l.Path(Nodes[i] + ".svc.log") }
func (l *Lab) AgentLog(i int) string        { return l.Path(Nodes[i] + ".agent.log") }

const script = `#!/bin/sh
# heartbeat-style resource script: svc.sh DIR NODE start|stop|status
dir=$1 node=$2 op=$3
echo "$op" >> "$dir/$node.svc.log"
case "$op" in
start) touch "$dir/$node.svc" ;;
stop)  [ -e "$dir/$node.failstop" ] && { echo "cannot stop"; exit 1; }; rm -f "$dir/$node.svc" ;;
status)
	if [ -e "$dir/$node.svc" ] && [ ! -e "$dir/$node.failmon" ]; then echo "svc is running"; else echo "svc is not running"; fi ;;
esac
exit 0
`

func (l *Lab) writeFiles() error {
	if err := os.WriteFile(l.Path("authkey"), []byte("hanet-lab-key-0123456789abcdef\n"), 0o600); err != nil {
		return err
	}
	if err := os.WriteFile(l.Path("svc.sh"), []byte(script), 0o755); err != nil {
		return err
	}
	for i := range 2 {
		if err := os.WriteFile(l.Path(Nodes[i]+".yaml"), []byte(l.config(i)), 0o644); err != nil {
			return err
		}
	}
	return nil
}

func dur(d time.Duration, def string) string {
	if d == 0 {
		return def
	}
	return d.String()
}

func (l *Lab) config(i int) string {
	t := l.opt.Timing
	mon := ""
	if l.opt.ScriptMonitor > 0 {
		mon = fmt.Sprintf("\n    monitor: {interval: %s, timeout: 2s}", l.opt.ScriptMonitor)
	}
	return fmt.Sprintf(`cluster: hanet
nodes: [%[1]s, %[2]s]
node: %[3]s
key_file: %[4]s
timing: {keepalive: %[5]s, deadtime: %[6]s, initdead: %[7]s}
failback: {auto_failback: false, preferred: %[1]s}
links:
  - name: dedicated
    mode: unicast
    interface: %[8]s
    addresses: {%[1]s: %[9]s, %[2]s: %[10]s}
  - name: public
    mode: multicast
    interface: %[11]s
    group: %[12]s
resources:
  - type: vip
    name: vip
    params: {address: %[13]s/24, interface: %[11]s, arp_count: 3, arp_interval: 100ms}
    monitor: {interval: 1s, timeout: 2s}
    start_timeout: 5s
    stop_timeout: 5s
  - type: script
    name: svc
    params: {path: %[14]s, args: "%[15]s %[3]s"}%[16]s
    start_timeout: 5s
    stop_timeout: 2s
    max_restarts: %[17]d
control_socket: %[18]s
self_fence: {action: command, command: "touch %[19]s"}
log: {level: %[20]s}
`, Nodes[0], Nodes[1], Nodes[i], l.Path("authkey"),
		dur(t.Keepalive, "200ms"), dur(t.DeadTime, "1s"), dur(t.InitDead, "10s"),
		DedicatedIf, dedicatedAddr[0], dedicatedAddr[1], PublicIf, Group, VIP,
		l.Path("svc.sh"), l.opt.Dir, mon, l.opt.MaxRestarts, l.Socket(i), l.FencedFile(i), l.opt.LogLevel)
}

// Start starts node i's agent (appending to its log).
func (l *Lab) Start(i int) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.agents[i] != nil {
		return fmt.Errorf("agent %s already running", Nodes[i])
	}
	logf, err := os.OpenFile(l.AgentLog(i), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return err
	}
	defer logf.Close()
	// ip netns exec execs the agent after setns: the PID is the agent's.
	cmd := exec.Command("ip", "netns", "exec", l.ns[i], l.opt.AgentBin, "--config", l.Path(Nodes[i]+".yaml"))
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL} // never outlive the lab
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("start agent %s: %w", Nodes[i], err)
	}
	done := make(chan struct{})
	go func() { cmd.Wait(); close(done) }()
	l.agents[i], l.waits[i] = cmd, done
	return nil
}

func (l *Lab) signal(i int, sig syscall.Signal, wait time.Duration) bool {
	l.mu.Lock()
	cmd, done := l.agents[i], l.waits[i]
	l.mu.Unlock()
	if cmd == nil {
		return true
	}
	_ = cmd.Process.Signal(sig)
	select {
	case <-done:
	case <-time.After(wait):
		return false
	}
	l.mu.Lock()
	l.agents[i], l.waits[i] = nil, nil
	l.mu.Unlock()
	return true
}

// Kill kills node i's agent with SIGKILL (kill -9): it cannot clean up,
// but the guard process it started releases its resources.
func (l *Lab) Kill(i int) { l.signal(i, syscall.SIGKILL, 5*time.Second) }

// Stop stops node i's agent with SIGTERM (it hands the group over), and
// kills it if it takes longer than wait.
func (l *Lab) Stop(i int, wait time.Duration) {
	if !l.signal(i, syscall.SIGTERM, wait) {
		l.Kill(i)
	}
}

// Running reports whether node i's agent process is alive.
func (l *Lab) Running(i int) bool {
	l.mu.Lock()
	done := l.waits[i]
	l.mu.Unlock()
	if done == nil {
		return false
	}
	select {
	case <-done:
		return false
	default:
		return true
	}
}

// SetLinks brings node i's interfaces down (false) or up (true).
func (l *Lab) SetLinks(i int, up bool) error {
	state := "down"
	if up {
		state = "up"
	}
	for _, dev := range []string{DedicatedIf, PublicIf} {
		if err := ip("-n", l.ns[i], "link", "set", dev, state); err != nil {
			return err
		}
	}
	return nil
}

// PowerOff simulates pulling node i's plug: its links go down and its
// agent dies without a word.
func (l *Lab) PowerOff(i int) error {
	err := l.SetLinks(i, false)
	l.Kill(i)
	return err
}

// PowerOn brings node i's links up and clears what a reboot would clear
// (the VIP, the service's state), then starts its agent.
func (l *Lab) PowerOn(i int) error {
	l.Reset(i)
	if err := l.SetLinks(i, true); err != nil {
		return err
	}
	return l.Start(i)
}

// Reset removes node i's VIP and every marker and state file.
func (l *Lab) Reset(i int) {
	_ = ip("-n", l.ns[i], "addr", "del", VIP.String()+"/24", "dev", PublicIf)
	for _, s := range []string{".svc", ".failmon", ".failstop", ".fenced", ".svc.log"} {
		os.Remove(l.Path(Nodes[i] + s))
	}
}

// CutDedicated takes the dedicated link down on both sides (true) or
// brings it back (false).
func (l *Lab) CutDedicated(cut bool) error {
	state := "up"
	if cut {
		state = "down"
	}
	for i := range 2 {
		if err := ip("-n", l.ns[i], "link", "set", DedicatedIf, state); err != nil {
			return err
		}
	}
	return nil
}

// HasVIP reports whether node i has the VIP configured.
func (l *Lab) HasVIP(i int) bool { return HasAddr(l.ns[i], PublicIf, VIP.String()) }

// HasAddr reports whether dev in namespace ns carries the address ip.
func HasAddr(ns, dev, ip string) bool {
	out, err := exec.Command("ip", "-n", ns, "-o", "addr", "show", "dev", dev).Output()
	return err == nil && strings.Contains(string(out), " "+ip+"/")
}

// Probe asks the VIP who holds it, once: the node name, or an error after
// timeout.
func (l *Lab) Probe(timeout time.Duration) (string, error) {
	return ProbeEcho(l.probe, &net.UDPAddr{IP: VIP.AsSlice(), Port: EchoPort}, timeout)
}

// ProbeEcho sends one datagram from pc to an echo service (ServeEcho) at
// dst and returns its answer, or an error after timeout.
func ProbeEcho(pc net.PacketConn, dst *net.UDPAddr, timeout time.Duration) (string, error) {
	if err := pc.SetReadDeadline(time.Now().Add(timeout)); err != nil {
		return "", err
	}
	if _, err := pc.WriteTo([]byte("who"), dst); err != nil {
		return "", err
	}
	buf := make([]byte, 64)
	n, _, err := pc.ReadFrom(buf)
	if err != nil {
		return "", err
	}
	return string(buf[:n]), nil
}

// WaitVIP probes every interval until node answers on the VIP or ctx
// ends; it returns when the first answer from node came.
func (l *Lab) WaitVIP(ctx context.Context, node string, interval time.Duration) (time.Time, error) {
	last := ""
	for {
		got, err := l.Probe(interval)
		if err == nil && got == node {
			return time.Now(), nil
		}
		if err == nil {
			last = got
			// An answer from the other node: wait out the rest of the interval.
			select {
			case <-ctx.Done():
			case <-time.After(interval):
			}
		}
		if ctx.Err() != nil {
			if last == "" {
				last = "nobody"
			}
			return time.Time{}, fmt.Errorf("VIP not answered by %s (last answer from %s): %w", node, last, ctx.Err())
		}
	}
}

// Client is node i's control client.
func (l *Lab) Client(i int) *control.Client { return control.NewClient(l.Socket(i)) }

// WaitState polls node i's status until its state is want.
func (l *Lab) WaitState(ctx context.Context, i int, want string) error {
	last := ""
	for {
		st, err := l.Client(i).Status(ctx)
		if err == nil {
			last = st.Node.State
			if last == want {
				return nil
			}
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("%s: state %q, want %q: %w", Nodes[i], last, want, ctx.Err())
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// InNetns runs f on a thread switched into network namespace ns; sockets
// f creates belong to ns and can be used from any goroutine afterwards.
func InNetns(ns string, f func() error) error {
	runtime.LockOSThread()
	orig, err := os.Open("/proc/thread-self/ns/net")
	if err != nil {
		runtime.UnlockOSThread()
		return err
	}
	defer orig.Close()
	target, err := os.Open(filepath.Join("/run/netns", ns))
	if err != nil {
		runtime.UnlockOSThread()
		return err
	}
	defer target.Close()
	if err := unix.Setns(int(target.Fd()), unix.CLONE_NEWNET); err != nil {
		runtime.UnlockOSThread()
		return fmt.Errorf("setns %s: %w", ns, err)
	}
	ferr := f()
	if err := unix.Setns(int(orig.Fd()), unix.CLONE_NEWNET); err != nil {
		// The thread is stuck in ns: leave it locked so it dies with the goroutine.
		return fmt.Errorf("setns back: %w", err)
	}
	runtime.UnlockOSThread()
	return ferr
}
