// Package tgt converts tgt's /etc/tgt/targets.conf (targets.conf(5), read
// by tgt-admin) into tandem-target's target/config.Config.
//
// It is pure: Convert reads the file and its includes from an fs.FS and
// returns the Config, the CHAP secrets to write into 0600 files and a
// finding for every line without equivalent. tandemctl writes the files.
//
// The mapping:
//
//	<target IQN> ... </target>       targets[i] (name lowercased: RFC 3722)
//	backing-store P, direct-store P  luns, numbered as tgt-admin numbers them:
//	<backing-store P> lun N ...      a `lun N` keeps N; the others take the
//	                                 lowest free number from 1 (0 was tgt's
//	                                 controller), backing stores before direct
//	                                 stores, each kind in sorted path order
//	readonly, write-cache,           luns[j].read_only, write_cache,
//	block-size, scsi_sn              block_size, serial (target level: every LUN)
//	incominguser U P                 chap.user + secret_file (first one only)
//	outgoinguser U P                 chap.mutual_user + mutual_secret_file
//	initiator-name N                 initiators (the ACL)
//	initiator-address A              no equivalent (tandem's ACL is by name)
//	incomingdiscoveryuser U P,       discovery.chap
//	outgoingdiscoveryuser U P
//	include GLOB                     read in place
//
// tgtd listens on every address; the config listens on ":3260".
package tgt

import (
	"cmp"
	"fmt"
	"io/fs"
	"math"
	"path"
	"slices"
	"strconv"
	"strings"

	tconfig "github.com/tandem-ha/tandem/target/config"
	"github.com/tandem-ha/tandem/tools/importer"
)

// DefaultPath is tgt-admin's configuration file.
const DefaultPath = "/etc/tgt/targets.conf"

// Input is what Convert reads.
type Input struct {
	// FS holds the files; paths are absolute paths without the leading
	// slash (os.DirFS("/")), so include lines resolve as tgt-admin's do.
	FS fs.FS
	// Path is the main file, absolute (DefaultPath).
	Path string
	// SecretDir is the directory of the secret files as written into the
	// config (relative paths are relative to the config file).
	SecretDir string
}

// Secret is a CHAP secret for a file of mode 0600; never print Data.
type Secret struct {
	Path string
	Data []byte
}

// Result is what Convert returns.
type Result struct {
	Config   *tconfig.Config
	Secrets  []Secret
	Findings []importer.Finding
}

// lunDirectives are the LUN-level directives tandem has a field for.
var lunDirectives = []string{"lun", "readonly", "write-cache", "block-size", "scsi_sn", "bs-type"}

// LUN-level directives of targets.conf(5) without an equivalent, with why.
var lunUnmapped = map[string]string{
	"scsi_id":           "tandem derives the device identifier (VPD 0x83) from the serial",
	"vendor_id":         "tandem reports its own vendor and product",
	"product_id":        "tandem reports its own vendor and product",
	"product_rev":       "tandem reports its own revision",
	"sense_format":      "tandem chooses the sense format the initiator asks for",
	"removable":         "tandem serves fixed disks",
	"mode_page":         "tandem's mode pages follow its settings (write_cache)",
	"device-type":       "tandem serves disks (SBC) only",
	"allow-in-use":      "tandem refuses two LUNs on one path",
	"lbppbe":            "tandem reports one logical block per physical block",
	"la_lba":            "tandem reports alignment 0",
	"optimal_xfer_gran": "tandem reports its own block limits",
	"optimal_xfer_len":  "tandem reports its own block limits",
	"params":            "no tgtadm to pass parameters to",
	"path":              "use the backing-store path",
	"bsopts":            "tandem's stores have no options",
	"bsoflags":          "tandem opens files its own way (O_DIRECT is not used)",
	"online":            "tandem's LUNs are always online",
}

type lunSpec struct {
	path   string
	direct bool
	line   int
	file   string
	opts   map[string]importer.Line // directive -> its line
}

