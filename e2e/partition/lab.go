// Package partition is the partition test matrix of issue 6: a network
// namespace lab with a storage namespace running tandem-target (a data LUN
// and a small arbiter LUN), two node namespaces each running tandem-agent,
// a dedicated veth link between the nodes, a public bridge (nodes and a
// client) and a separate storage bridge (nodes and storage), so that both
// links between the nodes can be cut while both still reach the storage.
// The group's application is e2e/cmd/blockwriter, started through a
// heartbeat-style script resource; it writes stamped blocks over its own
// native iSCSI session and logs every acknowledged one.
//
// The test (matrix_test.go) injects one fault per row and checks, from the
// writers' ack logs and a read-back of the data LUN: at most one node's
// writes were accepted after the fence point, every acknowledged block is
// on the disk, and the service came back (or stayed put) in time.
//
// Everything the lab creates carries a random prefix and is torn down by
// Close; it kills only processes it started (by PID) or that live in its
// own namespaces.
package partition

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/tandem-ha/tandem/e2e/hanet"
	"github.com/tandem-ha/tandem/ha/control"
	"github.com/tandem-ha/tandem/ha/fence"
	"github.com/tandem-ha/tandem/target/config"
)

// Interface names inside the node namespaces (the same in both).
const (
	DedicatedIf = "tnp-hb"
	PublicIf    = "tnp-pub"
	StorageIf   = "tnp-sto"
	EchoPort    = 7777 // UDP responder answering the node's name
	HBPort      = 7694 // the agents' heartbeat port (config.DefaultPort)
	Group       = "239.192.77.17"
	IQN         = "iqn.2026-11.io.tandem:partition"
	DataLUN     = 0
	ArbiterLUN  = 1
	Cluster     = "partlab"
	// RegionBlocks is the size of one writer generation's LBA region.
	RegionBlocks = 16384
)

// Nodes are the two node names.
var Nodes = [2]string{"alpha", "beta"}

var (
	dedicatedAddr = [2]string{"10.217.1.1", "10.217.1.2"}
	publicAddr    = [2]string{"10.217.2.1", "10.217.2.2"}
	storageAddr   = [2]string{"10.217.3.1", "10.217.3.2"}
	clientAddr    = "10.217.2.100"
	targetAddr    = "10.217.3.100"
	// VIP is the service address on the public network.
	VIP = "10.217.2.50"
	// Portal is the target's portal on the storage network.
	Portal = targetAddr + ":3260"
)

// DefaultDiskHBConfig turns on the agent's disk heartbeat on the arbiter
// LUN over a native session (ha/config DiskHeartbeat).
const DefaultDiskHBConfig = `disk_heartbeat: {portal: "%s", target: %s, lun: %d}`

// Timing is written into the agents' config.
type Timing struct{ Keepalive, DeadTime, InitDead, Monitor time.Duration }

// Options configure a lab.
type Options struct {
	AgentBin, TargetBin, WriterBin string
	// Dir holds configs, logs, ack logs and the LUN files.
	Dir    string
	Timing Timing
	// Fence puts the fence resource (scsi-pr, native session) before the
	// writer; DiskHB adds the arbiter LUN as a heartbeat medium (when the
	// agent's config knows it: DiskHBConfig).
	Fence, DiskHB bool
	// DiskHBConfig is the YAML fragment (top level) that turns on the
	// disk heartbeat, with verbs for portal, target and arbiter LUN;
	// default DefaultDiskHBConfig.
	DiskHBConfig string
	// WriterAPTPL is the writer's APTPL bit; it must match the fence
	// resource's, since APTPL is one state per LU.
	WriterAPTPL bool
	// Key derives a node's fencing key; default fence.Key.
	Key func(cluster, node string) uint64
	// LogLevel of the agents (default info).
	LogLevel string
}

// Lab is a running lab.
type Lab struct {
	opt     Options
	prefix  string
	ns      [2]string
	client  string
	storage string
	mu      sync.Mutex
	agents  [2]*proc
	target  *proc
	echo    [2]net.PacketConn
	probe   net.PacketConn
	nftOn   map[string]bool
}

type proc struct {
	cmd  *exec.Cmd
	done chan struct{}
}

func (p *proc) running() bool {
	if p == nil {
		return false
	}
	select {
	case <-p.done:
		return false
	default:
		return true
	}
}

