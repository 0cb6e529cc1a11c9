// Package doctor finds the pitfalls of a tandem node before they bite
// (the seed's: a key file others can read, a node name that is not
// uname -n, a script without its execute bit, a VIP outside its subnet,
// two nodes with one initiator name, a wrong CHAP secret, MQ data on
// local disk). The checks are pure functions of Facts; probe.go gathers
// the Facts from the host, the agent and the target.
package doctor

import (
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"

	"github.com/tandem-ha/tandem/ha/config"
	"github.com/tandem-ha/tandem/ha/control"
	"github.com/tandem-ha/tandem/ha/fence"
	"github.com/tandem-ha/tandem/ha/resource"
	"github.com/tandem-ha/tandem/mqres"
)

// Status is a check's verdict.
type Status string

// Verdicts. Skip: the check does not apply here, or a fact it needs is
// unavailable (Detail says which).
const (
	Pass Status = "pass"
	Warn Status = "warn"
	Fail Status = "fail"
	Skip Status = "skip"
)

// Result is one check's finding.
type Result struct {
	Name   string `json:"name"`
	Status Status `json:"status"`
	Detail string `json:"detail"`
	// Fix says what to do; empty on a pass.
	Fix string `json:"fix,omitempty"`
}

// Failed reports whether any result is a failure.
func Failed(rs []Result) bool {
	return slices.ContainsFunc(rs, func(r Result) bool { return r.Status == Fail })
}

// FileFact is a file as stat saw it.
type FileFact struct {
	Path   string
	Exists bool
	Mode   os.FileMode
	UID    int
	Err    string // stat or read error other than absence
}

// LoginFact is a login to the target with the configured credentials.
type LoginFact struct {
	// What names the configured session ("resource disk", "disk_heartbeat").
	What, Portal, Target string
	LUN                  uint64
	CHAP                 bool
	// Err is the login's or the command's error; "" when both succeeded.
	Err string
	// PRTypes are the reservation types REPORT CAPABILITIES listed (nil
	// if not asked); PRErr its error.
	PRTypes []uint8
	PRErr   string
}

// MQFact is an mq resource's queue manager paths.
type MQFact struct {
	Name, QMgr, SharedMount string
	Data, Log               string
	// SameDevice: data and log are on the mount's device (a symlink to
	// local disk fails it).
	DataOnMountDev, LogOnMountDev bool
	Err                           string // paths unknown (dspmqinf failed, disk not mounted)
}

// Facts are what the probes found. A nil or empty field means unknown.
type Facts struct {
	// Role is node or storage.
	Role string
	// ConfigPath, Config (loaded with config.Options.Inspect) and
	// ConfigErr (Config nil). NodeFromFlag: --node was given.
	ConfigPath   string
	Config       *config.Config
	ConfigErr    string
	NodeFromFlag bool
	// Uname is uname -n; KernelRelease uname -r.
	Uname, KernelRelease string
	// EUID is the doctor's effective user.
	EUID int
	// Key is the key file; KeyErr config.ReadKey's verdict on it.
	Key    FileFact
	KeyErr string
	// SpecErrs maps a resource name to its own validation error.
	SpecErrs map[string]string
	// Files are the resources' scripts, by path.
	Files map[string]FileFact
	// Addrs maps an interface to its IPv4 prefixes; AddrsErr is set when
	// they could not be listed.
	Addrs    map[string][]netip.Prefix
	AddrsErr string
	// Agent is the agent's status (nil: AgentErr says why).
	Agent    *control.Status
	AgentErr string
	// Iscsid: a process named iscsid runs. InitiatorName is the value in
	// /etc/iscsi/initiatorname.iscsi ("" unset; InitiatorErr unreadable);
	// PeerInitiatorName is the peer's, when known (--peer-initiator-name).
	Iscsid            bool
	InitiatorName     string
	InitiatorErr      string
	PeerInitiatorName string
	// Logins are the configured sessions tried; MQ the mq resources.
	Logins []LoginFact
	MQ     []MQFact
	// Realtime and Mlock: the agent's permissions (CAP_SYS_NICE or an
	// RLIMIT_RTPRIO; CAP_IPC_LOCK or an unlimited RLIMIT_MEMLOCK).
	Realtime, Mlock bool
	// TargetConfigErr: the storage role's target config ("" valid).
	TargetConfigPath, TargetConfigErr string
}

// check is one row of the table below: one name, one function.
type check struct {
	name  string
	roles []string
	run   func(f *Facts) []Result
}

