// Package pairlab is the part both agent labs (e2e/hanet, e2e/partition)
// share: two node namespaces joined by a dedicated veth (the heartbeat
// cable) and by a public bridge in a client namespace; a virtual IP on
// the public network; a UDP echo responder in each node namespace that
// answers with the node's name, so the client learns who holds the VIP;
// tandem-agent on each node, configured with a typed ha/config value.
//
// A lab adds its own namespaces and links (Options.Extend) and its own
// resources (Config returns the base for it to complete).
package pairlab

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"time"

	"github.com/tandem-ha/tandem/e2e/internal/netlab"
	"github.com/tandem-ha/tandem/ha/config"
	"github.com/tandem-ha/tandem/ha/control"
)

// Net is a pair's addressing and interface names. Interface names are the
// same inside both node namespaces, so one link definition serves both.
type Net struct {
	DedicatedIf, PublicIf string
	// BridgeIf is the public bridge in the client namespace; Ports are its
	// ports facing node 0 and node 1.
	BridgeIf string
	Ports    [2]string
	// Dedicated and Public are the nodes' addresses; Client is the client
	// namespace's address on the public bridge.
	Dedicated, Public [2]netip.Prefix
	Client            netip.Prefix
	// VIP is the group's address on the public network (its length is
	// the public network's).
	VIP netip.Prefix
	// Group is the public link's multicast group.
	Group string
	// EchoPort is the UDP echo responder's port in each node namespace.
	EchoPort int
}

// Options configure a pair.
type Options struct {
	// Prefix starts the namespace names (netlab.Topology.Prefix).
	Prefix  string
	Cluster string
	Nodes   [2]string
	Net     Net
	// Dir holds configs, key, logs and markers.
	Dir      string
	AgentBin string
	// Timing; zero fields take the agent's defaults.
	Timing config.Timing
	// LogLevel of the agents; default info.
	LogLevel string
	// AgentGrace is how long Close lets an agent hand over on SIGTERM
	// before SIGKILL: a killed agent's guard would run stop actions while
	// the lab is being torn down.
	AgentGrace time.Duration
	// Extend adds a lab's own namespaces and links to the topology.
	Extend func(*netlab.Topology)
	// AgentEnv (NAME=value) and AgentArgs are added to the agent's
	// environment and command line (GOGC=10, --no-realtime in the timing
	// chaos lab); env execs the agent, so the PID stays the agent's.
	AgentEnv, AgentArgs []string
}

// Role of the agent process in a node.
const agentRole = "agent"

// Pair is a running pair.
type Pair struct {
	opt    Options
	Net    *netlab.Lab
	nodes  [2]*netlab.Node
	client *netlab.Node
	echo   [2]net.PacketConn
	probe  net.PacketConn
}

// Names of the pair's namespaces in the topology.
var nodeNS = [2]string{"a", "b"}

const clientNS = "c"

// Topology is the pair's network before Extend.
func (o Options) Topology() netlab.Topology {
	n := o.Net
	t := netlab.Topology{
		Prefix:     o.Prefix,
		Namespaces: []string{nodeNS[0], nodeNS[1], clientNS},
		Bridges:    []netlab.Bridge{{NS: clientNS, Name: n.BridgeIf, Addr: n.Client}},
		Veths: []netlab.Veth{{
			A: netlab.End{NS: nodeNS[0], Dev: n.DedicatedIf, Addr: n.Dedicated[0]},
			B: netlab.End{NS: nodeNS[1], Dev: n.DedicatedIf, Addr: n.Dedicated[1]},
		}},
	}
	for i := range 2 {
		t.Veths = append(t.Veths, netlab.Veth{
			A: netlab.End{NS: nodeNS[i], Dev: n.PublicIf, Addr: n.Public[i]},
			B: netlab.End{NS: clientNS, Dev: n.Ports[i], Bridge: n.BridgeIf},
		})
	}
	return t
}