// kill sends sig to the process (its own PID) and waits up to wait.
func (p *proc) kill(sig syscall.Signal, wait time.Duration) bool {
	if !p.running() {
		return true
	}
	_ = p.cmd.Process.Signal(sig)
	select {
	case <-p.done:
		return true
	case <-time.After(wait):
		return false
	}
}

func startProc(logPath string, name string, args ...string) (*proc, error) {
	logf, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return nil, err
	}
	defer logf.Close()
	cmd := exec.Command(name, args...)
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	p := &proc{cmd: cmd, done: make(chan struct{})}
	go func() { cmd.Wait(); close(p.done) }()
	return p, nil
}

// New builds the namespaces, links, LUN files and configs. On error
// everything already made is torn down.
func New(opt Options) (l *Lab, err error) {
	if os.Geteuid() != 0 {
		return nil, errors.New("partition: needs root (network namespaces)")
	}
	for _, bin := range []string{"ip", "nft"} {
		if _, err := exec.LookPath(bin); err != nil {
			return nil, fmt.Errorf("partition: needs %s (apt-get install iproute2 nftables)", bin)
		}
	}
	if opt.LogLevel == "" {
		opt.LogLevel = "info"
	}
	if opt.DiskHBConfig == "" {
		opt.DiskHBConfig = DefaultDiskHBConfig
	}
	if opt.Key == nil {
		opt.Key = fence.Key
	}
	var b [3]byte
	rand.Read(b[:])
	l = &Lab{opt: opt, prefix: "tndp" + hex.EncodeToString(b[:]), nftOn: map[string]bool{}}
	l.ns = [2]string{l.prefix + "-a", l.prefix + "-b"}
	l.client, l.storage = l.prefix+"-c", l.prefix+"-s"
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
		err := hanet.InNetns(l.ns[i], func() error {
			pc, err := net.ListenPacket("udp4", fmt.Sprintf("0.0.0.0:%d", EchoPort))
			l.echo[i] = pc
			return err
		})
		if err != nil {
			return nil, fmt.Errorf("echo responder in %s: %w", l.ns[i], err)
		}
		go hanet.ServeEcho(l.echo[i], name)
	}
	err = hanet.InNetns(l.client, func() error {
		pc, err := net.ListenPacket("udp4", clientAddr+":0")
		l.probe = pc
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("probe socket: %w", err)
	}
	return l, nil
}

func run(name string, args ...string) error {
	out, err := exec.Command(name, args...).CombinedOutput()
	if err != nil {
		return fmt.Errorf("%s %s: %v: %s", name, strings.Join(args, " "), err, strings.TrimSpace(string(out)))
	}
	return nil
}

func ip(args ...string) error { return run("ip", args...) }

func (l *Lab) build() error {
	for _, ns := range []string{l.ns[0], l.ns[1], l.client, l.storage} {
		if err := ip("netns", "add", ns); err != nil {
			return err
		}
		if err := ip("-n", ns, "link", "set", "lo", "up"); err != nil {
			return err
		}
	}
	steps := [][]string{
		{"link", "add", DedicatedIf, "netns", l.ns[0], "type", "veth", "peer", "name", DedicatedIf, "netns", l.ns[1]},
		{"-n", l.client, "link", "add", "tnp-br", "type", "bridge", "mcast_snooping", "0", "forward_delay", "0"},
		{"-n", l.storage, "link", "add", "tnp-sbr", "type", "bridge", "forward_delay", "0"},
	}
	for i, side := range []string{"a", "b"} {
		steps = append(steps,
			[]string{"link", "add", PublicIf, "netns", l.ns[i], "type", "veth", "peer", "name", "tnp-p" + side, "netns", l.client},
			[]string{"link", "add", StorageIf, "netns", l.ns[i], "type", "veth", "peer", "name", "tnp-s" + side, "netns", l.storage},
			[]string{"-n", l.client, "link", "set", "tnp-p" + side, "master", "tnp-br", "up"},
			[]string{"-n", l.storage, "link", "set", "tnp-s" + side, "master", "tnp-sbr", "up"},
			[]string{"-n", l.ns[i], "addr", "add", dedicatedAddr[i] + "/24", "dev", DedicatedIf},
			[]string{"-n", l.ns[i], "addr", "add", publicAddr[i] + "/24", "dev", PublicIf},
			[]string{"-n", l.ns[i], "addr", "add", storageAddr[i] + "/24", "dev", StorageIf},
		)
	}
	steps = append(steps,
		[]string{"-n", l.client, "addr", "add", clientAddr + "/24", "dev", "tnp-br"},
		[]string{"-n", l.client, "link", "set", "tnp-br", "up"},
		[]string{"-n", l.storage, "addr", "add", targetAddr + "/24", "dev", "tnp-sbr"},
		[]string{"-n", l.storage, "link", "set", "tnp-sbr", "up"})
	for _, s := range steps {
		if err := ip(s...); err != nil {
			return err
		}
	}
	for i := range 2 {
		if err := l.setLinks(i, true, DedicatedIf, PublicIf, StorageIf); err != nil {
			return err
		}
	}
	return nil
}

