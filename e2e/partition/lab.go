// Package partition is the partition test matrix of issue 6: a network
// namespace lab with a storage namespace running tandem-target (a data LUN
// and a small arbiter LUN), two node namespaces each running tandem-agent,
// a dedicated veth link between the nodes, a public bridge (nodes and a
// client) and a separate storage bridge (nodes and storage), so that both
// links between the nodes can be cut while both still reach the storage.
// The group's application is e2e/cmd/blockwriter, started through a
// heartbeat-style script resource; it writes stamped blocks over its own
// native iSCSI session, every node and generation over the same LBA range
// (as two nodes mounting one filesystem would), and logs every outcome.
// The target keeps an audit of every write to the data LUN (the witness
// at the storage) and, for the rows that restart it, a volatile cache that
// loses what was not flushed.
//
// The test (matrix_test.go) injects one fault per row and judges (Judge),
// from the audit, the writers' ack logs and a read-back of the range: no
// write of the fenced node was accepted after the fence, no two writers
// were accepted in turn, every block holds its last accepted writer's
// write, every acknowledged FUA block survived, and the service came back
// (or stayed put) in time.
//
// Everything the lab creates carries a random prefix and is torn down by
// Close; it kills only processes it started (by PID) or that live in its
// own namespaces.
package partition

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"os"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/tandem-ha/tandem/e2e/internal/netlab"
	"github.com/tandem-ha/tandem/e2e/internal/pairlab"
	"github.com/tandem-ha/tandem/e2e/partition/stamp"
	"github.com/tandem-ha/tandem/ha/config"
	"github.com/tandem-ha/tandem/ha/fence"
	"github.com/tandem-ha/tandem/ha/resource"
	"github.com/tandem-ha/tandem/initiator"
	"github.com/tandem-ha/tandem/target/backstore"
	tconfig "github.com/tandem-ha/tandem/target/config"
	"github.com/tandem-ha/tandem/target/daemon"
)

// Interface names inside the node namespaces (the same in both).
const (
	DedicatedIf = "tnp-hb"
	PublicIf    = "tnp-pub"
	StorageIf   = "tnp-sto"
	EchoPort    = 7777 // UDP responder answering the node's name
	HBPort      = config.DefaultPort
	Group       = "239.192.77.17"
	IQN         = "iqn.2026-11.io.tandem:partition"
	DataLUN     = 0
	ArbiterLUN  = 1
	Cluster     = "partlab"
	// RangeBlocks is the shared LBA range (from LBA 0) every writer
	// writes round and round, each generation starting half a range
	// after the one before, so a new writer reaches the old one's most
	// recent blocks last: a lost write of the old writer stays visible.
	// 2048: a takeover writer writes 600-900 blocks in a row, which with
	// 1024 sometimes reached and overwrote the blocks the broken-FUA
	// control had lost (an overwritten loss is no loss at the end).
	RangeBlocks = 2048
)

// Nodes are the two node names.
var Nodes = [2]string{"alpha", "beta"}

var (
	storageAddr = [2]netip.Prefix{netip.MustParsePrefix("10.217.3.1/24"), netip.MustParsePrefix("10.217.3.2/24")}
	targetAddr  = netip.MustParsePrefix("10.217.3.100/24")
	// VIP is the service address on the public network.
	VIP = "10.217.2.50"
	// Portal is the target's portal on the storage network.
	Portal = targetAddr.Addr().String() + ":3260"
)

var network = pairlab.Net{
	DedicatedIf: DedicatedIf, PublicIf: PublicIf, BridgeIf: "tnp-br", Ports: [2]string{"tnp-pa", "tnp-pb"},
	Dedicated: [2]netip.Prefix{netip.MustParsePrefix("10.217.1.1/24"), netip.MustParsePrefix("10.217.1.2/24")},
	Public:    [2]netip.Prefix{netip.MustParsePrefix("10.217.2.1/24"), netip.MustParsePrefix("10.217.2.2/24")},
	Client:    netip.MustParsePrefix("10.217.2.100/24"),
	VIP:       netip.PrefixFrom(netip.MustParseAddr(VIP), 24),
	Group:     Group, EchoPort: EchoPort,
}