var checks = []check{
	{"kernel", []string{"node", "storage"}, checkKernel},
	{"config", []string{"node"}, checkConfig},
	{"key_file", []string{"node"}, checkKey},
	{"node_name", []string{"node"}, checkNodeName},
	{"resources", []string{"node"}, checkSpecs},
	{"scripts", []string{"node"}, checkScripts},
	{"vip", []string{"node"}, checkVIP},
	{"links", []string{"node"}, checkLinks},
	{"clock", []string{"node"}, checkClock},
	{"iscsid", []string{"node"}, checkIscsid},
	{"initiator_name", []string{"node"}, checkInitiatorName},
	{"target_login", []string{"node"}, checkLogins},
	{"mq_shared", []string{"node"}, checkMQ},
	{"realtime", []string{"node"}, checkRealtime},
	{"target_config", []string{"storage"}, checkTargetConfig},
}

// Roles lists the roles Run knows.
var Roles = []string{"node", "storage"}

// Run judges f for its role.
func Run(f *Facts) []Result {
	var out []Result
	for _, c := range checks {
		if !slices.Contains(c.roles, f.Role) {
			continue
		}
		for _, r := range c.run(f) {
			if r.Name == "" {
				r.Name = c.name
			} else {
				r.Name = c.name + ": " + r.Name
			}
			out = append(out, r)
		}
	}
	return out
}

func one(s Status, detail, fix string) []Result {
	return []Result{{Status: s, Detail: detail, Fix: fix}}
}

func noConfig(f *Facts) []Result {
	return one(Skip, "the agent config does not load (see the config check)", "")
}

// MinKernel is the oldest kernel Go's runtime supports.
var MinKernel = [2]int{3, 2}

func checkKernel(f *Facts) []Result {
	rel := f.KernelRelease
	var v [2]int
	parts := strings.SplitN(rel, ".", 3)
	if len(parts) < 2 {
		return one(Warn, fmt.Sprintf("kernel release %q not understood", rel), "")
	}
	for i := range 2 {
		n, err := strconv.Atoi(strings.TrimFunc(parts[i], func(r rune) bool { return r < '0' || r > '9' }))
		if err != nil {
			return one(Warn, fmt.Sprintf("kernel release %q not understood", rel), "")
		}
		v[i] = n
	}
	if v[0] < MinKernel[0] || v[0] == MinKernel[0] && v[1] < MinKernel[1] {
		return one(Fail, "kernel "+rel+" is older than 3.2",
			"Go's runtime needs Linux >= 3.2, so RHEL 6 (2.6.32) cannot run tandem: use RHEL 7+ or Debian 9+")
	}
	return one(Pass, "kernel "+rel, "")
}

func checkConfig(f *Facts) []Result {
	if f.Config == nil {
		return one(Fail, f.ConfigErr, "fix "+f.ConfigPath+" (tandem-agent --check --config "+f.ConfigPath+" says the same)")
	}
	c := f.Config
	return one(Pass, fmt.Sprintf("%s loads: cluster %s, node %s, peer %s", f.ConfigPath, c.Cluster, c.Node, c.Peer), "")
}

func checkKey(f *Facts) []Result {
	if f.Config == nil {
		return noConfig(f)
	}
	k := f.Key
	switch {
	case !k.Exists:
		return one(Fail, "key_file "+k.Path+" is missing "+k.Err,
			"create it with the same content on both nodes: head -c 32 /dev/urandom | base64 > "+k.Path+"; chmod 600 "+k.Path)
	case k.Mode.Perm()&0o077 != 0:
		return one(Fail, fmt.Sprintf("key_file %s has mode %04o: group or others can read the cluster's key", k.Path, k.Mode.Perm()),
			"chmod 600 "+k.Path)
	case k.UID != 0 && k.UID != f.EUID:
		return one(Fail, fmt.Sprintf("key_file %s is owned by uid %d, not root", k.Path, k.UID), "chown root:root "+k.Path)
	case f.KeyErr != "":
		return one(Fail, f.KeyErr, "")
	}
	return one(Pass, fmt.Sprintf("key_file %s: mode %04o, owner uid %d", k.Path, k.Mode.Perm(), k.UID), "")
}

func checkNodeName(f *Facts) []Result {
	if f.Config == nil {
		return noConfig(f)
	}
	c := f.Config
	switch {
	case !slices.Contains(c.Nodes, f.Uname):
		return one(Fail, fmt.Sprintf("this host is %q (uname -n) but nodes lists %q", f.Uname, c.Nodes),
			"list `uname -n` of both hosts in nodes (the same file serves both), or rename the host: hostnamectl set-hostname "+c.Node)
	case c.Node != f.Uname:
		return one(Warn, fmt.Sprintf("the agent runs as %q (--node) on host %q", c.Node, f.Uname),
			"drop --node and let the agent use uname -n, so logs, status and the peer agree")
	}
	return one(Pass, fmt.Sprintf("node %s = uname -n, peer %s", c.Node, c.Peer), "")
}