// Close stops the agents and the target and removes the namespaces.
func (l *Lab) Close() {
	for i := range 2 {
		l.StopAgent(i)
		l.killNetns(l.ns[i]) // writers, guards
		if l.echo[i] != nil {
			l.echo[i].Close()
		}
	}
	if l.target != nil {
		l.target.kill(syscall.SIGKILL, 5*time.Second)
	}
	l.killNetns(l.storage)
	if l.probe != nil {
		l.probe.Close()
	}
	for _, ns := range []string{l.ns[0], l.ns[1], l.client, l.storage} {
		_ = ip("netns", "del", ns)
	}
}

// Path is a file in the lab directory.
func (l *Lab) Path(name string) string { return filepath.Join(l.opt.Dir, name) }

// Files of node i.
func (l *Lab) Socket(i int) string     { return l.Path(Nodes[i] + ".sock") }
func (l *Lab) AgentLog(i int) string   { return l.Path(Nodes[i] + ".agent.log") }
func (l *Lab) AckLog(i int) string     { return l.Path(Nodes[i] + ".acks") }
func (l *Lab) WriterLog(i int) string  { return l.Path(Nodes[i] + ".writer.out") }
func (l *Lab) FencedFile(i int) string { return l.Path(Nodes[i] + ".fenced") }
func (l *Lab) TargetLog() string       { return l.Path("target.log") }

// Key is node i's fencing key.
func (l *Lab) Key(i int) uint64 { return l.opt.Key(Cluster, Nodes[i]) }

// writerScript is the heartbeat-style wrapper the script resource runs:
// writer.sh DIR NODE KEY start|stop|status. start launches blockwriter in
// its own session and returns once it registered and tried a write; stop
// sends SIGTERM, then SIGKILL; status judges the PID.
const writerScript = `#!/bin/sh
dir=$1 node=$2 key=$3 op=$4
pidf="$dir/$node.writer.pid"
ready="$dir/$node.writer.ready"
alive() { [ -f "$pidf" ] && kill -0 "$(cat "$pidf")" 2>/dev/null; }
case "$op" in
start)
	alive && exit 0
	rm -f "$ready"
	setsid %[1]s --portal %[2]s --target %[3]s --lun %[4]d --node "$node" --key "$key" \
		--aptpl=%[5]t --gen-file "$dir/generation" --region-blocks %[6]d \
		--ack-log "$dir/$node.acks" --ready-file "$ready" \
		>>"$dir/$node.writer.out" 2>&1 </dev/null &
	echo $! >"$pidf"
	i=0
	while [ ! -e "$ready" ]; do
		alive || { echo "blockwriter exited: see $dir/$node.writer.out"; exit 1; }
		i=$((i+1)); [ $i -gt 100 ] && { echo "blockwriter not ready after 5s"; exit 1; }
		sleep 0.05
	done ;;
stop)
	if alive; then
		pid=$(cat "$pidf"); kill -TERM "$pid"
		i=0; while kill -0 "$pid" 2>/dev/null && [ $i -lt 40 ]; do sleep 0.05; i=$((i+1)); done
		kill -KILL "$pid" 2>/dev/null
	fi
	rm -f "$pidf" ;;
status)
	if alive; then echo "blockwriter is running"; else echo "blockwriter is not running"; fi ;;
esac
exit 0
`

