// Package heartbeat converts a Linux-HA heartbeat 3 configuration (ha.cf,
// haresources, authkeys; man ha.cf) into tandem-agent's ha/config.Config.
//
// It is pure: Convert takes the files' text and facts about them (the
// authkeys mode, which resource.d scripts exist) and returns the Config,
// the key for its key file and a finding for every line that has no
// equivalent or was unsafe. tandemctl reads and writes the files.
//
// The mapping, directive by directive:
//
//	node A / node B              nodes (exactly two; names keep their case)
//	keepalive, deadtime,         timing (unitless = seconds, "ms" allowed);
//	initdead                     heartbeat's defaults where absent
//	warntime                     no equivalent
//	udpport                      every link's port
//	bcast DEV...                 one broadcast link per device
//	mcast DEV GROUP PORT TTL L   a multicast link (its own port)
//	ucast DEV IP                 a unicast link per device; each IP is given
//	                             to its node through Input.Addresses
//	auto_failback on|off|legacy  failback.auto_failback (legacy = off)
//	haresources NODE RES...      failback.preferred, resources in order:
//	  IP/BITS/DEV, IPaddr::..    vip (IPaddr keeps its 10 ARPs 500ms apart)
//	  IPaddr2::...               vip
//	  Filesystem::D::M::T[::O]   filesystem
//	  mq::QM                     mq (tandem's resource.d mq command)
//	  anything else              script: resource.d/NAME, else /etc/init.d/NAME
//	authkeys auth N / N sha1|md5 key_file content (crc: a new random key)
package heartbeat

import (
	"cmp"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"math"
	"net/netip"
	"path"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/tandem-ha/tandem/ha/config"
	"github.com/tandem-ha/tandem/ha/fsm"
	"github.com/tandem-ha/tandem/ha/resource"
	"github.com/tandem-ha/tandem/tools/importer"
)

// File names inside the heartbeat directory (/etc/ha.d).
const (
	HaCf        = "ha.cf"
	Haresources = "haresources"
	Authkeys    = "authkeys"
	ResourceDir = "resource.d"
	InitDir     = "/etc/init.d"
)

// Heartbeat's own defaults (man ha.cf), used where ha.cf is silent so the
// imported cluster keeps the timing it had.
const (
	hbKeepalive = time.Second
	hbDeadTime  = 30 * time.Second
	hbPort      = 694
)

// Sample key of heartbeat's shipped authkeys: never a secret.
const sampleKey = "PutYourSuperSecretKeyHere"

// Input is what Convert reads.
type Input struct {
	// Dir is the heartbeat directory as the nodes see it (/etc/ha.d):
	// script resources point into Dir/resource.d.
	Dir string
	// HaCf, Haresources and Authkeys are the files' contents; Haresources
	// and Authkeys may be empty (missing).
	HaCf, Haresources, Authkeys string
	// AuthkeysMode is authkeys' permission bits.
	AuthkeysMode fs.FileMode
	// Scripts lists the file names in Dir/resource.d.
	Scripts []string
	// InitDir is where scripts missing from resource.d are looked up
	// (heartbeat's fallback); empty means /etc/init.d.
	InitDir string
	// Addresses maps an IP of a ucast line to its node (from /etc/hosts or
	// the command line): ha.cf names only the peer's address.
	Addresses map[string]string
	// MQQueueManager, when set, turns a bare `mq` resource (the seed's own
	// resource.d script) into tandem's mq resource for this queue manager.
	MQQueueManager string
	// KeyFile is the path written into key_file.
	KeyFile string
	// Rand supplies a new key when authkeys has none (crc).
	Rand io.Reader
}

// Result is what Convert returns.
type Result struct {
	Config config.Config
	// Key is key_file's content (mode 0600); never print it.
	Key      []byte
	Findings []importer.Finding
}

// Convert maps a heartbeat configuration onto a tandem-agent Config. An
// error means no usable Config (no two nodes, no heartbeat link...); every
// lesser problem is a finding.
func Convert(in Input) (*Result, error) {
	c := &converter{in: in, res: &Result{Config: config.Config{KeyFile: in.KeyFile}}}
	if err := c.haCf(); err != nil {
		return nil, err
	}
	if err := c.haresources(); err != nil {
		return nil, err
	}
	if err := c.authkeys(); err != nil {
		return nil, err
	}
	c.safety()
	rank := map[string]int{HaCf: 0, Haresources: 1, Authkeys: 2, "": 3}
	slices.SortStableFunc(c.res.Findings, func(a, b importer.Finding) int {
		if d := rank[a.File] - rank[b.File]; d != 0 {
			return d
		}
		la, lb := a.Line, b.Line // whole-file remarks after the numbered lines
		if la == 0 {
			la = math.MaxInt
		}
		if lb == 0 {
			lb = math.MaxInt
		}
		return cmp.Compare(la, lb)
	})
	return c.res, nil
}