// New builds the network, writes the key and starts the echo responders
// and the client's probe socket. On error everything made is torn down.
func New(o Options) (_ *Pair, err error) {
	if o.LogLevel == "" {
		o.LogLevel = "info"
	}
	t := o.Topology()
	if o.Extend != nil {
		o.Extend(&t)
	}
	nl, err := netlab.Build(t)
	if err != nil {
		return nil, err
	}
	p := &Pair{opt: o, Net: nl, client: nl.Node(clientNS)}
	defer func() {
		if err != nil {
			p.Close()
		}
	}()
	for i := range 2 {
		p.nodes[i] = nl.Node(nodeNS[i])
	}
	if err := os.WriteFile(p.Path("authkey"), []byte(o.Cluster+"-lab-key-0123456789abcdef\n"), 0o600); err != nil {
		return nil, fmt.Errorf("write the lab's heartbeat key: %w", err)
	}
	for i := range 2 {
		pc, err := p.nodes[i].ListenPacket("udp4", fmt.Sprintf("0.0.0.0:%d", o.Net.EchoPort))
		if err != nil {
			return nil, fmt.Errorf("echo responder in %s: %w", p.nodes[i].Netns, err)
		}
		p.echo[i] = pc
		go ServeEcho(pc, o.Nodes[i])
	}
	p.probe, err = p.client.ListenPacket("udp4", o.Net.Client.Addr().String()+":0")
	if err != nil {
		return nil, fmt.Errorf("probe socket: %w", err)
	}
	return p, nil
}

// Close stops the agents (SIGTERM, AgentGrace, SIGKILL) and every other
// process, then removes the namespaces with their interfaces and the VIP.
func (p *Pair) Close() error {
	for i := range 2 {
		if p.echo[i] != nil {
			p.echo[i].Close()
		}
	}
	if p.probe != nil {
		p.probe.Close()
	}
	return p.Net.Close()
}

// Node is node i's namespace and processes.
func (p *Pair) Node(i int) *netlab.Node { return p.nodes[i] }

// Path is a file in the lab directory.
func (p *Pair) Path(name string) string { return filepath.Join(p.opt.Dir, name) }

// Files of node i.
func (p *Pair) Socket(i int) string     { return p.Path(p.opt.Nodes[i] + ".sock") }
func (p *Pair) AgentLog(i int) string   { return p.Path(p.opt.Nodes[i] + ".agent.log") }
func (p *Pair) FencedFile(i int) string { return p.Path(p.opt.Nodes[i] + ".fenced") }
func (p *Pair) ConfigFile(i int) string { return p.Path(p.opt.Nodes[i] + ".yaml") }

// StateDir is node i's agent state directory (the persisted fenced
// marker): each node its own, as on two machines; it survives a power
// off like a disk.
func (p *Pair) StateDir(i int) string { return p.Path(p.opt.Nodes[i] + ".state") }

// Config is node i's agent configuration without resources: both links,
// the key, the timing, no automatic failback (node 0 preferred), the
// control socket and a self-fence that only touches FencedFile.
func (p *Pair) Config(i int) config.Config {
	o, n := p.opt, p.opt.Net
	return config.Config{
		Cluster: o.Cluster,
		Nodes:   []string{o.Nodes[0], o.Nodes[1]},
		Node:    o.Nodes[i],
		KeyFile: p.Path("authkey"),
		Timing:  o.Timing,
		Failback: config.Failback{
			AutoFailback: false, Preferred: o.Nodes[0],
		},
		Links: []config.Link{
			{Name: "dedicated", Mode: config.ModeUnicast, Interface: n.DedicatedIf, Addresses: map[string]string{
				o.Nodes[0]: n.Dedicated[0].Addr().String(), o.Nodes[1]: n.Dedicated[1].Addr().String(),
			}},
			{Name: "public", Mode: config.ModeMulticast, Interface: n.PublicIf, Group: n.Group},
		},
		ControlSocket: p.Socket(i),
		StateDir:      p.StateDir(i),
		SelfFence:     config.SelfFence{Action: config.FenceCommand, Command: "touch " + p.FencedFile(i)},
		Log:           config.Log{Level: o.LogLevel},
	}
}

// WriteConfigs writes both nodes' configurations, from cfg(i).
func (p *Pair) WriteConfigs(cfg func(i int) config.Config) error {
	for i := range 2 {
		if err := cfg(i).WriteFile(p.ConfigFile(i)); err != nil {
			return fmt.Errorf("agent config of %s: %w", p.opt.Nodes[i], err)
		}
	}
	return nil
}

