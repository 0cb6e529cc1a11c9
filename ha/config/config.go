// Package config loads and validates tandem-agent's YAML configuration
// (default /etc/tandem/agent.yaml). The same file serves both nodes: every
// per-node value (a link's address) is a map keyed by node name, and the
// node picks its own entry, so operators copy one file to both machines.
package config

import (
	"bytes"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/go-viper/mapstructure/v2"
	"github.com/spf13/viper"

	"github.com/tandem-ha/tandem/ha/fsm"
	"github.com/tandem-ha/tandem/ha/heartbeat"
	"github.com/tandem-ha/tandem/ha/resource"
)

// DefaultPath is where tandem-agent looks for its configuration.
const DefaultPath = "/etc/tandem/agent.yaml"

// DefaultPort is the UDP port of every link unless the link sets its own.
// Not heartbeat's 694, so both can run side by side during a migration.
const DefaultPort = 7694

// Link modes.
const (
	ModeUnicast   = "unicast"
	ModeMulticast = "multicast"
	ModeBroadcast = "broadcast"
)

// Self-fence actions.
const (
	FenceReboot  = "reboot"  // sync, then reboot(2): the production choice
	FenceExit    = "exit"    // exit the agent with status 70 (tests, supervised setups)
	FenceCommand = "command" // run SelfFence.Command with sh -c (labs, custom fencing)
)

// Config is the whole agent configuration after defaults and validation.
type Config struct {
	// Cluster names the cluster; heartbeats of other clusters are dropped
	// and counted as foreign.
	Cluster string `mapstructure:"cluster"`
	// Nodes lists the two node names, identical on both nodes.
	Nodes []string `mapstructure:"nodes"`
	// Node is this node's name; empty means os.Hostname. Must be in Nodes.
	Node string `mapstructure:"node"`
	// Peer is the other node of Nodes, filled in by Load.
	Peer string `mapstructure:"-"`
	// Links are the heartbeat paths; a peer is dead only when silent on all.
	Links []Link `mapstructure:"links"`
	// Timing holds the failure detector's timings.
	Timing Timing `mapstructure:"timing"`
	// KeyFile holds the shared HMAC-SHA256 key: mode 0600, >= 16 bytes.
	KeyFile string `mapstructure:"key_file"`
	// Key is KeyFile's content (surrounding white space trimmed), set by Load.
	Key []byte `mapstructure:"-"`
	// Resources is the resource group in start order (stopped in reverse);
	// zero timeouts take resource.Default*, max_restarts 0 fails over at once.
	// A `fence` resource (type fence, params.type scsi-pr; see ha/fence)
	// must come before any filesystem: nothing after it starts until this
	// node holds the reservation on every shared LUN. Example (kernel
	// initiator, the fence registers on the session that carries the data):
	//
	//	- {name: disk, type: iscsi, params: {portal: 10.0.0.1:3260, target: iqn.2026-11.io.tandem:disk, fence: "true"}}
	//	- {name: fence, type: fence, params: {type: scsi-pr, devices: "${disk.device}"}, monitor: {interval: 1s}}
	//	- {name: fs, type: filesystem, params: {device: "${disk.device}", directory: /srv, fstype: ext4}}
	//
	// or with native sessions (the fence has its own I_T nexus; every
	// writer registers fence.Key(cluster, node) on its own):
	//
	//	- {name: fence, type: fence, params: {type: scsi-pr, portal: 10.0.0.1:3260, target: iqn..., luns: "0,1",
	//	   user: node, secret_file: /etc/tandem/chap}}
	//
	// The key is derived from cluster and node (ha/fence doc); its monitor
	// interval is how fast a fenced node notices it (1s is a good value).
	Resources []resource.Spec `mapstructure:"resources"`
	// DiskHeartbeat, when Device or Portal is set, runs the disk heartbeat
	// (ha/diskhb) on an arbiter LUN: a third heartbeat medium. The peer is
	// then dead only when silent on every link AND on the disk, and a node
	// that reaches neither stops its group. Empty: links only.
	DiskHeartbeat DiskHeartbeat `mapstructure:"disk_heartbeat"`
	// Failback is the failback policy.
	Failback Failback `mapstructure:"failback"`
	// ControlSocket is the unix socket of the control API (mode 0600).
	ControlSocket string `mapstructure:"control_socket"`
	// StateDir holds what the agent must remember across its restarts
	// (the storage-fenced marker, cleared by tandemctl rejoin). Created
	// (0700) when first written.
	StateDir string `mapstructure:"state_dir"`
	// MetricsAddress is the Prometheus listener, DefaultMetricsAddress
	// (loopback only: the metrics show the cluster's layout) unless set;
	// "off" or "" turns metrics off. A port that cannot be bound is
	// logged and the agent runs on without metrics: they are not worth
	// an outage.
	MetricsAddress string `mapstructure:"metrics_address"`
	// SelfFence is what the node does to itself when a resource cannot be
	// stopped (it must not keep running while the peer takes over).
	SelfFence SelfFence `mapstructure:"self_fence"`
	// Log configures log/slog output on stderr.
	Log Log `mapstructure:"log"`
}