type converter struct {
	in        Input
	res       *Result
	timeLines map[string]int // directive -> its ha.cf line
}

func (c *converter) add(kind importer.Kind, file string, line int, directive, format string, args ...any) {
	c.res.Findings = append(c.res.Findings, importer.Finding{Kind: kind, File: file, Line: line,
		Directive: directive, Message: fmt.Sprintf(format, args...)})
}

// ParseTime reads a heartbeat time: seconds when unitless ("2", "1.7"),
// or milliseconds with "ms".
func ParseTime(s string) (time.Duration, error) {
	v, unit := s, time.Second
	if strings.HasSuffix(s, "ms") {
		v, unit = strings.TrimSuffix(s, "ms"), time.Millisecond
	}
	f, err := strconv.ParseFloat(v, 64)
	if err != nil || f <= 0 {
		return 0, fmt.Errorf("%q is not a time: heartbeat writes seconds (2, 1.7) or milliseconds (1500ms)", s)
	}
	return time.Duration(f * float64(unit)).Round(time.Millisecond), nil
}

func (c *converter) haCf() error {
	cfg := &c.res.Config
	var keepalive, deadtime, initdead time.Duration
	port := 0
	c.timeLines = map[string]int{}
	var ucast []importer.Line
	for _, l := range importer.SplitLines(c.in.HaCf) {
		d, args := l.Fields[0], l.Fields[1:]
		unmapped := func(why string) { c.add(importer.Unmapped, HaCf, l.N, d, "%s", why) }
		switch d {
		case "node":
			cfg.Nodes = append(cfg.Nodes, args...)
		case "keepalive", "deadtime", "initdead", "warntime":
			if len(args) != 1 {
				return fmt.Errorf("%s:%d: %s takes one time", HaCf, l.N, d)
			}
			t, err := ParseTime(args[0])
			if err != nil {
				return fmt.Errorf("%s:%d: %s: %w", HaCf, l.N, d, err)
			}
			c.timeLines[d] = l.N
			switch d {
			case "keepalive":
				keepalive = t
			case "deadtime":
				deadtime = t
			case "initdead":
				initdead = t
			case "warntime":
				unmapped("tandem-agent has no early warning; its status and metrics show each link's last heartbeat instead")
			}
		case "udpport":
			p, err := strconv.Atoi(strings.Join(args, ""))
			if err != nil || p < 1 || p > 65535 {
				return fmt.Errorf("%s:%d: udpport %q is not a port", HaCf, l.N, strings.Join(args, " "))
			}
			port = p
			c.add(importer.Note, HaCf, l.N, d, "port %d kept for every link; heartbeat and tandem-agent cannot both use it, so stop heartbeat before starting tandem-agent (or drop port to use %d)", p, config.DefaultPort)
		case "bcast":
			for _, dev := range args {
				cfg.Links = append(cfg.Links, config.Link{Name: dev, Mode: config.ModeBroadcast, Interface: dev})
			}
		case "mcast":
			if len(args) != 5 {
				return fmt.Errorf("%s:%d: mcast needs DEV GROUP PORT TTL LOOP, found %q", HaCf, l.N, strings.Join(args, " "))
			}
			p, err := strconv.Atoi(args[2])
			if err != nil {
				return fmt.Errorf("%s:%d: mcast port %q is not a number", HaCf, l.N, args[2])
			}
			cfg.Links = append(cfg.Links, config.Link{Name: args[0] + "-mcast", Mode: config.ModeMulticast, Interface: args[0], Group: args[1], Port: p})
			if args[3] != "1" || args[4] != "0" {
				c.add(importer.Note, HaCf, l.N, d, "ttl %s and loop %s not carried over: tandem-agent sends with TTL 1 and no loopback, enough for two nodes on one segment", args[3], args[4])
			}
		case "ucast":
			if len(args) != 2 {
				return fmt.Errorf("%s:%d: ucast needs DEV PEER_IP, found %q", HaCf, l.N, strings.Join(args, " "))
			}
			ucast = append(ucast, l)
		case "auto_failback":
			switch strings.Join(args, " ") {
			case "on":
				cfg.Failback.AutoFailback = true
			case "off":
			case "legacy":
				c.add(importer.Warning, HaCf, l.N, d, "legacy is not supported: imported as off (the group stays where it is when the preferred node returns); set failback.auto_failback: true to move it back")
			default:
				return fmt.Errorf("%s:%d: auto_failback %q: heartbeat takes on, off or legacy", HaCf, l.N, strings.Join(args, " "))
			}
		case "crm", "pacemaker":
			if len(args) == 1 && (args[0] == "off" || args[0] == "no" || args[0] == "false") {
				continue // the default: nothing to carry
			}
			unmapped("a CRM cluster's configuration lives in its CIB, not in ha.cf: tandem-agent replaces heartbeat's haresources mode only")
		case "ping", "ping_group":
			unmapped("tandem-agent has no ping nodes; a resource failing its monitor (vip checks its interface) moves the group instead")
		case "respawn":
			unmapped("tandem-agent does not supervise other programs: run " + strings.Join(args[1:], " ") + " as a systemd service")
		case "logfacility", "logfile", "debugfile", "debug", "use_logd":
			unmapped("tandem-agent logs to stderr (the journal under systemd); set log.level and log.format")
		case "stonith", "stonith_host":
			unmapped("tandem fences with SCSI persistent reservations: see the fence proposal below")
		default:
			unmapped("no equivalent in tandem-agent")
		}
	}
	if len(cfg.Nodes) != 2 {
		return fmt.Errorf("%s: %d node lines (%q): tandem runs exactly two nodes; list both with `node NAME`", HaCf, len(cfg.Nodes), cfg.Nodes)
	}
	c.ucastLinks(ucast)
	if port != 0 {
		for i := range cfg.Links {
			if cfg.Links[i].Mode != config.ModeMulticast { // mcast lines carry their own port
				cfg.Links[i].Port = port
			}
		}
	} else {
		c.add(importer.Note, HaCf, 0, "udpport", "not set (heartbeat used %d): the links use tandem-agent's %d, so both can run during the migration; open %d/udp between the nodes", hbPort, config.DefaultPort, config.DefaultPort)
	}
	if len(cfg.Links) == 0 {
		return fmt.Errorf("%s: no bcast, mcast or ucast line: tandem-agent needs at least one heartbeat link", HaCf)
	}
	cfg.Timing = c.timing(keepalive, deadtime, initdead)
	return nil
}