// StartAgent starts node i's agent in its namespace (appending to its log).
func (p *Pair) StartAgent(i int) error {
	bin, args := p.opt.AgentBin, append([]string{"--config", p.ConfigFile(i)}, p.opt.AgentArgs...)
	if len(p.opt.AgentEnv) > 0 {
		bin, args = "env", append(append(append([]string{}, p.opt.AgentEnv...), bin), args...)
	}
	_, err := p.nodes[i].Start(agentRole, p.opt.AgentGrace, p.AgentLog(i), bin, args...)
	return err
}

// StopAgent sends node i's agent SIGTERM (it hands the group over), and
// SIGKILL when it takes longer than grace.
func (p *Pair) StopAgent(i int, grace time.Duration) error { return p.nodes[i].Stop(agentRole, grace) }

// KillAgent kills node i's agent with SIGKILL; its guard process lives on.
func (p *Pair) KillAgent(i int) error { return p.nodes[i].Kill(agentRole) }

// AgentRunning reports whether node i's agent process is alive.
func (p *Pair) AgentRunning(i int) bool { return p.nodes[i].Running(agentRole) }

// AgentPID is node i's agent's PID, 0 when none was started.
func (p *Pair) AgentPID(i int) int {
	if pr := p.nodes[i].Proc(agentRole); pr != nil {
		return pr.PID()
	}
	return 0
}

// RemoveVIP removes the VIP from node i (what a reboot clears).
func (p *Pair) RemoveVIP(i int) {
	_ = p.nodes[i].IP("addr", "del", p.opt.Net.VIP.String(), "dev", p.opt.Net.PublicIf)
}

// HasVIP reports whether node i has the VIP configured.
func (p *Pair) HasVIP(i int) bool {
	return p.nodes[i].HasAddr(p.opt.Net.PublicIf, p.opt.Net.VIP.Addr().String())
}

// CutDedicated takes the dedicated link down on both sides (or up).
func (p *Pair) CutDedicated(cut bool) error {
	for i := range 2 {
		if err := p.nodes[i].SetLinks(!cut, p.opt.Net.DedicatedIf); err != nil {
			return err
		}
	}
	return nil
}

// Probe asks the VIP who holds it, once: the node name, or an error after
// timeout.
func (p *Pair) Probe(timeout time.Duration) (string, error) {
	return ProbeEcho(p.probe, &net.UDPAddr{IP: p.opt.Net.VIP.Addr().AsSlice(), Port: p.opt.Net.EchoPort}, timeout)
}

// WaitVIP probes every interval until node answers on the VIP or ctx
// ends; it returns when the first answer from node came.
func (p *Pair) WaitVIP(ctx context.Context, node string, interval time.Duration) (time.Time, error) {
	last := ""
	for {
		got, err := p.Probe(interval)
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
func (p *Pair) Client(i int) *control.Client { return control.NewClient(p.Socket(i)) }

// State is node i's state as its control socket reports it ("" when the
// agent does not answer within a second).
func (p *Pair) State(ctx context.Context, i int) string {
	ctx, cancel := context.WithTimeout(ctx, time.Second)
	defer cancel()
	st, err := p.Client(i).Status(ctx)
	if err != nil {
		return ""
	}
	return st.Node.State
}

// WaitState polls node i's state every 50 ms until it is want.
func (p *Pair) WaitState(ctx context.Context, i int, want string) error {
	last := ""
	for {
		if last = p.State(ctx, i); last == want {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("%s: state %q, want %q: %w", p.opt.Nodes[i], last, want, ctx.Err())
		case <-time.After(50 * time.Millisecond):
		}
	}
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
		_, _ = pc.WriteTo([]byte(name), from)
	}
}

// ProbeEcho sends one datagram from pc to an echo service (ServeEcho) at
// dst and returns its answer, or an error after timeout.
func ProbeEcho(pc net.PacketConn, dst *net.UDPAddr, timeout time.Duration) (string, error) {
	if pc == nil {
		return "", errors.New("pairlab: no probe socket")
	}
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