// Link is one heartbeat path.
type Link struct {
	// Name labels the link in logs, status and metrics.
	Name string `mapstructure:"name"`
	// Mode is unicast, multicast or broadcast.
	Mode string `mapstructure:"mode"`
	// Interface is the network device (same name on both nodes). Required
	// for multicast and broadcast; for unicast it pins the socket to the
	// device (SO_BINDTODEVICE).
	Interface string `mapstructure:"interface"`
	// Addresses maps node name (case kept, as in Nodes) to that node's IP
	// on this link. Unicast:
	// required for both nodes (local bind, peer destination). Other modes:
	// optional local bind address.
	Addresses map[string]string `mapstructure:"addresses"`
	// Group is the multicast group (multicast mode).
	Group string `mapstructure:"group"`
	// Port is the UDP port, DefaultPort when 0.
	Port int `mapstructure:"port"`

	// Resolved for this node by Load.
	Local netip.Addr `mapstructure:"-"` // invalid: any address
	Peer  netip.Addr `mapstructure:"-"` // unicast destination, group, or broadcast
}

// Timing holds the failure detector's timings: the YAML shape of
// fsm.Timing (same fields, convertible), which documents them and is the
// one home of their defaults and rules.
type Timing struct {
	Keepalive time.Duration `mapstructure:"keepalive"`
	DeadTime  time.Duration `mapstructure:"deadtime"`
	InitDead  time.Duration `mapstructure:"initdead"`
}

// DiskHeartbeat is the arbiter LUN: a small LUN of the shared target that
// no reservation covers (one 512-byte block per node is enough).
type DiskHeartbeat struct {
	// Device is a kernel block device of the arbiter LUN (SG_IO), e.g.
	// /dev/disk/by-path/...-lun-9. Or, for a native session:
	Device string `mapstructure:"device"`
	// Portal (IP:PORT), Target (IQN) and LUN of a native session; its
	// initiator name is fence.InitiatorName(cluster, node).
	Portal string `mapstructure:"portal"`
	Target string `mapstructure:"target"`
	LUN    uint64 `mapstructure:"lun"`
	// User and SecretFile: one-way CHAP for the native session (0600 file).
	User       string `mapstructure:"user"`
	SecretFile string `mapstructure:"secret_file"`
	// BaseLBA is the first slot's block (default 0); slot i is the i-th
	// node in sorted order.
	BaseLBA uint64 `mapstructure:"base_lba"`
}

// Enabled reports whether a disk heartbeat is configured.
func (d DiskHeartbeat) Enabled() bool { return d.Device != "" || d.Portal != "" }

func (d DiskHeartbeat) validate() error {
	switch {
	case !d.Enabled():
		return nil
	case d.Device != "" && d.Portal != "":
		return errors.New("disk_heartbeat: device and portal both set: use a kernel device or a native session, not both")
	case d.Portal != "" && d.Target == "":
		return errors.New("disk_heartbeat.target: empty: set the arbiter target's IQN")
	case (d.User == "") != (d.SecretFile == ""):
		return errors.New("disk_heartbeat: user and secret_file must be set together")
	}
	return nil
}