type targetSpec struct {
	name string
	file string
	line int
	opts []importer.Line // target-level lines in order
	luns []*lunSpec
}

type converter struct {
	in      Input
	res     *Result
	targets []*targetSpec
	global  []located
	files   []string // in reading order, to sort findings
	depth   int
}

type located struct {
	file string
	importer.Line
}

// Convert maps targets.conf onto a tandem-target Config.
func Convert(in Input) (*Result, error) {
	c := &converter{in: in, res: &Result{}}
	if err := c.parseFile(in.Path, nil); err != nil {
		return nil, err
	}
	cfg := tconfig.DefaultConfig()
	cfg.Listen = []string{":3260"}
	c.note(importer.Note, "", 0, "", "LUNs keep tgt's numbers (1.., 0 was tgt's controller), so /dev/disk/by-path names stay; serial numbers and device identifiers change where scsi_sn was not set (tgt derived them from the tid), so update multipath and fstab entries that use by-id or the WWID")
	c.note(importer.Note, "", 0, "", "tgtd listens on every address (its portal is set on tgtd's command line, not here): listen is \":3260\"; narrow it to the storage network's address")
	for _, l := range c.global {
		c.globalLine(cfg, l)
	}
	seen := map[string]*targetSpec{}
	for _, t := range c.targets {
		if prev, dup := seen[strings.ToLower(t.name)]; dup {
			c.note(importer.Warning, t.file, t.line, "target", "%s is defined again (first at %s:%d): tgt-admin merges nothing; this one was left out", t.name, prev.file, prev.line)
			continue
		}
		seen[strings.ToLower(t.name)] = t
		cfg.Targets = append(cfg.Targets, c.target(t))
	}
	rank := map[string]int{}
	for i, f := range c.files {
		rank[f] = i
	}
	slices.SortStableFunc(c.res.Findings, func(a, b importer.Finding) int {
		ra, rb := rank[a.File], rank[b.File]
		if a.File == "" {
			ra = math.MaxInt
		}
		if b.File == "" {
			rb = math.MaxInt
		}
		if d := cmp.Compare(ra, rb); d != 0 {
			return d
		}
		return cmp.Compare(a.Line, b.Line)
	})
	c.res.Config = cfg
	return c.res, nil
}

func (c *converter) note(kind importer.Kind, file string, line int, directive, format string, args ...any) {
	c.res.Findings = append(c.res.Findings, importer.Finding{Kind: kind, File: file, Line: line,
		Directive: directive, Message: fmt.Sprintf(format, args...)})
}