func (l *Lab) writeFiles() error {
	if err := os.WriteFile(l.Path("authkey"), []byte("partition-lab-key-0123456789abcdef\n"), 0o600); err != nil {
		return err
	}
	sc := fmt.Sprintf(writerScript, l.opt.WriterBin, Portal, IQN, DataLUN, l.opt.WriterAPTPL, RegionBlocks)
	if err := os.WriteFile(l.Path("writer.sh"), []byte(sc), 0o755); err != nil {
		return err
	}
	for i := range 2 {
		if err := os.WriteFile(l.Path(Nodes[i]+".yaml"), []byte(l.agentConfig(i)), 0o644); err != nil {
			return err
		}
	}
	return l.writeTargetConfig()
}

func (l *Lab) writeTargetConfig() error {
	cfg := config.DefaultConfig()
	cfg.Listen = []string{Portal}
	cfg.StateDir = l.Path("target-state")
	cfg.AdminSocket = l.Path("target.sock")
	cfg.Targets = []config.Target{{Name: IQN, LUNs: []config.LUN{
		{ID: DataLUN, Path: l.Path("data.img"), Size: 1 << 30, BlockSize: 512, WriteCache: true, Serial: config.DefaultSerial(IQN, DataLUN)},
		{ID: ArbiterLUN, Path: l.Path("arbiter.img"), Size: 1 << 20, BlockSize: 512, WriteCache: true, Serial: config.DefaultSerial(IQN, ArbiterLUN)},
	}}}
	if err := cfg.Validate(); err != nil {
		return fmt.Errorf("target config: %w", err)
	}
	b, err := cfg.Marshal()
	if err != nil {
		return err
	}
	return os.WriteFile(l.Path("target.yaml"), b, 0o644)
}

func (l *Lab) agentConfig(i int) string {
	t := l.opt.Timing
	mon := t.Monitor
	if mon == 0 {
		mon = 250 * time.Millisecond
	}
	var b strings.Builder
	fmt.Fprintf(&b, `cluster: %[1]s
nodes: [%[2]s, %[3]s]
node: %[4]s
key_file: %[5]s
timing: {keepalive: %[6]s, deadtime: %[7]s, initdead: %[8]s}
failback: {auto_failback: false, preferred: %[2]s}
links:
  - name: dedicated
    mode: unicast
    interface: %[9]s
    addresses: {%[2]s: %[10]s, %[3]s: %[11]s}
  - name: public
    mode: multicast
    interface: %[12]s
    group: %[13]s
control_socket: %[14]s
self_fence: {action: command, command: "touch %[15]s"}
log: {level: %[16]s}
`, Cluster, Nodes[0], Nodes[1], Nodes[i], l.Path("authkey"), t.Keepalive, t.DeadTime, t.InitDead,
		DedicatedIf, dedicatedAddr[0], dedicatedAddr[1], PublicIf, Group, l.Socket(i), l.FencedFile(i), l.opt.LogLevel)
	if l.opt.DiskHB {
		fmt.Fprintf(&b, l.opt.DiskHBConfig+"\n", Portal, IQN, ArbiterLUN)
	}
	b.WriteString("resources:\n")
	if l.opt.Fence {
		fmt.Fprintf(&b, `  - type: fence
    name: fence
    params: {type: scsi-pr, portal: "%s", target: %s, luns: "%d", cluster: %s, node: %s}
    monitor: {interval: %s, timeout: 2s}
    start_timeout: 5s
    stop_timeout: 5s
`, Portal, IQN, DataLUN, Cluster, Nodes[i], mon)
	}
	fmt.Fprintf(&b, `  - type: script
    name: writer
    params: {path: %s, args: "%s %s %#x"}
    monitor: {interval: %s, timeout: 2s}
    start_timeout: 8s
    stop_timeout: 5s
  - type: vip
    name: vip
    params: {address: %s/24, interface: %s, arp_count: 3, arp_interval: 100ms}
    monitor: {interval: 1s, timeout: 2s}
    start_timeout: 5s
    stop_timeout: 5s
`, l.Path("writer.sh"), l.opt.Dir, Nodes[i], l.Key(i), mon, VIP, PublicIf)
	return b.String()
}