// ucastLinks makes one unicast link per device of the ucast lines. Each
// line names one IP; which node owns it comes from Input.Addresses.
func (c *converter) ucastLinks(lines []importer.Line) {
	cfg := &c.res.Config
	var devs []string
	byDev := map[string]map[string]string{}
	for _, l := range lines {
		dev, ip := l.Fields[1], l.Fields[2]
		node, ok := c.in.Addresses[ip]
		if !ok {
			c.add(importer.Warning, HaCf, l.N, "ucast", "cannot tell which node owns %s: pass --address NODE=%s (or list it in /etc/hosts); the line was left out", ip, ip)
			continue
		}
		if !slices.Contains(cfg.Nodes, node) {
			c.add(importer.Warning, HaCf, l.N, "ucast", "%s belongs to %q, which is not a node (%q): the line was left out", ip, node, cfg.Nodes)
			continue
		}
		if byDev[dev] == nil {
			byDev[dev] = map[string]string{}
			devs = append(devs, dev)
		}
		byDev[dev][node] = ip
	}
	for _, dev := range devs {
		addrs := byDev[dev]
		if len(addrs) != 2 {
			c.add(importer.Warning, HaCf, 0, "ucast", "%s: the address of only one node is known (%v): add `ucast %s OTHER_IP` (heartbeat ignores a ucast to its own address, so both can share one file); the link was left out", dev, addrs, dev)
			continue
		}
		cfg.Links = append(cfg.Links, config.Link{Name: dev, Mode: config.ModeUnicast, Interface: dev, Addresses: addrs})
	}
}