func checkSpecs(f *Facts) []Result {
	if f.Config == nil {
		return noConfig(f)
	}
	var out []Result
	for _, s := range f.Config.Resources {
		if e := f.SpecErrs[s.Name]; e != "" {
			out = append(out, Result{Name: s.Name, Status: Fail, Detail: e, Fix: "fix the resource in " + f.ConfigPath + " (tandem-agent params " + s.Type + " lists its keys)"})
		}
	}
	if len(out) == 0 {
		return one(Pass, fmt.Sprintf("%d resources valid", len(f.Config.Resources)), "")
	}
	return out
}

func checkScripts(f *Facts) []Result {
	if f.Config == nil {
		return noConfig(f)
	}
	var out []Result
	for _, s := range f.Config.Resources {
		if s.Type != "script" && s.Type != "lsb" {
			continue
		}
		p := ScriptPath(s.Type, s.Params["path"])
		ff := f.Files[p]
		switch {
		case !ff.Exists:
			out = append(out, Result{Name: s.Name, Status: Fail, Detail: p + " does not exist " + ff.Err,
				Fix: "install the script at " + p + " on both nodes, or fix params.path"})
		case !ff.Mode.IsRegular():
			out = append(out, Result{Name: s.Name, Status: Fail, Detail: p + " is not a regular file", Fix: "point params.path at the script itself"})
		case ff.Mode.Perm()&0o111 == 0:
			out = append(out, Result{Name: s.Name, Status: Fail, Detail: fmt.Sprintf("%s is not executable (mode %04o)", p, ff.Mode.Perm()), Fix: "chmod +x " + p})
		default:
			out = append(out, Result{Name: s.Name, Status: Pass, Detail: p + " is executable"})
		}
	}
	if len(out) == 0 {
		return one(Skip, "no script or lsb resource", "")
	}
	return out
}

// ScriptPath is where a script or lsb resource's program is (lsb: a bare
// name lives in /etc/init.d).
func ScriptPath(typ, path string) string {
	if typ == "lsb" && path != "" && !strings.Contains(path, "/") {
		return filepath.Join("/etc/init.d", path)
	}
	return path
}

func checkVIP(f *Facts) []Result {
	if f.Config == nil {
		return noConfig(f)
	}
	var out []Result
	for _, s := range f.Config.Resources {
		if s.Type != "vip" {
			continue
		}
		vip, err := netip.ParsePrefix(s.Params["address"])
		if err != nil {
			continue // the resources check reports it
		}
		ifc := s.Params["interface"]
		addrs, ok := f.Addrs[ifc]
		if !ok {
			out = append(out, Result{Name: s.Name, Status: Fail, Detail: "interface " + ifc + " does not exist " + f.AddrsErr,
				Fix: "set params.interface to the interface of the VIP's subnet (ip -4 addr)"})
			continue
		}
		var in bool
		var have []string
		for _, a := range addrs {
			if a.Addr() == vip.Addr() {
				continue
			}
			have = append(have, a.String())
			in = in || a.Contains(vip.Addr())
		}
		if !in {
			out = append(out, Result{Name: s.Name, Status: Fail,
				Detail: fmt.Sprintf("%s is in no subnet of %s (its addresses: %s)", vip, ifc, strings.Join(have, ", ")),
				Fix:    "pick a free address in one of those subnets, or set params.interface to the interface of the VIP's subnet"})
			continue
		}
		out = append(out, Result{Name: s.Name, Status: Pass, Detail: fmt.Sprintf("%s fits a subnet of %s", vip, ifc)})
	}
	if len(out) == 0 {
		return one(Skip, "no vip resource", "")
	}
	return out
}