// storageNS is the storage namespace: the target, on a bridge that both
// nodes' storage links join.
const storageNS = "s"

// storage adds the storage namespace and links to the pair's topology.
func storage(t *netlab.Topology) {
	t.Namespaces = append(t.Namespaces, storageNS)
	t.Bridges = append(t.Bridges, netlab.Bridge{NS: storageNS, Name: "tnp-sbr", Addr: targetAddr, Snooping: true})
	for i, side := range []string{"a", "b"} {
		t.Veths = append(t.Veths, netlab.Veth{
			A: netlab.End{NS: side, Dev: StorageIf, Addr: storageAddr[i]},
			B: netlab.End{NS: storageNS, Dev: "tnp-s" + side, Bridge: "tnp-sbr"},
		})
	}
}

// Timing is written into the agents' config.
type Timing struct{ Keepalive, DeadTime, InitDead, Monitor time.Duration }

// Options configure a lab.
type Options struct {
	AgentBin, TargetBin, WriterBin string
	// Dir holds configs, logs, ack logs and the LUN files.
	Dir    string
	Timing Timing
	// Fence puts the fence resource (scsi-pr, native session) before the
	// writer; DiskHB adds the arbiter LUN as a heartbeat medium.
	Fence, DiskHB bool
	// WriterAPTPL is the writer's APTPL bit; it must match the fence
	// resource's, since APTPL is one state per LU.
	WriterAPTPL bool
	// Key derives a node's fencing key; default fence.Key.
	Key func(cluster, node string) uint64
	// Volatile puts the data LUN on a volatile cache (cache: volatile): a
	// power cut or a SIGKILL of the target loses what was not flushed.
	Volatile bool
	// BrokenFUA starts the target with TANDEM_TEST_BROKEN_FUA=1: FUA and
	// SYNCHRONIZE CACHE do not flush the volatile cache (the durability
	// checker's negative control).
	BrokenFUA bool
	// PlainEvery sends every PlainEvery'th write without FUA (0: none).
	PlainEvery int
	// LogLevel of the agents (default info).
	LogLevel string
	// AgentEnv and AgentArgs are added to the agents' environment and
	// command line (pairlab.Options).
	AgentEnv, AgentArgs []string
}

// Lab is a running lab.
type Lab struct {
	*pairlab.Pair
	opt     Options
	storage *netlab.Node
	mu      sync.Mutex // serialises StartTarget
}

// New builds the namespaces, links, LUN files and configs. On error
// everything already made is torn down.
func New(opt Options) (_ *Lab, err error) {
	if opt.Key == nil {
		opt.Key = fence.Key
	}
	p, err := pairlab.New(pairlab.Options{
		Prefix: "tndp", Cluster: Cluster, Nodes: Nodes, Net: network,
		Dir: opt.Dir, AgentBin: opt.AgentBin, LogLevel: opt.LogLevel,
		Timing:     config.Timing{Keepalive: opt.Timing.Keepalive, DeadTime: opt.Timing.DeadTime, InitDead: opt.Timing.InitDead},
		AgentGrace: 8 * time.Second,
		Extend:     storage,
		AgentEnv:   opt.AgentEnv, AgentArgs: opt.AgentArgs,
	})
	if err != nil {
		return nil, err
	}
	l := &Lab{Pair: p, opt: opt, storage: p.Net.Node(storageNS)}
	defer func() {
		if err != nil {
			l.Close()
		}
	}()
	if err := l.writeFiles(); err != nil {
		return nil, err
	}
	return l, nil
}

// Close stops the agents (SIGTERM, 8 s, SIGKILL), kills the writers,
// guards and the target and removes the namespaces.
func (l *Lab) Close() { _ = l.Pair.Close() }