// timing applies heartbeat's defaults and its initdead rule, then makes
// the result pass tandem's rules (fsm.Timing.Validate), saying what moved.
func (c *converter) timing(keepalive, deadtime, initdead time.Duration) config.Timing {
	if keepalive == 0 {
		keepalive = hbKeepalive
	}
	if deadtime == 0 {
		deadtime = hbDeadTime
	}
	if initdead == 0 {
		switch {
		case deadtime > 10*time.Second:
			initdead = deadtime
		case deadtime < 6*time.Second:
			initdead = 12 * time.Second
		default:
			initdead = 2 * deadtime
		}
	}
	if initdead < deadtime {
		c.add(importer.Warning, HaCf, c.timeLines["initdead"], "initdead", "%s is less than deadtime %s: raised to %s (a starting node must wait at least deadtime for its peer)", initdead, deadtime, deadtime)
		initdead = deadtime
	}
	if initdead < 10*time.Second {
		c.add(importer.Warning, HaCf, c.timeLines["initdead"], "initdead", "%s: a node started alone takes the resources after initdead; under 10s the peer may still be booting its network", initdead)
	}
	t := fsm.Timing{Keepalive: keepalive, DeadTime: deadtime, InitDead: initdead}
	if err := t.Validate(); err != nil {
		c.add(importer.Warning, HaCf, c.timeLines["deadtime"], "deadtime", "%v (heartbeat refuses it too)", err)
	}
	return config.Timing(t)
}

func (c *converter) haresources() error {
	cfg := &c.res.Config
	lines := importer.SplitLines(c.in.Haresources)
	if len(lines) == 0 {
		c.add(importer.Warning, Haresources, 0, "", "missing or empty: the imported group has no resources; add them under resources")
		return nil
	}
	for _, l := range lines[1:] {
		c.add(importer.Unmapped, Haresources, l.N, l.Fields[0], "a second resource group: tandem-agent runs one group, so this line was left out; merge its resources into the first line's if they must move together")
	}
	l := lines[0]
	pref := l.Fields[0]
	if !slices.Contains(cfg.Nodes, pref) {
		return fmt.Errorf("%s:%d: preferred node %q is not a node of %s (%q): node names keep their case", Haresources, l.N, pref, HaCf, cfg.Nodes)
	}
	cfg.Failback.Preferred = pref
	names := map[string]int{}
	for _, r := range l.Fields[1:] {
		spec, ok := c.resource(l.N, r)
		if !ok {
			continue
		}
		names[spec.Name]++
		if n := names[spec.Name]; n > 1 {
			spec.Name += "-" + strconv.Itoa(n)
		}
		cfg.Resources = append(cfg.Resources, spec)
	}
	return nil
}

// resource maps one haresources word.
func (c *converter) resource(line int, word string) (resource.Spec, bool) {
	parts := strings.Split(word, "::")
	typ, args := parts[0], parts[1:]
	if len(args) == 0 && strings.Count(typ, ".") == 3 {
		if _, err := netip.ParseAddr(strings.SplitN(typ, "/", 2)[0]); err == nil {
			typ, args = "IPaddr", []string{typ} // a bare IP means IPaddr
		}
	}
	bad := func(format string, a ...any) (resource.Spec, bool) {
		c.add(importer.Warning, Haresources, line, word, format+"; the resource was left out", a...)
		return resource.Spec{}, false
	}
	switch typ {
	case "IPaddr", "IPaddr2":
		if len(args) != 1 {
			return bad("%s takes one argument IP/BITS/DEV", typ)
		}
		f := strings.Split(args[0], "/")
		if len(f) < 3 {
			return bad("%s without prefix length and device: heartbeat guessed them from the routing table, tandem needs them: write %s/24/eth0 with your own values", f[0], f[0])
		}
		if len(f) > 3 {
			c.add(importer.Note, Haresources, line, word, "broadcast %s not carried over: the kernel derives it from the prefix", f[3])
		}
		spec := resource.Spec{Type: "vip", Name: "vip-" + f[0], Params: map[string]string{"address": f[0] + "/" + f[1], "interface": f[2]}}
		if typ == "IPaddr" { // keep IPaddr's announcements: 10 ARP pairs 500 ms apart
			spec.Params["arp_count"], spec.Params["arp_interval"] = "10", "500ms"
		}
		return spec, true
	case "Filesystem":
		if len(args) < 3 || len(args) > 4 {
			return bad("Filesystem takes DEVICE::DIRECTORY::FSTYPE[::OPTIONS]")
		}
		p := map[string]string{"device": args[0], "directory": args[1], "fstype": args[2]}
		if len(args) == 4 {
			p["options"] = args[3]
		}
		return resource.Spec{Type: "filesystem", Name: "fs-" + safeName(args[1]), Params: p}, true
	case "mq":
		qm := c.in.MQQueueManager
		if len(args) > 0 {
			qm = args[0]
		}
		if qm != "" {
			spec := resource.Spec{Type: "mq", Name: qm, Params: map[string]string{"qmgr": qm}}
			if len(args) > 1 {
				c.add(importer.Warning, Haresources, line, word, "arguments after the queue manager (%q) are not carried over: set mqres's params (mqbin, user, shared_mount) instead", strings.Join(args[1:], "::"))
			}
			return spec, true
		}
		spec, ok := c.script(line, word, typ, args)
		if ok {
			y := yamlBlock(config.Config{Resources: []resource.Spec{{Type: "mq", Name: "QM1", Params: map[string]string{"qmgr": "QM1"}}}})
			c.res.Findings = append(c.res.Findings, importer.Finding{Kind: importer.Note, File: Haresources, Line: line, Directive: word,
				Message: "imported as a script resource, since the queue manager is unknown; if it drives an IBM MQ queue manager, tandem's mq resource stops it with endmqm's escalation and judges it by dspmq: rerun with --mq-qmgr QM, or replace the resource with (your queue manager's name for QM1):",
				YAML:    y})
		}
		return spec, ok
	}
	return c.script(line, word, typ, args)
}