// Failback is the failback policy.
type Failback struct {
	// AutoFailback moves the group back to Preferred when it returns.
	AutoFailback bool `mapstructure:"auto_failback"`
	// Preferred is the node that takes the group when both start; "" = none.
	Preferred string `mapstructure:"preferred"`
}

// SelfFence configures the self-fence action.
type SelfFence struct {
	Action  string `mapstructure:"action"`  // reboot | exit | command
	Command string `mapstructure:"command"` // for action command, run with sh -c
}

// Log configures logging.
type Log struct {
	Level  string `mapstructure:"level"`  // debug | info | warn | error
	Format string `mapstructure:"format"` // text | json
}

// DefaultConfig returns every default in one place. Nodes, Links, KeyFile
// and Resources have no default and must be configured.
func DefaultConfig() Config {
	return Config{
		Cluster:        "tandem",
		Timing:         Timing(fsm.DefaultTiming()),
		Failback:       Failback{AutoFailback: false}, // moving back costs a second outage
		ControlSocket:  "/run/tandem/agent.sock",
		StateDir:       "/var/lib/tandem",
		MetricsAddress: DefaultMetricsAddress,
		SelfFence:      SelfFence{Action: FenceReboot},
		Log:            Log{Level: "info", Format: "text"},
	}
}

// DefaultMetricsAddress is where Prometheus scrapes the agent by default:
// the loopback address, so only this host (or a local exporter/agent that
// forwards) reads it. 9464 is the port of the metrics examples in the
// README.
const DefaultMetricsAddress = "127.0.0.1:9464"

// MetricsEnabled reports whether the agent serves metrics.
func (c *Config) MetricsEnabled() bool { return c.MetricsAddress != "" && c.MetricsAddress != "off" }

// Options override file values (command-line flags).
type Options struct {
	// Node overrides the node name (node key and host name).
	Node string
	// Inspect loads for tandemctl doctor: the key file is not read and
	// the resources' own validation is not run (Key stays nil), so one
	// bad key file or script does not hide every other finding; the
	// caller checks them one by one (ReadKey, resource.Spec.Validate).
	Inspect bool
}

// Load reads the YAML file at path, applies defaults, resolves this node's
// view and validates everything.
func Load(path string, opt Options) (*Config, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read config %s: %w (pass --config or create the file)", path, err)
	}
	cfg, err := Parse(data, opt)
	if err != nil {
		return nil, fmt.Errorf("config %s: %w", path, err)
	}
	return cfg, nil
}

// Parse is Load for an in-memory YAML document.
func Parse(data []byte, opt Options) (*Config, error) {
	v := viper.New()
	v.SetConfigType("yaml")
	if err := v.ReadConfig(bytes.NewReader(data)); err != nil {
		return nil, fmt.Errorf("parse yaml: %w", err)
	}
	cfg := DefaultConfig()
	err := v.Unmarshal(&cfg, func(dc *mapstructure.DecoderConfig) {
		dc.ErrorUnused = true // a misspelt key must not be silently ignored
		dc.DecodeHook = mapstructure.ComposeDecodeHookFunc(unitlessDurationHook, dc.DecodeHook)
	})
	if err != nil {
		if e := explainDecode(err); e != err {
			return nil, e
		}
		return nil, fmt.Errorf("decode: %w (compare the key names with the sample agent.yaml installed with the package, or man tandem-agent)", err)
	}
	if err := restoreNodeKeys(data, &cfg); err != nil {
		return nil, err
	}
	if opt.Node != "" {
		cfg.Node = opt.Node
	}
	if err := cfg.resolve(opt.Inspect); err != nil {
		return nil, err
	}
	return &cfg, nil
}

