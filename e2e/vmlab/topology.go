// Package vmlab is the seed's whole deployment in qemu guests (issue 13):
// a storage guest (tandem-target on an LVM volume), MQMaster and MQSlave
// (open-iscsi's iscsid, tandem-agent, e2fsprogs, the MQ stand-in with its
// TCP listener), a public bridge (VIP, client, storage traffic) and a
// dedicated heartbeat bridge, all inside one network namespace the lab
// creates; the counting client (e2e/mqclient) runs on the host inside that
// namespace. The nodes' agent configs are imported from heartbeat files
// adapted to the lab (tools/importer/heartbeat), then given the fence.
//
// Layout: topology.go is the addressing and the config builders (pure),
// lab.go boots and sets up the guests, events.go collects the agents' log
// lines stamped on arrival, scenario.go injects faults and judges runs
// with e2e/labcheck, report.go writes the table and timelines.
package vmlab

import (
	"fmt"
	"net/netip"
	"slices"
	"time"

	"github.com/tandem-ha/tandem/ha/config"
	"github.com/tandem-ha/tandem/ha/resource"
	tconfig "github.com/tandem-ha/tandem/target/config"
	"github.com/tandem-ha/tandem/tools/importer/heartbeat"
)

// Guests, by index.
const (
	Storage = iota
	Master
	Slave
)

// Names of the guests (qemu/file names) and of the cluster's nodes (as the
// seed's ha.cf spells them).
var (
	GuestNames = [3]string{"storage", "mqmaster", "mqslave"}
	NodeNames  = [3]string{"", "MQMaster", "MQSlave"}
)

// Addressing inside the lab namespace.
var (
	PublicNet = netip.MustParsePrefix("10.213.9.0/24")
	HostAddr  = netip.MustParsePrefix("10.213.9.1/24")
	PublicIPs = [3]netip.Prefix{
		netip.MustParsePrefix("10.213.9.10/24"), netip.MustParsePrefix("10.213.9.11/24"), netip.MustParsePrefix("10.213.9.12/24")}
	HBIPs = [3]netip.Prefix{
		{}, netip.MustParsePrefix("10.213.10.11/24"), netip.MustParsePrefix("10.213.10.12/24")}
	// VIP is the seed's 192.168.0.208/24 moved onto the lab's public net.
	VIP = netip.MustParsePrefix("10.213.9.208/24")
)

// Names of the lab's bridges and taps (inside its namespace).
const (
	PublicBridge = "tl-pub"
	HBBridge     = "tl-hb"
)

// PublicTap and HBTap are guest i's taps.
func PublicTap(i int) string { return fmt.Sprintf("tl-p%d", i) }
func HBTap(i int) string     { return fmt.Sprintf("tl-h%d", i) }

// Storage and MQ constants.
const (
	TargetIQN  = "iqn.2026-12.io.tandem:mqha"
	Portal     = "10.213.9.10:3260"
	VG, LV     = "tandemvg", "mq"
	LVSize     = "192M"
	QMgr       = "QM1"
	Queue      = "ORDERS"
	MQPort     = 1414
	SharedDir  = "/MQHA"
	MQBin      = "/opt/mqm/bin"
	Cluster    = "mqha"
	AgentConf  = "/etc/tandem/agent.yaml"
	AgentKey   = "/etc/tandem/authkey"
	AuditFile  = "/var/lib/tandem/audit.mq"
	TargetConf = "/etc/tandem/target.yaml"
)

// LVPath is the logical volume's device in the storage guest.
const LVPath = "/dev/" + VG + "/" + LV

// NodeIQN is node i's InitiatorName.
func NodeIQN(i int) string { return "iqn.2026-12.io.tandem:" + GuestNames[i] }

// MQAddr is the MQ listener through the VIP.
func MQAddr() string { return fmt.Sprintf("%s:%d", VIP.Addr(), MQPort) }

// SeedFiles are the seed's heartbeat files adapted to the lab: the same
// node names, the VIP moved to the lab's public net, a dedicated link
// (eth1, unicast) and the public one (eth0, multicast), lab timings.
type SeedFiles struct{ HaCf, Haresources, Authkeys string }

// Seed returns the lab's heartbeat files for timing t.
func Seed(t config.Timing) SeedFiles {
	ms := func(d time.Duration) string { return fmt.Sprintf("%dms", d.Milliseconds()) }
	return SeedFiles{
		HaCf: fmt.Sprintf(`# the seed's ha.cf, adapted to the VM lab
keepalive %s
deadtime %s
initdead %s
ucast eth1 %s
ucast eth1 %s
mcast eth0 239.192.9.1 694 1 0
auto_failback off
node MQMaster
node MQSlave
`, ms(t.Keepalive), ms(t.DeadTime), ms(t.InitDead), HBIPs[Master].Addr(), HBIPs[Slave].Addr()),
		Haresources: fmt.Sprintf("MQMaster %s/%d/eth0 mq\n", VIP.Addr(), VIP.Bits()),
		Authkeys:    "auth 1\n1 sha1 mqha-vm-lab-key-4f1c9a0b7d2e\n",
	}
}