// script maps a resource.d (or init.d) script; heartbeat calls both as
// SCRIPT [ARGS] start|stop|status and judges status by stdout, as
// tandem's script type does.
func (c *converter) script(line int, word, name string, args []string) (resource.Spec, bool) {
	p := path.Join(c.in.Dir, ResourceDir, name)
	if !slices.Contains(c.in.Scripts, name) {
		initDir := c.in.InitDir
		if initDir == "" {
			initDir = InitDir
		}
		p = path.Join(initDir, name)
		c.add(importer.Note, Haresources, line, word, "not in %s: imported as %s, which heartbeat falls back to; check it exists on both nodes", path.Join(c.in.Dir, ResourceDir), p)
	}
	params := map[string]string{"path": p}
	if len(args) > 0 {
		params["args"] = strings.Join(args, " ")
		if slices.ContainsFunc(args, func(a string) bool { return strings.ContainsAny(a, " \t") }) {
			c.add(importer.Warning, Haresources, line, word, "an argument contains a space, which script args split on: check the args param")
		}
	}
	return resource.Spec{Type: "script", Name: safeName(name), Params: params}, true
}

// safeName makes a resource name (no spaces or slashes) from s.
func safeName(s string) string {
	s = strings.Trim(s, "/")
	if s == "" {
		return "root"
	}
	return strings.NewReplacer("/", "-", " ", "-", "\t", "-").Replace(s)
}

func (c *converter) authkeys() error {
	lines := importer.SplitLines(c.in.Authkeys)
	if len(lines) == 0 {
		return fmt.Errorf("%s: missing or empty: heartbeat needs it too; tandem-agent needs its key", Authkeys)
	}
	if c.in.AuthkeysMode.Perm()&0o077 != 0 {
		c.add(importer.Warning, Authkeys, 0, "", "mode %04o: readable by group or others (heartbeat refuses to start so); the imported key file is written 0600, and run chmod 600 on the original too", c.in.AuthkeysMode.Perm())
	}
	active := ""
	keys := map[string]importer.Line{}
	for _, l := range lines {
		if l.Fields[0] == "auth" {
			if len(l.Fields) != 2 {
				return fmt.Errorf("%s:%d: auth takes one key number", Authkeys, l.N)
			}
			active = l.Fields[1]
			continue
		}
		keys[l.Fields[0]] = l
	}
	if active == "" {
		return fmt.Errorf("%s: no `auth N` line: say which key is in use", Authkeys)
	}
	for _, l := range lines {
		if l.Fields[0] != "auth" && l.Fields[0] != active {
			c.add(importer.Unmapped, Authkeys, l.N, l.Fields[0], "an inactive key: tandem-agent has one key (key_file); left out")
		}
	}
	l, ok := keys[active]
	if !ok || len(l.Fields) < 2 {
		return fmt.Errorf("%s: auth %s but no key line `%s sha1 SECRET`", Authkeys, active, active)
	}
	switch method := l.Fields[1]; method {
	case "sha1", "md5":
		if len(l.Fields) != 3 {
			return fmt.Errorf("%s:%d: %s needs a key: `%s %s SECRET`", Authkeys, l.N, method, active, method)
		}
		key := []byte(l.Fields[2])
		switch {
		case l.Fields[2] == sampleKey:
			c.add(importer.Warning, Authkeys, l.N, active+" "+method, "the key is the placeholder of heartbeat's sample authkeys, known to anyone: write a new random key into key_file on both nodes (head -c 32 /dev/urandom | base64)")
		case len(key) < config.MinKeyLen:
			c.add(importer.Warning, Authkeys, l.N, active+" "+method, "the key is %d bytes, tandem-agent needs %d: a new random key was written instead; copy key_file to the other node", len(key), config.MinKeyLen)
			return c.newKey()
		}
		c.add(importer.Note, Authkeys, l.N, active+" "+method, "the same secret keys tandem-agent's HMAC-SHA256 (key_file, mode 0600)")
		c.res.Key = key
	case "crc":
		c.add(importer.Warning, Authkeys, l.N, active+" crc", "crc authenticates nothing: anyone on the heartbeat network could speak for a node; a new random key was written to key_file: copy it to the other node")
		return c.newKey()
	default:
		return fmt.Errorf("%s:%d: method %q: heartbeat knows sha1, md5 and crc", Authkeys, l.N, method)
	}
	return nil
}