// parseFile reads one file into c.targets and c.global, following include
// lines in place.
func (c *converter) parseFile(name string, from *located) error {
	if c.depth > 8 {
		return fmt.Errorf("%s:%d: includes nested more than 8 deep: an include loop?", from.file, from.N)
	}
	b, err := fs.ReadFile(c.in.FS, strings.TrimPrefix(name, "/"))
	if err != nil {
		return fmt.Errorf("read %s: %w", name, err)
	}
	c.files = append(c.files, name)
	var tgt *targetSpec
	var lun *lunSpec
	for _, l := range importer.SplitLines(string(b)) {
		d := l.Fields[0]
		if strings.HasPrefix(d, "<") {
			tag := strings.TrimSuffix(strings.TrimPrefix(strings.Join(l.Fields, " "), "<"), ">")
			kind, arg, _ := strings.Cut(tag, " ")
			arg = strings.TrimSpace(arg)
			switch {
			case kind == "target" && tgt == nil && arg != "":
				tgt = &targetSpec{name: arg, file: name, line: l.N}
			case kind == "/target" && tgt != nil && lun == nil:
				c.targets = append(c.targets, tgt)
				tgt = nil
			case (kind == "backing-store" || kind == "direct-store") && tgt != nil && lun == nil && arg != "":
				lun = &lunSpec{path: arg, direct: kind == "direct-store", line: l.N, file: name, opts: map[string]importer.Line{}}
			case (kind == "/backing-store" || kind == "/direct-store") && lun != nil:
				tgt.luns = append(tgt.luns, lun)
				lun = nil
			default:
				return fmt.Errorf("%s:%d: unexpected <%s>: targets.conf nests <target IQN> ... </target> and, inside, <backing-store PATH> ... </backing-store>", name, l.N, tag)
			}
			continue
		}
		switch {
		case lun != nil:
			if !slices.Contains(lunDirectives, d) {
				c.lunUnmapped(name, l)
				continue
			}
			lun.opts[d] = l
		case tgt != nil:
			switch d {
			case "backing-store", "direct-store":
				for _, p := range l.Fields[1:] {
					tgt.luns = append(tgt.luns, &lunSpec{path: p, direct: d == "direct-store", line: l.N, file: name, opts: map[string]importer.Line{}})
				}
			case "include":
				c.note(importer.Unmapped, name, l.N, d, "include inside a target is not read by tgt-admin either; left out")
			default:
				tgt.opts = append(tgt.opts, l)
			}
		case d == "include":
			if len(l.Fields) != 2 {
				return fmt.Errorf("%s:%d: include takes one path or pattern", name, l.N)
			}
			pat := l.Fields[1]
			if !path.IsAbs(pat) {
				pat = path.Join(path.Dir(name), pat)
			}
			matches, err := fs.Glob(c.in.FS, strings.TrimPrefix(pat, "/"))
			if err != nil {
				return fmt.Errorf("%s:%d: include %s: %w", name, l.N, l.Fields[1], err)
			}
			if len(matches) == 0 {
				c.note(importer.Warning, name, l.N, d, "%s matches no file; nothing included", l.Fields[1])
			}
			for _, m := range matches { // fs.Glob sorts, like Perl's glob
				c.depth++
				err := c.parseFile("/"+m, &located{name, l})
				c.depth--
				if err != nil {
					return err
				}
			}
		default:
			c.global = append(c.global, located{name, l})
		}
	}
	if tgt != nil || lun != nil {
		return fmt.Errorf("%s: ends inside <target %s>: close it with </target>", name, tgt.name)
	}
	return nil
}

func (c *converter) lunUnmapped(file string, l importer.Line) {
	why, ok := lunUnmapped[l.Fields[0]]
	if !ok {
		why = "not a directive tandem knows"
	}
	c.note(importer.Unmapped, file, l.N, l.Fields[0], "%s; left out", why)
}

func (c *converter) globalLine(cfg *tconfig.Config, l located) {
	d := l.Fields[0]
	switch d {
	case "default-driver":
		if len(l.Fields) == 2 && l.Fields[1] == "iscsi" {
			return
		}
		c.note(importer.Unmapped, l.file, l.N, d, "tandem serves iSCSI over TCP only (no iSER); left out")
	case "incomingdiscoveryuser":
		if u, ok := c.userPass(l.file, l.Line); ok {
			cfg.Discovery.CHAP.User = u
			cfg.Discovery.CHAP.SecretFile = c.secret("discovery-in.secret", l.file, l.Line)
		}
	case "outgoingdiscoveryuser":
		if u, ok := c.userPass(l.file, l.Line); ok {
			cfg.Discovery.CHAP.MutualUser = u
			cfg.Discovery.CHAP.MutualSecretFile = c.secret("discovery-out.secret", l.file, l.Line)
		}
	case "ignore-errors":
		c.note(importer.Unmapped, l.file, l.N, d, "tandem-target refuses an invalid config as a whole; left out")
	case "control-port":
		c.note(importer.Unmapped, l.file, l.N, d, "tandem-target's admin interface is a unix socket (admin_socket); left out")
	case "iSNSServerIP", "iSNSAccessControl", "iSNSServerPort", "iSNS":
		c.note(importer.Unmapped, l.file, l.N, d, "tandem-target has no iSNS client; initiators find targets by SendTargets discovery; left out")
	default:
		if slices.Contains(lunDirectives, d) || lunUnmapped[d] != "" {
			c.note(importer.Unmapped, l.file, l.N, d, "a LUN directive outside any target; left out")
			return
		}
		c.note(importer.Unmapped, l.file, l.N, d, "no equivalent in tandem-target; left out")
	}
}