// DefaultTiming is the agents' failure detector in the lab.
var DefaultTiming = config.Timing{Keepalive: 200 * time.Millisecond, DeadTime: 1 * time.Second, InitDead: 3 * time.Second}

// AgentConfig imports the seed's files for node i and completes them into
// the group fence -> iscsi -> filesystem -> mq -> vip: the iSCSI session
// (its key registered on that very session), the SCSI-PR fence on its
// device, fsck and mount of ext4, the queue manager with its data on the
// shared filesystem, the VIP last. fence false leaves the fence out and
// the iscsi resource registers no key (the negative control).
func AgentConfig(i int, t config.Timing, fence bool) (config.Config, []string, error) {
	s := Seed(t)
	res, err := heartbeat.Convert(heartbeat.Input{
		Dir: "/etc/ha.d", HaCf: s.HaCf, Haresources: s.Haresources, Authkeys: s.Authkeys, AuthkeysMode: 0o600,
		Addresses:      map[string]string{HBIPs[Master].Addr().String(): NodeNames[Master], HBIPs[Slave].Addr().String(): NodeNames[Slave]},
		MQQueueManager: QMgr, KeyFile: AgentKey,
	})
	if err != nil {
		return config.Config{}, nil, fmt.Errorf("vmlab: import the seed's heartbeat files: %w", err)
	}
	var findings []string
	for _, f := range res.Findings {
		findings = append(findings, f.String())
	}
	c := res.Config
	c.Cluster = Cluster
	c.Node = NodeNames[i]
	c.ControlSocket = "/run/tandem/agent.sock"
	c.SelfFence = config.SelfFence{Action: config.FenceReboot}
	c.Log = config.Log{Level: "info", Format: "text"}
	spec := func(typ, name string, start, stop, mon time.Duration, params map[string]string) resource.Spec {
		sp := resource.Spec{Type: typ, Name: name, StartTimeout: start, StopTimeout: stop, Params: params}
		sp.Monitor.Interval, sp.Monitor.Timeout = mon, 5*time.Second
		return sp
	}
	var vip, mq resource.Spec
	for _, r := range c.Resources {
		switch r.Type {
		case "vip":
			vip = r
		case "mq":
			mq = r
		}
	}
	if vip.Type == "" || mq.Type == "" {
		return config.Config{}, nil, fmt.Errorf("vmlab: the imported haresources lack the vip or mq resource: %v", c.Resources)
	}
	mq.Params["mqbin"] = MQBin
	mq.Params["user"] = ""
	mq.Params["shared_mount"] = SharedDir
	mq.StartTimeout, mq.StopTimeout = 30*time.Second, 20*time.Second
	mq.Monitor.Interval, mq.Monitor.Timeout = time.Second, 5*time.Second
	// A queue manager that dies is restarted in place once before the
	// group fails over (heartbeat's haresources know no local restart).
	mq.MaxRestarts = 1
	// heartbeat's IPaddr sent 10 ARPs 500 ms apart; the client's host
	// learns the move from the first.
	vip.Params["arp_count"], vip.Params["arp_interval"] = "3", "100ms"
	vip.Monitor.Interval = time.Second
	fenceParam := "false"
	if fence {
		fenceParam = "true"
	}
	group := []resource.Spec{
		spec("iscsi", "disk", 30*time.Second, 20*time.Second, time.Second, map[string]string{
			"portal": Portal, "target": TargetIQN, "lun": "0", "fence": fenceParam, "replacement_timeout": "5s"}),
	}
	if fence {
		group = append(group, spec("fence", "fence", 10*time.Second, 5*time.Second, 500*time.Millisecond, map[string]string{
			"type": "scsi-pr", "devices": "${disk.device}"}))
	}
	group = append(group,
		spec("filesystem", "fs", 60*time.Second, 20*time.Second, 2*time.Second, map[string]string{
			"device": "${disk.device}", "directory": SharedDir, "fstype": "ext4"}),
		mq, vip)
	c.Resources = group
	return c, findings, nil
}

// TargetConfig is the storage guest's tandem-target: one LUN on the LV,
// with the write audit (target/audit) as the independent witness of who
// wrote after the fence.
func TargetConfig() *tconfig.Config {
	cfg := tconfig.DefaultConfig()
	cfg.Listen = []string{Portal}
	cfg.StateDir = "/var/lib/tandem/target"
	cfg.AdminSocket = "/run/tandem/target.sock"
	cfg.Targets = []tconfig.Target{{Name: TargetIQN, LUNs: []tconfig.LUN{{
		ID: 0, Path: LVPath, BlockSize: 512, WriteCache: true,
		Serial: tconfig.DefaultSerial(TargetIQN, 0), Audit: AuditFile,
	}}}}
	return cfg
}

// hasNode reports whether i is a cluster node (not the storage guest).
func hasNode(i int) bool { return slices.Contains([]int{Master, Slave}, i) }