func (c *Config) resolve(inspect bool) error {
	if c.Cluster == "" {
		return errors.New("cluster: empty: set a cluster name")
	}
	if len(c.Nodes) != 2 || c.Nodes[0] == "" || c.Nodes[1] == "" || c.Nodes[0] == c.Nodes[1] {
		return fmt.Errorf("nodes: found %q: list exactly two distinct node names", c.Nodes)
	}
	for _, n := range append([]string{c.Cluster}, c.Nodes...) {
		if heartbeat.CheckName(n) != nil {
			return fmt.Errorf("cluster/nodes: %q is longer than %d bytes: use a shorter name", n, heartbeat.MaxNameLen)
		}
	}
	if c.Node == "" {
		h, err := os.Hostname()
		if err != nil {
			return fmt.Errorf("node: empty and host name unknown (%v): set node", err)
		}
		c.Node = h
	}
	switch c.Node {
	case c.Nodes[0]:
		c.Peer = c.Nodes[1]
	case c.Nodes[1]:
		c.Peer = c.Nodes[0]
	default:
		return fmt.Errorf("node: this node is %q but nodes lists %q and %q: set node to one of them or fix nodes", c.Node, c.Nodes[0], c.Nodes[1])
	}
	if err := c.Timing.validate(); err != nil {
		return err
	}
	if len(c.Links) == 0 {
		return errors.New("links: none: configure at least one heartbeat link (two are recommended: a dedicated cable and the public network)")
	}
	names := map[string]bool{}
	for i := range c.Links {
		l := &c.Links[i]
		if l.Name == "" {
			l.Name = fmt.Sprintf("link%d", i)
		}
		if names[l.Name] {
			return fmt.Errorf("links[%d].name: %q used twice: give each link its own name", i, l.Name)
		}
		names[l.Name] = true
		if err := l.resolve(c.Node, c.Peer); err != nil {
			return fmt.Errorf("links[%d] (%s).%w", i, l.Name, err)
		}
	}
	if c.Failback.Preferred != "" && !slices.Contains(c.Nodes, c.Failback.Preferred) {
		return fmt.Errorf("failback.preferred: %q is not in nodes %q: use one of them or leave it empty", c.Failback.Preferred, c.Nodes)
	}
	if !inspect {
		key, err := ReadKey(c.KeyFile)
		if err != nil {
			return err
		}
		c.Key = key
	}
	if err := c.validateResources(inspect); err != nil {
		return err
	}
	if err := c.DiskHeartbeat.validate(); err != nil {
		return err
	}
	if c.StateDir == "" {
		return errors.New("state_dir: empty: set a directory such as /var/lib/tandem")
	}
	if c.ControlSocket == "" {
		return errors.New("control_socket: empty: set a path such as /run/tandem/agent.sock")
	}
	if c.MetricsEnabled() {
		if _, err := netip.ParseAddrPort(c.MetricsAddress); err != nil {
			return fmt.Errorf("metrics_address: %q: %v: use IP:PORT such as "+DefaultMetricsAddress+", or off", c.MetricsAddress, err)
		}
	}
	switch c.SelfFence.Action {
	case FenceReboot, FenceExit:
	case FenceCommand:
		if strings.TrimSpace(c.SelfFence.Command) == "" {
			return errors.New("self_fence.command: empty with action command: set the command to run")
		}
	default:
		return fmt.Errorf("self_fence.action: %q: use reboot, exit or command", c.SelfFence.Action)
	}
	switch c.Log.Level {
	case "debug", "info", "warn", "error":
	default:
		return fmt.Errorf("log.level: %q: use debug, info, warn or error", c.Log.Level)
	}
	switch c.Log.Format {
	case "text", "json":
	default:
		return fmt.Errorf("log.format: %q: use text or json", c.Log.Format)
	}
	return nil
}

func (t Timing) validate() error {
	if err := fsm.Timing(t).Validate(); err != nil {
		return fmt.Errorf("timing.%w", err)
	}
	return nil
}