func (c *converter) userPass(file string, l importer.Line) (string, bool) {
	if len(l.Fields) != 3 {
		c.note(importer.Warning, file, l.N, l.Fields[0], "takes USER PASSWORD; left out")
		return "", false
	}
	return l.Fields[1], true
}

// secret records the password of l (its third field) for a 0600 file and
// returns the file's path as the config names it.
func (c *converter) secret(name, file string, l importer.Line) string {
	pw := l.Fields[2]
	if len(pw) < tconfig.MinSecretLength {
		c.note(importer.Warning, file, l.N, l.Fields[0]+" "+l.Fields[1], "the password is %d bytes, CHAP needs at least %d (RFC 7143 section 12.1.3): tandem-target refuses it; write a longer one into %s and give it to the initiators", len(pw), tconfig.MinSecretLength, name)
	}
	p := path.Join(c.in.SecretDir, name)
	c.res.Secrets = append(c.res.Secrets, Secret{Path: p, Data: []byte(pw + "\n")})
	return p
}

// slug makes a file name part from an IQN.
func slug(iqn string) string {
	if _, rest, ok := strings.Cut(iqn, ":"); ok && rest != "" {
		iqn = rest
	}
	return strings.Map(func(r rune) rune {
		if r >= 'a' && r <= 'z' || r >= '0' && r <= '9' || r == '-' || r == '.' {
			return r
		}
		return '_'
	}, strings.ToLower(iqn))
}

func (c *converter) target(t *targetSpec) tconfig.Target {
	out := tconfig.Target{Name: strings.ToLower(t.name)}
	if out.Name != t.name {
		c.note(importer.Note, t.file, t.line, "target", "%s written in lowercase: iSCSI names compare lowercased (RFC 3722), initiators need no change", t.name)
	}
	var targetLUNOpts []importer.Line
	ins := 0
	for _, l := range t.opts {
		d := l.Fields[0]
		switch d {
		case "incominguser":
			u, ok := c.userPass(t.file, l)
			if !ok {
				continue
			}
			if ins++; ins > 1 {
				c.note(importer.Unmapped, t.file, l.N, d+" "+u, "tandem-target takes one CHAP user per target (%s is it); initiators using %s must switch; left out", out.CHAP.User, u)
				continue
			}
			out.CHAP.User = u
			out.CHAP.SecretFile = c.secret(slug(t.name)+"-in.secret", t.file, l)
		case "outgoinguser":
			u, ok := c.userPass(t.file, l)
			if !ok {
				continue
			}
			if out.CHAP.MutualUser != "" {
				c.note(importer.Unmapped, t.file, l.N, d+" "+u, "only one outgoinguser is used (tgt-admin uses the first too); left out")
				continue
			}
			out.CHAP.MutualUser = u
			out.CHAP.MutualSecretFile = c.secret(slug(t.name)+"-out.secret", t.file, l)
		case "initiator-name":
			out.Initiators = append(out.Initiators, l.Fields[1:]...)
		case "initiator-address":
			if len(l.Fields) == 2 && strings.EqualFold(l.Fields[1], "ALL") {
				continue // tgt's default: everyone
			}
			c.note(importer.Warning, t.file, l.N, d+" "+strings.Join(l.Fields[1:], " "), "not carried over, so the target is open to more initiators than before: tandem-target's ACL is by initiator name (initiators), not address: list the initiators' names, or filter port 3260 by source address in the firewall; left out")
		case "driver":
			if len(l.Fields) != 2 || l.Fields[1] != "iscsi" {
				c.note(importer.Unmapped, t.file, l.N, d, "tandem serves iSCSI over TCP only (no iSER); left out")
			}
		case "controller_tid":
			c.note(importer.Unmapped, t.file, l.N, d, "tandem has no target ids; left out")
		default:
			if slices.Contains(lunDirectives, d) && d != "lun" {
				targetLUNOpts = append(targetLUNOpts, l)
				continue
			}
			c.lunUnmapped(t.file, l)
		}
	}
	if out.CHAP.MutualUser != "" && out.CHAP.User == "" {
		c.note(importer.Warning, t.file, t.line, "outgoinguser", "mutual CHAP without incominguser: tandem-target authenticates itself only to an initiator that authenticated first; mutual_user dropped")
		out.CHAP.MutualUser, out.CHAP.MutualSecretFile = "", ""
	}
	out.LUNs = c.luns(t, targetLUNOpts)
	return out
}