func (c *converter) newKey() error {
	if c.in.Rand == nil {
		return errors.New("no random source for a new key")
	}
	b := make([]byte, 32)
	if _, err := io.ReadFull(c.in.Rand, b); err != nil {
		return fmt.Errorf("new key: %w", err)
	}
	c.res.Key = []byte(base64.StdEncoding.EncodeToString(b))
	return nil
}

// safety adds the warnings for what heartbeat left unsafe: one link, no
// fencing of the shared disk.
func (c *converter) safety() {
	cfg := &c.res.Config
	if len(cfg.Links) == 1 {
		c.add(importer.Warning, HaCf, 0, "", "a single heartbeat link (%s): when it fails both nodes take the resources (dual active); add a second link on another network, and the disk heartbeat below", cfg.Links[0].Name)
	}
	devices := "/dev/disk/by-path/ip-PORTAL-iscsi-TARGET-lun-0"
	at := 0 // first, unless a filesystem says where the disk starts being used
	for i, r := range cfg.Resources {
		if r.Type == "filesystem" {
			at = i
			if d, ok := scsiDisk(r.Params["device"]); ok {
				devices = d
			}
			break
		}
	}
	fence := resource.Spec{Type: "fence", Name: "fence", Params: map[string]string{"type": "scsi-pr", "devices": devices}}
	fence.Monitor.Interval = time.Second
	y := yamlBlock(config.Config{Resources: []resource.Spec{fence}})
	where := "first in resources"
	if at < len(cfg.Resources) {
		where = "before " + cfg.Resources[at].Name + " (nothing may write the shared disk before the reservation is this node's)"
	}
	where += "; devices is the shared iSCSI disk itself, not a partition or a logical volume on it"
	c.res.Findings = append(c.res.Findings, importer.Finding{Kind: importer.Warning, Message: "no fencing: heartbeat let both nodes write the shared disk after a partition (dual active). Add the SCSI-PR fence resource " + where + ":", YAML: y})
	dh := yamlBlock(config.Config{DiskHeartbeat: config.DiskHeartbeat{Device: "/dev/disk/by-path/ip-PORTAL-iscsi-TARGET-lun-9"}})
	c.res.Findings = append(c.res.Findings, importer.Finding{Kind: importer.Warning, Message: "no disk heartbeat: add a small arbiter LUN that no reservation covers, so a cut network alone never looks like a dead peer:", YAML: dh})
}

// scsiDisk returns the whole SCSI disk of a Filesystem device when the
// device names one (/dev/sdb1 -> /dev/sdb, by-path/by-id links as they
// are); a logical volume or md device hides the disk.
func scsiDisk(dev string) (string, bool) {
	switch {
	case strings.HasPrefix(dev, "/dev/disk/by-path/"), strings.HasPrefix(dev, "/dev/disk/by-id/"):
		if i := strings.LastIndex(dev, "-part"); i > 0 {
			return dev[:i], true
		}
		return dev, true
	case strings.HasPrefix(dev, "/dev/sd"):
		return strings.TrimRight(dev, "0123456789"), true
	}
	return "", false
}

// yamlBlock renders a fragment of agent.yaml exactly as ha/config writes
// (and reads) it: only the fields set in part.
func yamlBlock(part config.Config) string {
	b, err := part.Marshal()
	if err != nil {
		return "# " + err.Error() + "\n"
	}
	return string(b)
}
