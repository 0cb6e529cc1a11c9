// Package hanet is a network-namespace lab for tandem-agent: two node
// namespaces joined by a dedicated veth link (the heartbeat cable) and by a
// public bridge that lives in a third, client namespace; a virtual IP on
// the public network; a UDP echo responder in each node namespace that
// answers with the node's name, so the client can tell which node holds the
// VIP (e2e/internal/pairlab). The group is the VIP and a heartbeat-style
// script. It runs the real tandem-agent binary. Needs root.
//
// Everything it creates is named after a random prefix and torn down by
// Close; it kills only the processes it started, by PID.
package hanet

import (
	"fmt"
	"net/netip"
	"os"
	"time"

	"github.com/tandem-ha/tandem/e2e/internal/pairlab"
	"github.com/tandem-ha/tandem/ha/config"
	"github.com/tandem-ha/tandem/ha/resource"
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

// VIP is the virtual IP the group carries.
var VIP = netip.MustParseAddr("10.213.2.50")

var network = pairlab.Net{
	DedicatedIf: DedicatedIf, PublicIf: PublicIf, BridgeIf: BridgeIf, Ports: [2]string{"tnd-pa", "tnd-pb"},
	Dedicated: [2]netip.Prefix{netip.MustParsePrefix("10.213.1.1/24"), netip.MustParsePrefix("10.213.1.2/24")},
	Public:    [2]netip.Prefix{netip.MustParsePrefix("10.213.2.1/24"), netip.MustParsePrefix("10.213.2.2/24")},
	Client:    netip.MustParsePrefix("10.213.2.100/24"),
	VIP:       netip.PrefixFrom(VIP, 24),
	Group:     Group, EchoPort: EchoPort,
}

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
	*pairlab.Pair
	opt Options
}

// New builds the namespaces and links, writes the configs and starts the
// echo responders. On error everything already made is torn down.
func New(opt Options) (_ *Lab, err error) {
	p, err := pairlab.New(pairlab.Options{
		Prefix: "tndh", Cluster: "hanet", Nodes: Nodes, Net: network,
		Dir: opt.Dir, AgentBin: opt.AgentBin, LogLevel: opt.LogLevel,
		Timing:     config.Timing{Keepalive: opt.Timing.Keepalive, DeadTime: opt.Timing.DeadTime, InitDead: opt.Timing.InitDead},
		AgentGrace: 5 * time.Second,
	})
	if err != nil {
		return nil, err
	}
	l := &Lab{Pair: p, opt: opt}
	defer func() {
		if err != nil {
			l.Close()
		}
	}()
	if err := os.WriteFile(l.Path("svc.sh"), []byte(script), 0o755); err != nil {
		return nil, err
	}
	if err := l.WriteConfigs(l.config); err != nil {
		return nil, err
	}
	return l, nil
}

// Close stops the agents it started (SIGTERM, 5 s, SIGKILL) and removes
// the namespaces (which removes the interfaces and the VIP with them).
func (l *Lab) Close() { _ = l.Pair.Close() }

// Marker files the service script obeys, per node.
func (l *Lab) FailMonitorFile(i int) string { return l.Path(Nodes[i] + ".failmon") }
func (l *Lab) FailStopFile(i int) string    { return l.Path(Nodes[i] + ".failstop") }
func (l *Lab) ScriptLog(i int) string       { return l.Path(Nodes[i] + ".svc.log") }

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

// config is node i's agent configuration: the VIP, then the script.
func (l *Lab) config(i int) config.Config {
	c := l.Pair.Config(i)
	vip := resource.Spec{Type: "vip", Name: "vip", StartTimeout: 5 * time.Second, StopTimeout: 5 * time.Second,
		Params: map[string]string{"address": network.VIP.String(), "interface": PublicIf, "arp_count": "3", "arp_interval": "100ms"}}
	vip.Monitor.Interval, vip.Monitor.Timeout = time.Second, 2*time.Second
	svc := resource.Spec{Type: "script", Name: "svc", StartTimeout: 5 * time.Second, StopTimeout: 2 * time.Second,
		MaxRestarts: l.opt.MaxRestarts,
		Params:      map[string]string{"path": l.Path("svc.sh"), "args": l.opt.Dir + " " + Nodes[i]}}
	if l.opt.ScriptMonitor > 0 {
		svc.Monitor.Interval, svc.Monitor.Timeout = l.opt.ScriptMonitor, 2*time.Second
	}
	c.Resources = []resource.Spec{vip, svc}
	return c
}

// Start starts node i's agent (appending to its log).
func (l *Lab) Start(i int) error { return l.StartAgent(i) }

// Kill kills node i's agent with SIGKILL (kill -9): it cannot clean up,
// but the guard process it started releases its resources.
func (l *Lab) Kill(i int) { _ = l.KillAgent(i) }

// Stop stops node i's agent with SIGTERM (it hands the group over), and
// kills it if it takes longer than wait.
func (l *Lab) Stop(i int, wait time.Duration) { _ = l.StopAgent(i, wait) }

// Running reports whether node i's agent process is alive.
func (l *Lab) Running(i int) bool { return l.AgentRunning(i) }

// SetLinks brings node i's interfaces down (false) or up (true).
func (l *Lab) SetLinks(i int, up bool) error { return l.Node(i).SetLinks(up, DedicatedIf, PublicIf) }

// CutHeartbeat cuts (or heals) both node-to-node links at once: the
// dedicated veth goes down, and nftables in both node namespaces drop the
// heartbeat datagrams on the public network, where clients keep reaching
// both nodes. A split brain without fencing, as in heartbeat's own lab.
func (l *Lab) CutHeartbeat(cut bool) error {
	body := ""
	if cut {
		body = fmt.Sprintf("  chain in { type filter hook input priority 0; policy accept; udp dport %[1]d drop; }\n"+
			"  chain out { type filter hook output priority 0; policy accept; udp dport %[1]d drop; }\n", config.DefaultPort)
	}
	for i := range 2 {
		if err := l.Net.SetTable(l.Node(i).Name, "inet", "tndh_cut", body); err != nil {
			return err
		}
	}
	return l.CutDedicated(cut)
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
	l.RemoveVIP(i)
	for _, s := range []string{".svc", ".failmon", ".failstop", ".fenced", ".svc.log"} {
		os.Remove(l.Path(Nodes[i] + s))
	}
}