// StartTarget starts tandem-target in the storage namespace and waits
// until its portal accepts connections.
func (l *Lab) StartTarget() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.target.running() {
		return errors.New("target already running")
	}
	p, err := startProc(l.TargetLog(), "ip", "netns", "exec", l.storage, l.opt.TargetBin, "--config", l.Path("target.yaml"))
	if err != nil {
		return fmt.Errorf("start tandem-target: %w", err)
	}
	l.target = p
	deadline := time.Now().Add(15 * time.Second)
	for time.Now().Before(deadline) {
		if !p.running() {
			return fmt.Errorf("tandem-target exited at start: see %s", l.TargetLog())
		}
		var c net.Conn
		_ = hanet.InNetns(l.storage, func() error {
			var err error
			c, err = net.DialTimeout("tcp", Portal, 200*time.Millisecond)
			return err
		})
		if c != nil {
			c.Close()
			return nil
		}
		time.Sleep(50 * time.Millisecond)
	}
	return fmt.Errorf("tandem-target did not listen on %s within 15s: see %s", Portal, l.TargetLog())
}

// KillTarget kills tandem-target with SIGKILL (a crash: nothing flushed
// beyond what it already acknowledged).
func (l *Lab) KillTarget() {
	l.mu.Lock()
	p := l.target
	l.mu.Unlock()
	p.kill(syscall.SIGKILL, 5*time.Second)
}

// StartAgent starts node i's agent (appending to its log).
func (l *Lab) StartAgent(i int) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.agents[i].running() {
		return fmt.Errorf("agent %s already running", Nodes[i])
	}
	p, err := startProc(l.AgentLog(i), "ip", "netns", "exec", l.ns[i], l.opt.AgentBin, "--config", l.Path(Nodes[i]+".yaml"))
	if err != nil {
		return fmt.Errorf("start agent %s: %w", Nodes[i], err)
	}
	l.agents[i] = p
	return nil
}

// StopAgent stops node i's agent with SIGTERM (it releases the group),
// then SIGKILL after 8 s.
func (l *Lab) StopAgent(i int) {
	l.mu.Lock()
	p := l.agents[i]
	l.mu.Unlock()
	if !p.kill(syscall.SIGTERM, 8*time.Second) {
		p.kill(syscall.SIGKILL, 5*time.Second)
	}
}

// AgentRunning reports whether node i's agent process is alive.
func (l *Lab) AgentRunning(i int) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.agents[i].running()
}

// netnsPIDs lists the processes in namespace ns: only this lab's.
func netnsPIDs(ns string) []int {
	out, _ := exec.Command("ip", "netns", "pids", ns).Output()
	var pids []int
	for _, f := range strings.Fields(string(out)) {
		if n, err := strconv.Atoi(f); err == nil && n != os.Getpid() {
			pids = append(pids, n)
		}
	}
	return pids
}

func (l *Lab) killNetns(ns string) {
	for _, pid := range netnsPIDs(ns) {
		_ = syscall.Kill(pid, syscall.SIGKILL)
	}
}

// cmdline of pid, NULs as spaces.
func cmdline(pid int) string {
	b, _ := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid))
	return strings.ReplaceAll(string(b), "\x00", " ")
}

// KillAgent kills node i's agent and its guard with SIGKILL, leaving the
// application running: the worst case of a daemon crash, where nothing on
// the node stops the writer and only fencing can.
func (l *Lab) KillAgent(i int) {
	l.mu.Lock()
	p := l.agents[i]
	l.mu.Unlock()
	for _, pid := range netnsPIDs(l.ns[i]) {
		if c := cmdline(pid); strings.Contains(c, l.opt.AgentBin) && strings.Contains(c, " guard ") {
			_ = syscall.Kill(pid, syscall.SIGKILL)
		}
	}
	p.kill(syscall.SIGKILL, 5*time.Second)
}

// WriterPID is the PID of node i's blockwriter, 0 if none runs.
func (l *Lab) WriterPID(i int) int {
	for _, pid := range netnsPIDs(l.ns[i]) {
		if strings.Contains(cmdline(pid), l.opt.WriterBin) {
			return pid
		}
	}
	return 0
}

func (l *Lab) setLinks(i int, up bool, devs ...string) error {
	state := "down"
	if up {
		state = "up"
	}
	for _, dev := range devs {
		if err := ip("-n", l.ns[i], "link", "set", dev, state); err != nil {
			return err
		}
	}
	return nil
}

// CutDedicated takes the dedicated link down on both sides (or up).
func (l *Lab) CutDedicated(cut bool) error {
	for i := range 2 {
		if err := l.setLinks(i, !cut, DedicatedIf); err != nil {
			return err
		}
	}
	return nil
}

// CutPublic takes node i's public link down (or up).
func (l *Lab) CutPublic(i int, cut bool) error { return l.setLinks(i, !cut, PublicIf) }