// checkLinks: each link's local address is on this host, and the peer is
// reachable on it, as the agent proves: a link is up in its status while
// authenticated heartbeats of the peer arrive on it within deadtime.
func checkLinks(f *Facts) []Result {
	if f.Config == nil {
		return noConfig(f)
	}
	var out []Result
	for i, l := range f.Config.Links {
		if l.Local.IsValid() && f.Addrs != nil && !hostHas(f.Addrs, l.Local) {
			out = append(out, Result{Name: l.Name, Status: Fail, Detail: "local address " + l.Local.String() + " is on no interface of this host",
				Fix: "add it (ip addr add " + l.Local.String() + "/24 dev " + dash(l.Interface) + ") or fix links[" + strconv.Itoa(i) + "].addresses." + f.Config.Node})
			continue
		}
		switch {
		case f.Agent == nil:
			out = append(out, Result{Name: l.Name, Status: Skip, Detail: "peer reachability unknown: the agent does not answer (" + f.AgentErr + ")",
				Fix: "start tandem-agent on both nodes, then run doctor again"})
		case i >= len(f.Agent.Links) || !f.Agent.Links[i].Up:
			out = append(out, Result{Name: l.Name, Status: Fail, Detail: "no heartbeat of " + f.Config.Peer + " on this link within deadtime",
				Fix: "check the peer's agent runs, the cable/VLAN, a firewall on UDP port " + strconv.Itoa(l.Port) + ", and that both nodes use the same key_file"})
		default:
			out = append(out, Result{Name: l.Name, Status: Pass, Detail: "heartbeats of " + f.Config.Peer + " arrive (rtt " + f.Agent.Links[i].RTT.String() + ")"})
		}
	}
	return out
}

func hostHas(addrs map[string][]netip.Prefix, a netip.Addr) bool {
	for _, ps := range addrs {
		for _, p := range ps {
			if p.Addr() == a {
				return true
			}
		}
	}
	return false
}

func dash(s string) string {
	if s == "" {
		return "IFACE"
	}
	return s
}

// checkClock: the heartbeat carries the sender's time only for the RTT
// echo, and the agent does not publish an offset, so the offset to the
// peer is not measured here.
func checkClock(f *Facts) []Result {
	return one(Skip, "clock offset to the peer: unavailable (the agent does not expose the peer's heartbeat timestamps)",
		"compare `chronyc tracking` or `timedatectl` on both nodes; logs of both nodes are read side by side")
}

// usesKernelInitiator: an iscsi resource logs in with open-iscsi.
func usesKernelInitiator(c *config.Config) bool {
	return slices.ContainsFunc(c.Resources, func(s resource.Spec) bool { return s.Type == "iscsi" })
}

func checkIscsid(f *Facts) []Result {
	if f.Config == nil {
		return noConfig(f)
	}
	if !usesKernelInitiator(f.Config) {
		return one(Skip, "no iscsi resource: open-iscsi is not used", "")
	}
	if !f.Iscsid {
		return one(Fail, "iscsid is not running", "systemctl enable --now iscsid")
	}
	return one(Pass, "iscsid runs", "")
}

func checkInitiatorName(f *Facts) []Result {
	if f.Config == nil {
		return noConfig(f)
	}
	if !usesKernelInitiator(f.Config) {
		return one(Skip, "no iscsi resource: open-iscsi is not used", "")
	}
	name := f.InitiatorName
	switch {
	case f.InitiatorErr != "":
		return one(Fail, "/etc/iscsi/initiatorname.iscsi: "+f.InitiatorErr, "echo InitiatorName=$(iscsi-iname) > /etc/iscsi/initiatorname.iscsi")
	case name == "":
		return one(Fail, "/etc/iscsi/initiatorname.iscsi sets no InitiatorName", "echo InitiatorName=$(iscsi-iname) > /etc/iscsi/initiatorname.iscsi")
	}
	peer := f.PeerInitiatorName
	src := "the peer's (--peer-initiator-name)"
	if peer == "" {
		// Unknown: compare with the name tandem derives for the peer.
		peer, src = fence.InitiatorName(f.Config.Cluster, f.Config.Peer), "the name tandem derives for "+f.Config.Peer
	}
	if name == peer {
		return one(Fail, "InitiatorName "+name+" is also "+src+": the target cannot tell the nodes apart (one session replaces the other, reservations mix)",
			"give this node its own: echo InitiatorName=$(iscsi-iname) > /etc/iscsi/initiatorname.iscsi; systemctl restart iscsid; then update the target's ACL")
	}
	if f.PeerInitiatorName == "" {
		return one(Warn, "InitiatorName "+name+"; the peer's is unknown here",
			"run doctor with --peer-initiator-name (the value of the peer's /etc/iscsi/initiatorname.iscsi)")
	}
	return one(Pass, "InitiatorName "+name+" differs from the peer's", "")
}