func (l *Link) resolve(self, peer string) error {
	if l.Port == 0 {
		l.Port = DefaultPort
	}
	if l.Port < 1 || l.Port > 65535 {
		return fmt.Errorf("port: %d: use 1-65535 (default %d)", l.Port, DefaultPort)
	}
	for n := range l.Addresses {
		if n != self && n != peer {
			for _, want := range []string{self, peer} {
				if strings.EqualFold(n, want) {
					return fmt.Errorf("addresses: node %q is not in nodes (%q, %q): node names keep their case, write %q", n, self, peer, want)
				}
			}
			return fmt.Errorf("addresses: node %q is not in nodes (%q, %q): fix the key", n, self, peer)
		}
	}
	addr := func(node string) (netip.Addr, error) {
		s, ok := l.Addresses[node]
		if !ok {
			return netip.Addr{}, nil
		}
		a, err := netip.ParseAddr(s)
		if err != nil || !a.Is4() {
			return netip.Addr{}, fmt.Errorf("addresses.%s: %q: use an IPv4 address", node, s)
		}
		return a, nil
	}
	var err error
	if l.Local, err = addr(self); err != nil {
		return err
	}
	switch l.Mode {
	case ModeUnicast:
		if l.Peer, err = addr(peer); err != nil {
			return err
		}
		if !l.Local.IsValid() || !l.Peer.IsValid() {
			return fmt.Errorf("addresses: unicast needs the address of both %q and %q on this link", self, peer)
		}
	case ModeMulticast:
		if l.Interface == "" {
			return errors.New("interface: multicast needs the device to join the group on")
		}
		g, err := netip.ParseAddr(l.Group)
		if err != nil || !g.Is4() || !g.IsMulticast() {
			return fmt.Errorf("group: %q: use an IPv4 multicast group such as 239.192.76.94", l.Group)
		}
		l.Peer = g
	case ModeBroadcast:
		if l.Interface == "" {
			return errors.New("interface: broadcast needs the device to send on")
		}
		l.Peer = netip.AddrFrom4([4]byte{255, 255, 255, 255})
	default:
		return fmt.Errorf("mode: %q: use unicast, multicast or broadcast", l.Mode)
	}
	return nil
}

func (c *Config) validateResources(inspect bool) error {
	for i, r := range c.Resources {
		if r.Type != "fence" {
			continue
		}
		for _, prev := range c.Resources[:i] {
			if prev.Type == "filesystem" {
				return fmt.Errorf("resources[%d] (%s): a fence must come before filesystem %q: move it up so nothing mounts before the reservation is ours", i, r.Name, prev.Name)
			}
		}
	}
	seen := map[string]bool{}
	for i := range c.Resources {
		r := &c.Resources[i]
		if r.Name == "" {
			return fmt.Errorf("resources[%d].name: empty: name every resource", i)
		}
		if seen[r.Name] {
			return fmt.Errorf("resources[%d].name: %q used twice: names must be unique", i, r.Name)
		}
		seen[r.Name] = true
		*r = r.WithDefaults()
		if inspect {
			continue
		}
		if err := r.Validate(); err != nil {
			return fmt.Errorf("resources[%d] (%s): %w", i, r.Name, err)
		}
	}
	return nil
}

// MinKeyLen is the shortest accepted key.
const MinKeyLen = 16

// ReadKey reads a key file, refusing one that group or others can read.
func ReadKey(path string) ([]byte, error) {
	if path == "" {
		return nil, errors.New("key_file: empty: create one with `head -c 32 /dev/urandom | base64 > /etc/tandem/authkey; chmod 600 /etc/tandem/authkey` and set key_file")
	}
	st, err := os.Stat(path)
	if err != nil {
		return nil, fmt.Errorf("key_file: %w: create the file (same content on both nodes)", err)
	}
	if st.Mode().Perm()&0o077 != 0 {
		return nil, fmt.Errorf("key_file: %s has mode %04o, readable by group or others: chmod 600 %s", path, st.Mode().Perm(), path)
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("key_file: %w", err)
	}
	b = bytes.TrimSpace(b)
	if len(b) < MinKeyLen {
		return nil, fmt.Errorf("key_file: %s holds %d bytes, need at least %d: write a longer random key", path, len(b), MinKeyLen)
	}
	return b, nil
}