// CutStorage takes node i's storage link down (or up).
func (l *Lab) CutStorage(i int, cut bool) error { return l.setLinks(i, !cut, StorageIf) }

// nft runs an nftables script in node i's namespace.
func (l *Lab) nft(i int, script string) error {
	cmd := exec.Command("ip", "netns", "exec", l.ns[i], "nft", "-f", "-")
	cmd.Stdin = strings.NewReader(script)
	out, err := cmd.CombinedOutput()
	if err != nil {
		return fmt.Errorf("nft in %s: %v: %s", l.ns[i], err, strings.TrimSpace(string(out)))
	}
	return nil
}

// DropHeartbeats drops, with nftables in node i's namespace, the
// heartbeat datagrams node i sends (out) and/or receives (in), on every
// link; other traffic (VIP, storage) passes. Both false removes the rules.
func (l *Lab) DropHeartbeats(i int, out, in bool) error {
	table := "tndp_" + Nodes[i]
	if l.nftOn[table] {
		if err := l.nft(i, "delete table inet "+table+"\n"); err != nil {
			return err
		}
		delete(l.nftOn, table)
	}
	if !out && !in {
		return nil
	}
	var rules strings.Builder
	fmt.Fprintf(&rules, "table inet %s {\n", table)
	if out {
		fmt.Fprintf(&rules, "  chain out { type filter hook output priority 0; policy accept; udp dport %d drop; }\n", HBPort)
	}
	if in {
		fmt.Fprintf(&rules, "  chain in { type filter hook input priority 0; policy accept; udp dport %d drop; }\n", HBPort)
	}
	rules.WriteString("}\n")
	if err := l.nft(i, rules.String()); err != nil {
		return err
	}
	l.nftOn[table] = true
	return nil
}

// PowerOff pulls node i's plug: every link down, every process in its
// namespace (agent, guard, writer) killed with SIGKILL.
func (l *Lab) PowerOff(i int) error {
	err := l.setLinks(i, false, DedicatedIf, PublicIf, StorageIf)
	l.KillAgent(i)
	l.killNetns(l.ns[i])
	return err
}

// PowerOn clears what a reboot clears (VIP, pid and marker files), brings
// node i's links up and starts its agent.
func (l *Lab) PowerOn(i int) error {
	_ = ip("-n", l.ns[i], "addr", "del", VIP+"/24", "dev", PublicIf)
	for _, s := range []string{".writer.pid", ".writer.ready", ".fenced"} {
		os.Remove(l.Path(Nodes[i] + s))
	}
	if err := l.setLinks(i, true, DedicatedIf, PublicIf, StorageIf); err != nil {
		return err
	}
	return l.StartAgent(i)
}

// HasVIP reports whether node i has the VIP configured.
func (l *Lab) HasVIP(i int) bool { return hanet.HasAddr(l.ns[i], PublicIf, VIP) }

// Probe asks the VIP who answers, once.
func (l *Lab) Probe(timeout time.Duration) (string, error) {
	return hanet.ProbeEcho(l.probe, &net.UDPAddr{IP: net.ParseIP(VIP), Port: EchoPort}, timeout)
}

// Client is node i's control client.
func (l *Lab) Client(i int) *control.Client { return control.NewClient(l.Socket(i)) }

// State is node i's state as its control socket reports it ("" when the
// agent does not answer).
func (l *Lab) State(ctx context.Context, i int) string {
	ctx, cancel := context.WithTimeout(ctx, time.Second)
	defer cancel()
	st, err := l.Client(i).Status(ctx)
	if err != nil {
		return ""
	}
	return st.Node.State
}

// WaitState polls node i's state until it is want.
func (l *Lab) WaitState(ctx context.Context, i int, want string) error {
	last := ""
	for {
		if last = l.State(ctx, i); last == want {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("%s: state %q, want %q: %w", Nodes[i], last, want, ctx.Err())
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// StorageDialer opens TCP connections from the storage namespace, for the
// checker's own session (the host side of the storage network).
func (l *Lab) StorageDialer(ctx context.Context, network, addr string) (net.Conn, error) {
	var c net.Conn
	err := hanet.InNetns(l.storage, func() error {
		var err error
		c, err = (&net.Dialer{}).DialContext(ctx, network, addr)
		return err
	})
	return c, err
}