func checkLogins(f *Facts) []Result {
	if f.Config == nil {
		return noConfig(f)
	}
	if len(f.Logins) == 0 {
		return one(Skip, "no native session configured (fence portal/target, disk_heartbeat portal)", "")
	}
	var out []Result
	for _, l := range f.Logins {
		r := Result{Name: l.What, Status: Pass}
		auth := "without CHAP"
		if l.CHAP {
			auth = "with the configured CHAP"
		}
		switch {
		case l.Err != "":
			r.Status, r.Detail = Fail, fmt.Sprintf("login to %s at %s %s failed: %s", l.Target, l.Portal, auth, l.Err)
			r.Fix = "check the portal answers (tandemctl target on the storage server), the IQN, and that user and secret_file match the target's CHAP (tandemctl chap set)"
		case l.PRErr != "":
			r.Status, r.Detail = Fail, fmt.Sprintf("LUN %d: PERSISTENT RESERVE IN REPORT CAPABILITIES failed: %s", l.LUN, l.PRErr)
			r.Fix = "use a target with SCSI-3 persistent reservations (tandem-target has them)"
		case l.PRTypes != nil && !slices.Contains(l.PRTypes, uint8(fence.Type5)):
			r.Status, r.Detail = Fail, fmt.Sprintf("LUN %d does not offer Write Exclusive, Registrants Only (type 5): types %v", l.LUN, l.PRTypes)
			r.Fix = "use a target with SCSI-3 persistent reservations of type 5 (tandem-target has them)"
		default:
			r.Detail = fmt.Sprintf("logged in to %s at %s %s; LUN %d offers reservation type 5", l.Target, l.Portal, auth, l.LUN)
		}
		out = append(out, r)
	}
	return out
}

func checkMQ(f *Facts) []Result {
	if f.Config == nil {
		return noConfig(f)
	}
	if len(f.MQ) == 0 {
		return one(Skip, "no mq resource with shared_mount", "")
	}
	var out []Result
	for _, m := range f.MQ {
		r := Result{Name: m.Name, Status: Pass}
		if m.Err != "" {
			r.Status, r.Detail = Skip, "paths of "+m.QMgr+" unknown here: "+m.Err
			r.Fix = "run doctor on the active node, where the shared filesystem is mounted"
			out = append(out, r)
			continue
		}
		for _, c := range []struct {
			what, path, sub string
			dev             bool
		}{{"data", m.Data, "qmgrs", m.DataOnMountDev}, {"log", m.Log, "log", m.LogOnMountDev}} {
			if r.Status == Pass && (!mqres.Within(c.path, m.SharedMount) || !c.dev) {
				r.Status = Fail
				r.Detail = fmt.Sprintf("queue manager %s has its %s path %s outside the shared filesystem %s: the peer cannot see it", m.QMgr, c.what, c.path, m.SharedMount)
				r.Fix = fmt.Sprintf("recreate it on the shared filesystem: crtmqm -md %s -ld %s %s",
					filepath.Join(m.SharedMount, "qmgrs"), filepath.Join(m.SharedMount, "log"), m.QMgr)
			}
		}
		if r.Status == Pass {
			r.Detail = fmt.Sprintf("%s: data %s and log %s on %s", m.QMgr, m.Data, m.Log, m.SharedMount)
		}
		out = append(out, r)
	}
	return out
}

func checkRealtime(f *Facts) []Result {
	var out []Result
	if f.Realtime {
		out = append(out, Result{Name: "scheduling", Status: Pass, Detail: "SCHED_RR permitted (CAP_SYS_NICE or RLIMIT_RTPRIO)"})
	} else {
		out = append(out, Result{Name: "scheduling", Status: Warn, Detail: "no CAP_SYS_NICE nor RLIMIT_RTPRIO: the heartbeat threads run at normal priority and a loaded host can delay them past deadtime",
			Fix: "run the agent as root or with AmbientCapabilities=CAP_SYS_NICE (the packaged unit does)"})
	}
	if f.Mlock {
		out = append(out, Result{Name: "mlock", Status: Pass, Detail: "memory locking permitted (CAP_IPC_LOCK or unlimited RLIMIT_MEMLOCK)"})
	} else {
		out = append(out, Result{Name: "mlock", Status: Warn, Detail: "no CAP_IPC_LOCK and a limited RLIMIT_MEMLOCK: the agent can be paged out under memory pressure",
			Fix: "run the agent as root or with CAP_IPC_LOCK (the packaged unit does), or LimitMEMLOCK=infinity"})
	}
	return out
}

func checkTargetConfig(f *Facts) []Result {
	if f.TargetConfigErr != "" {
		return one(Fail, f.TargetConfigPath+": "+f.TargetConfigErr, "fix it (tandem-target --check --config "+f.TargetConfigPath+")")
	}
	return one(Pass, f.TargetConfigPath+" is valid", "")
}