// luns numbers the LUNs as tgt-admin does and applies their directives.
func (c *converter) luns(t *targetSpec, targetOpts []importer.Line) []tconfig.LUN {
	used := map[uint64]bool{}
	for _, l := range t.luns {
		if o, ok := l.opts["lun"]; ok {
			n, err := strconv.ParseUint(strings.Join(o.Fields[1:], ""), 10, 64)
			if err != nil {
				c.note(importer.Warning, l.file, o.N, "lun", "%q is not a LUN number; numbered automatically", strings.Join(o.Fields[1:], " "))
				delete(l.opts, "lun")
				continue
			}
			used[n] = true
		}
	}
	order := slices.Clone(t.luns)
	slices.SortStableFunc(order, func(a, b *lunSpec) int { // backing stores first, each kind by path
		if a.direct != b.direct {
			if a.direct {
				return 1
			}
			return -1
		}
		return strings.Compare(a.path, b.path)
	})
	var out []tconfig.LUN
	for _, l := range order {
		lun := tconfig.LUN{Path: l.path, BlockSize: tconfig.DefaultBlockSize, WriteCache: true}
		if o, ok := l.opts["lun"]; ok {
			lun.ID, _ = strconv.ParseUint(strings.Join(o.Fields[1:], ""), 10, 64)
		} else {
			n := uint64(1)
			for used[n] {
				n++
			}
			used[n], lun.ID = true, n
		}
		if l.direct {
			c.note(importer.Note, l.file, l.line, "direct-store "+l.path, "served as a plain LUN: tandem reports its own inquiry data, not the device's")
		}
		opts := map[string]importer.Line{}
		for _, o := range targetOpts {
			opts[o.Fields[0]] = o
		}
		for k, o := range l.opts {
			opts[k] = o
		}
		c.lunOpts(&lun, opts, l.file)
		out = append(out, lun)
	}
	slices.SortFunc(out, func(a, b tconfig.LUN) int { return cmp.Compare(a.ID, b.ID) })
	return out
}

func (c *converter) lunOpts(lun *tconfig.LUN, opts map[string]importer.Line, file string) {
	for _, d := range lunDirectives {
		o, ok := opts[d]
		if !ok || d == "lun" {
			continue
		}
		v := strings.Join(o.Fields[1:], " ")
		bad := func(want string) {
			c.note(importer.Warning, file, o.N, d, "%q: %s; left at tandem's default", v, want)
		}
		switch d {
		case "readonly":
			switch strings.ToLower(v) {
			case "1", "yes", "on":
				lun.ReadOnly = true
			case "0", "no", "off":
			default:
				bad("use 1 or 0")
			}
		case "write-cache":
			switch strings.ToLower(v) {
			case "on":
			case "off":
				lun.WriteCache = false
			default:
				bad("use on or off")
			}
		case "block-size":
			switch v {
			case "512":
			case "4096":
				lun.BlockSize = 4096
			default:
				bad("tandem serves 512 or 4096 byte blocks")
			}
		case "scsi_sn":
			lun.Serial = v
		case "bs-type":
			if v != "rdwr" && v != "aio" {
				c.note(importer.Unmapped, file, o.N, d+" "+v, "tandem serves regular files and block devices only; the LUN is kept, check its path")
			}
		}
	}
}