// Files of node i.
func (l *Lab) AckLog(i int) string    { return l.Path(Nodes[i] + ".acks") }
func (l *Lab) WriterLog(i int) string { return l.Path(Nodes[i] + ".writer.out") }
func (l *Lab) TargetLog() string      { return l.Path("target.log") }

// AuditLog is the data LUN's audit stream (target/audit).
func (l *Lab) AuditLog() string { return l.Path("data.audit") }

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
		--aptpl=%[5]t --gen-file "$dir/generation" --range-blocks %[6]d --gen-offset %[7]d --plain-every %[8]d \
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
	sc := fmt.Sprintf(writerScript, l.opt.WriterBin, Portal, IQN, DataLUN, l.opt.WriterAPTPL, RangeBlocks, RangeBlocks/2, l.opt.PlainEvery)
	if err := os.WriteFile(l.Path("writer.sh"), []byte(sc), 0o755); err != nil {
		return err
	}
	if err := l.WriteConfigs(l.agentConfig); err != nil {
		return err
	}
	return l.writeTargetConfig()
}

func (l *Lab) writeTargetConfig() error {
	cache := ""
	if l.opt.Volatile {
		cache = tconfig.CacheVolatile
	}
	cfg := tconfig.DefaultConfig()
	cfg.Listen = []string{Portal}
	cfg.StateDir = l.Path("target-state")
	cfg.AdminSocket = l.Path("target.sock")
	cfg.Targets = []tconfig.Target{{Name: IQN, LUNs: []tconfig.LUN{
		{ID: DataLUN, Path: l.Path("data.img"), Size: 1 << 30, BlockSize: 512, WriteCache: true, Serial: tconfig.DefaultSerial(IQN, DataLUN),
			Audit: l.AuditLog(), Cache: cache},
		{ID: ArbiterLUN, Path: l.Path("arbiter.img"), Size: 1 << 20, BlockSize: 512, WriteCache: true, Serial: tconfig.DefaultSerial(IQN, ArbiterLUN)},
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

// agentConfig is node i's agent configuration: the disk heartbeat on the
// arbiter LUN (DiskHB), then the group: fence (Fence), writer, VIP.
func (l *Lab) agentConfig(i int) config.Config {
	c := l.Pair.Config(i)
	mon := l.opt.Timing.Monitor
	if mon == 0 {
		mon = 250 * time.Millisecond
	}
	if l.opt.DiskHB {
		c.DiskHeartbeat = config.DiskHeartbeat{Portal: Portal, Target: IQN, LUN: ArbiterLUN}
	}
	spec := func(typ, name string, start, stop, monitor time.Duration, params map[string]string) resource.Spec {
		s := resource.Spec{Type: typ, Name: name, StartTimeout: start, StopTimeout: stop, Params: params}
		s.Monitor.Interval, s.Monitor.Timeout = monitor, 2*time.Second
		return s
	}
	if l.opt.Fence {
		c.Resources = append(c.Resources, spec("fence", "fence", 5*time.Second, 5*time.Second, mon, map[string]string{
			"type": "scsi-pr", "portal": Portal, "target": IQN, "luns": fmt.Sprint(DataLUN), "cluster": Cluster, "node": Nodes[i],
		}))
	}
	c.Resources = append(c.Resources,
		spec("script", "writer", 8*time.Second, 5*time.Second, mon, map[string]string{
			"path": l.Path("writer.sh"), "args": fmt.Sprintf("%s %s %#x", l.opt.Dir, Nodes[i], l.Key(i)),
		}),
		spec("vip", "vip", 5*time.Second, 5*time.Second, time.Second, map[string]string{
			"address": network.VIP.String(), "interface": PublicIf, "arp_count": "3", "arp_interval": "100ms",
		}))
	return c
}

// StartTarget starts tandem-target in the storage namespace and waits
// until its portal accepts connections.
func (l *Lab) StartTarget() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	// Grace 0: the lab's teardown kills the target, a crash like KillTarget.
	bin, args := l.opt.TargetBin, []string{"--config", l.Path("target.yaml")}
	if l.opt.BrokenFUA {
		// env execs the target: the PID stays the target's.
		bin, args = "env", append([]string{"TANDEM_TEST_BROKEN_FUA=1", bin}, args...)
	}
	p, err := l.storage.Start("target", 0, l.TargetLog(), bin, args...)
	if err != nil {
		return err
	}
	deadline := time.Now().Add(15 * time.Second)
	for time.Now().Before(deadline) {
		if !p.Running() {
			return fmt.Errorf("tandem-target exited at start: see %s", l.TargetLog())
		}
		ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
		c, _ := l.storage.DialContext(ctx, "tcp", Portal)
		cancel()
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
func (l *Lab) KillTarget() { _ = l.storage.Kill("target") }

// TargetPID is tandem-target's PID, 0 when none was started (the soak
// samples its /proc entry).
func (l *Lab) TargetPID() int {
	if p := l.storage.Proc("target"); p != nil {
		return p.PID()
	}
	return 0
}

// StopTarget stops tandem-target with SIGTERM, so that it closes the
// audit streams whole (SIGKILL after 5 s).
func (l *Lab) StopTarget() error { return l.storage.Stop("target", 5*time.Second) }

// PowerCut makes the data LUN's volatile cache lose its unflushed writes
// (mode drop, reorder or tear; seed picks what survives), through the
// target's admin socket; the LU keeps serving.
func (l *Lab) PowerCut(mode string, seed uint64) (backstore.CutReport, error) {
	var rep backstore.CutReport
	body, _ := json.Marshal(daemon.PowerCut{Mode: mode, Seed: seed})
	c := http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{
		DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			return (&net.Dialer{}).DialContext(ctx, "unix", l.Path("target.sock"))
		}}}
	defer c.CloseIdleConnections()
	url := fmt.Sprintf("http://target/v1/targets/%s/luns/%d/power-cut", IQN, DataLUN)
	resp, err := c.Post(url, "application/json", bytes.NewReader(body))
	if err != nil {
		return rep, fmt.Errorf("power cut through %s: %w", l.Path("target.sock"), err)
	}
	defer resp.Body.Close()
	out, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		return rep, fmt.Errorf("power cut: %s: %s", resp.Status, out)
	}
	if err := json.Unmarshal(out, &rep); err != nil {
		return rep, fmt.Errorf("power cut: reply %q: %w", out, err)
	}
	return rep, nil
}

// Quiesce stops every write to the data LUN before the read-back: both
// agents and their guards are killed (nothing restarts a writer), then
// every blockwriter, by PID. A write a killed writer had in flight still
// reaches the audit.
func (l *Lab) Quiesce() error {
	for i := range 2 {
		l.KillAgent(i)
	}
	deadline := time.Now().Add(5 * time.Second)
	for {
		left := 0
		for i := range 2 {
			if pid := l.WriterPID(i); pid != 0 {
				left++
				_ = syscall.Kill(pid, syscall.SIGKILL)
			}
		}
		if left == 0 {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("a blockwriter still runs 5s after SIGKILL (D state?): see ps in the lab's namespaces")
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// StartAgent starts node i's agent (appending to its log).
func (l *Lab) StartAgent(i int) error { return l.Pair.StartAgent(i) }

// StopAgent stops node i's agent with SIGTERM (it releases the group),
// then SIGKILL after 8 s.
func (l *Lab) StopAgent(i int) { _ = l.Pair.StopAgent(i, 8*time.Second) }

// KillAgent kills node i's agent and its guard with SIGKILL, leaving the
// application running: the worst case of a daemon crash, where nothing on
// the node stops the writer and only fencing can.
func (l *Lab) KillAgent(i int) {
	n := l.Node(i)
	for _, pid := range n.PIDs() {
		if c := netlab.Cmdline(pid); strings.Contains(c, l.opt.AgentBin) && strings.Contains(c, " guard ") {
			_ = syscall.Kill(pid, syscall.SIGKILL)
		}
	}
	_ = l.Pair.KillAgent(i)
}

// WriterPID is the PID of node i's blockwriter, 0 if none runs.
func (l *Lab) WriterPID(i int) int {
	for _, pid := range l.Node(i).PIDs() {
		if strings.Contains(netlab.Cmdline(pid), l.opt.WriterBin) {
			return pid
		}
	}
	return 0
}

// CutPublic takes node i's public link down (or up).
func (l *Lab) CutPublic(i int, cut bool) error { return l.Node(i).SetLinks(!cut, PublicIf) }

// CutStorage takes node i's storage link down (or up).
func (l *Lab) CutStorage(i int, cut bool) error { return l.Node(i).SetLinks(!cut, StorageIf) }

// DropHeartbeats drops, with nftables in node i's namespace, the
// heartbeat datagrams node i sends (out) and/or receives (in), on every
// link; other traffic (VIP, storage) passes. Both false removes the rules.
func (l *Lab) DropHeartbeats(i int, out, in bool) error {
	var body strings.Builder
	if out {
		fmt.Fprintf(&body, "  chain out { type filter hook output priority 0; policy accept; udp dport %d drop; }\n", HBPort)
	}
	if in {
		fmt.Fprintf(&body, "  chain in { type filter hook input priority 0; policy accept; udp dport %d drop; }\n", HBPort)
	}
	return l.Net.SetTable(l.Node(i).Name, "inet", "tndp_"+Nodes[i], body.String())
}

// PowerOff pulls node i's plug: every link down, every process in its
// namespace (agent, guard, writer) killed with SIGKILL.
func (l *Lab) PowerOff(i int) error {
	err := l.Node(i).SetLinks(false, DedicatedIf, PublicIf, StorageIf)
	l.KillAgent(i)
	l.Node(i).KillAll()
	return err
}

// PowerOn clears what a reboot clears (VIP, pid and marker files), brings
// node i's links up and starts its agent.
func (l *Lab) PowerOn(i int) error {
	l.RemoveVIP(i)
	for _, s := range []string{".writer.pid", ".writer.ready", ".fenced"} {
		os.Remove(l.Path(Nodes[i] + s))
	}
	if err := l.Node(i).SetLinks(true, DedicatedIf, PublicIf, StorageIf); err != nil {
		return err
	}
	return l.StartAgent(i)
}

// StorageDialer opens TCP connections from the storage namespace, for the
// checker's own session (the host side of the storage network).
func (l *Lab) StorageDialer(ctx context.Context, network, addr string) (net.Conn, error) {
	return l.storage.DialContext(ctx, network, addr)
}

// ReadRange reads the shared range back through a native session of the
// checker's own, from the storage namespace, retried while the target
// restarts.
func (l *Lab) ReadRange(ctx context.Context) (map[uint64]Block, error) {
	var s *initiator.Session
	var err error
	for try := 0; try < 20; try++ {
		s, err = initiator.Dial(ctx, Portal, initiator.Options{
			InitiatorName: "iqn.2026-11.io.tandem.partition:checker", TargetName: IQN, Dialer: l.StorageDialer,
		})
		if err == nil {
			break
		}
		time.Sleep(250 * time.Millisecond)
	}
	if err != nil {
		return nil, fmt.Errorf("checker login: %w", err)
	}
	defer s.Close(ctx)
	buf := make([]byte, RangeBlocks*stamp.BlockSize)
	if err := s.ReadInto(ctx, DataLUN, 0, buf); err != nil {
		return nil, fmt.Errorf("read back the shared range: %w", err)
	}
	disk := make(map[uint64]Block, RangeBlocks)
	for i := range uint64(RangeBlocks) {
		st, err := stamp.Decode(buf[i*stamp.BlockSize : (i+1)*stamp.BlockSize])
		disk[i] = Block{Stamp: st, Err: err}
	}
	return disk, nil
}
