package config

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/tandem-ha/tandem/lvm"
)

// Secret length bounds. RFC 7143 section 12.1.3 asks for secrets of at least
// 96 bits because CHAP over cleartext is open to offline dictionary attacks.
const (
	MinSecretLength = 12
	MaxSecretLength = 1024 // a sanity cap: catches a wrong file, not a real limit
)

// Limits of the iSCSI negotiation keys (RFC 7143 sections 13.12 to 13.17).
const (
	minDataLength = 512
	maxDataLength = 16777215
	maxR2T        = 65535
	maxLUN        = 16383 // flat space addressing (SAM-5 section 4.7), see wire/scsi.EncodeLUN
	maxSerial     = 64
	maxAlias      = 255
	maxSocketPath = 107 // sun_path is 108 bytes including the NUL
)

// MaxWait bounds LUN.Wait: a daemon that waits longer for a device hides
// a boot problem from the service manager.
const MaxWait = 10 * time.Minute

// Validate checks c after defaults were applied and reports every problem,
// one per line, each starting with the key it is about.
func (c *Config) Validate() error {
	var v validator
	if len(c.Listen) == 0 {
		v.add("listen", "no portal configured: set at least one host:port, e.g. 127.0.0.1:3260")
	}
	seenListen := map[string]bool{}
	for i, l := range c.Listen {
		key := fmt.Sprintf("listen[%d]", i)
		if err := checkListen(l); err != nil {
			v.add(key, "%v", err)
		}
		if seenListen[l] {
			v.add(key, "%q is listed twice: remove one", l)
		}
		seenListen[l] = true
	}
	if c.StateDir == "" {
		v.add("state_dir", "empty: set a directory, e.g. /var/lib/tandem/target")
	}
	if c.AdminSocket == "" {
		v.add("admin_socket", "empty: set a socket path, e.g. /run/tandem/target.sock")
	} else if len(c.AdminSocket) > maxSocketPath {
		v.add("admin_socket", "path is %d bytes, unix sockets allow %d: use a shorter path", len(c.AdminSocket), maxSocketPath)
	}
	if c.MetricsEnabled() {
		if _, err := netip.ParseAddrPort(c.MetricsAddress); err != nil {
			v.add("metrics_address", "%q: %v: use IP:PORT such as %s, or off", c.MetricsAddress, err, DefaultMetricsAddress)
		}
	}
	c.Limits.validate(&v)
	checkCHAP(&v, "discovery.chap", c.Discovery.CHAP)

	seenTarget := map[string]int{}
	seenPath := map[string]string{}
	for i, t := range c.Targets {
		key := fmt.Sprintf("targets[%d]", i)
		if err := CheckName(t.Name); err != nil {
			v.add(key+".name", "%v", err)
		}
		if j, dup := seenTarget[strings.ToLower(t.Name)]; dup && t.Name != "" {
			v.add(key+".name", "%q is also the name of targets[%d]: target names must be unique", t.Name, j)
		} else {
			seenTarget[strings.ToLower(t.Name)] = i
		}
		if len(t.Alias) > maxAlias || !printable(t.Alias) {
			v.add(key+".alias", "must be at most %d printable characters", maxAlias)
		}
		seenInit := map[string]bool{}
		for j, in := range t.Initiators {
			ikey := fmt.Sprintf("%s.initiators[%d]", key, j)
			if err := CheckName(in); err != nil {
				v.add(ikey, "%v", err)
			}
			if seenInit[strings.ToLower(in)] {
				v.add(ikey, "%q is listed twice: remove one", in)
			}
			seenInit[strings.ToLower(in)] = true
		}
		checkCHAP(&v, key+".chap", t.CHAP)
		seenLUN := map[uint64]int{}
		for j, l := range t.LUNs {
			lkey := fmt.Sprintf("%s.luns[%d]", key, j)
			if k, dup := seenLUN[l.ID]; dup {
				v.add(lkey+".id", "LUN %d is also %s.luns[%d]: LUN ids must be unique within a target", l.ID, key, k)
			} else {
				seenLUN[l.ID] = j
			}
			backing, bkey := filepath.Clean(l.Path), ".path"
			if l.LV != "" {
				backing, bkey = "lv:"+l.LV, ".lv"
			}
			if prev, dup := seenPath[backing]; dup && (l.Path != "" || l.LV != "") {
				v.add(lkey+bkey, "%s is already used by %s: two LUNs on one backing would corrupt it; give this LUN its own file, device or LV", strings.TrimPrefix(backing, "lv:"), prev)
			} else {
				seenPath[backing] = lkey
			}
			l.validate(&v, lkey)
		}
	}
	return v.err()
}

func (l LUN) validate(v *validator, key string) {
	if l.ID > maxLUN {
		v.add(key+".id", "%d is above %d, the largest flat-space LUN (SAM-5 section 4.7)", l.ID, maxLUN)
	}
	switch {
	case l.Path == "" && l.LV == "":
		v.add(key+".path", "empty: set a regular file or block device, e.g. /var/lib/tandem/lun1.img, or lv: VG/NAME")
	case l.Path != "" && l.LV != "":
		v.add(key+".lv", "set together with path: a LUN has one backing, keep path or lv")
	case l.Path != "" && !filepath.IsAbs(l.Path):
		v.add(key+".path", "%q is relative: use an absolute path", l.Path)
	case l.LV != "":
		vg, name, ok := strings.Cut(l.LV, "/")
		if !ok {
			v.add(key+".lv", "%q is not VG/NAME, e.g. vg0/mq", l.LV)
		} else if err := errors.Join(lvm.ValidateVG("vg", vg), lvm.ValidateLV("lv", name)); err != nil {
			v.add(key+".lv", "%v", err)
		}
		if l.Size != 0 {
			v.add(key+".size", "set on an LV LUN: an LV has its own size; drop size and grow the LV (tandemctl volume resize)")
		}
	}
	if l.Wait < 0 || l.Wait > MaxWait {
		v.add(key+".wait", "%s is outside 0..%s: use e.g. 30s, or leave it out to fail at once", l.Wait, MaxWait)
	}
	if l.BlockSize != 512 && l.BlockSize != 4096 {
		v.add(key+".block_size", "%d is not supported: use 512 or 4096", l.BlockSize)
	}
	if l.Size < 0 {
		v.add(key+".size", "negative: use a byte count such as 10GiB, or 0 when the path exists")
	} else if l.BlockSize != 0 && l.Size%int64(l.BlockSize) != 0 {
		v.add(key+".size", "%d is not a multiple of the block size %d", l.Size, l.BlockSize)
	}
	if l.Cache != "" && l.Cache != CacheVolatile {
		v.add(key+".cache", "%q is unknown: leave it out (page cache) or set %q (lab storage that a power cut loses)", l.Cache, CacheVolatile)
	}
	if l.Cache == CacheVolatile && l.ReadOnly {
		v.add(key+".cache", "a read-only LUN has nothing to cache: drop cache or read_only")
	}
	if l.Audit != "" && l.Audit == l.Path {
		v.add(key+".audit", "is the LUN's own path: name another file")
	}
	if l.Serial == "" || len(l.Serial) > maxSerial || !printable(l.Serial) || strings.ContainsRune(l.Serial, ' ') {
		v.add(key+".serial", "must be 1 to %d printable ASCII characters without spaces (SPC-4 VPD page 0x80)", maxSerial)
	}
}

func (l Limits) validate(v *validator) {
	inRange := func(key string, val, lo, hi uint32, clause string) {
		if val < lo || val > hi {
			v.add("limits."+key, "%d is outside %d..%d (RFC 7143 section %s)", val, lo, hi, clause)
		}
	}
	if l.MaxSessions == 0 {
		v.add("limits.max_sessions", "0 would refuse every login: use at least 1")
	}
	inRange("queue_depth", l.QueueDepth, 1, 65535, "4.2.2.1")
	inRange("max_recv_data_segment_length", l.MaxRecvDataSegmentLength, minDataLength, maxDataLength, "13.12")
	inRange("max_burst_length", l.MaxBurstLength, minDataLength, maxDataLength, "13.13")
	inRange("first_burst_length", l.FirstBurstLength, minDataLength, maxDataLength, "13.14")
	if l.FirstBurstLength > l.MaxBurstLength {
		v.add("limits.first_burst_length", "%d exceeds max_burst_length %d (RFC 7143 section 13.14): lower it", l.FirstBurstLength, l.MaxBurstLength)
	}
	inRange("max_outstanding_r2t", l.MaxOutstandingR2T, 1, maxR2T, "13.17")
	if l.NopInterval < 0 {
		v.add("limits.nop_interval", "negative: use 0 to disable pings or a duration such as 5s")
	}
	if l.NopInterval > 0 && l.NopTimeout <= 0 {
		v.add("limits.nop_timeout", "must be positive when nop_interval is set, e.g. 15s")
	}
}

func checkCHAP(v *validator, key string, c CHAP) {
	if c.User == "" {
		if c.SecretFile != "" || c.MutualUser != "" || c.MutualSecretFile != "" {
			v.add(key+".user", "empty but other CHAP keys are set: set user, or remove the chap section")
		}
		return
	}
	if len(c.User) > 255 || !printable(c.User) {
		v.add(key+".user", "must be 1 to 255 printable characters")
	}
	if c.SecretFile == "" && c.Secret == nil {
		v.add(key+".secret_file", "user is set but no secret file is: point secret_file at a 0600 file holding the secret")
	}
	checkSecret(v, key+".secret_file", c.SecretFile, c.Secret)
	switch {
	case c.MutualUser == "" && c.MutualSecretFile != "":
		v.add(key+".mutual_user", "empty but mutual_secret_file is set: set mutual_user or remove mutual_secret_file")
	case c.MutualUser != "" && c.MutualSecretFile == "" && c.MutualSecret == nil:
		v.add(key+".mutual_secret_file", "mutual_user is set but no mutual secret file is: point mutual_secret_file at a 0600 file")
	}
	if c.MutualUser != "" && (len(c.MutualUser) > 255 || !printable(c.MutualUser)) {
		v.add(key+".mutual_user", "must be 1 to 255 printable characters")
	}
	checkSecret(v, key+".mutual_secret_file", c.MutualSecretFile, c.MutualSecret)
	if c.Secret != nil && c.MutualSecret != nil && string(c.Secret) == string(c.MutualSecret) {
		v.add(key+".mutual_secret_file", "holds the same secret as secret_file: a secret that authenticates an initiator must not authenticate a target (RFC 7143 section 12.1.3); generate a new one")
	}
}

// checkSecret checks a loaded secret; a secret that failed to load was
// already reported by loadSecrets.
func checkSecret(v *validator, key, file string, secret []byte) {
	if secret == nil {
		return
	}
	if file == "" {
		file = "the secret"
	}
	if len(secret) < MinSecretLength || len(secret) > MaxSecretLength {
		v.add(key, "%s holds %d bytes, CHAP secrets need %d to %d (RFC 7143 section 12.1.3): write a longer random one, e.g. `head -c 16 /dev/urandom | base64 > %s`",
			file, len(secret), MinSecretLength, MaxSecretLength, file)
	}
}

func checkListen(addr string) error {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return fmt.Errorf("%q is not host:port (%v): use e.g. 127.0.0.1:3260 or [::1]:3260", addr, err)
	}
	if host != "" && net.ParseIP(host) == nil {
		return fmt.Errorf("%q: host %q is not an IP address: use an address, or an empty host for all", addr, host)
	}
	p, err := strconv.ParseUint(port, 10, 16)
	if err != nil || p == 0 {
		return fmt.Errorf("%q: port %q is not 1..65535", addr, port)
	}
	return nil
}

func printable(s string) bool {
	for _, r := range s {
		if r < 0x20 || r > 0x7e {
			return false
		}
	}
	return true
}

// validator collects problems; each is "key: message".
type validator struct{ errs []error }

func (v *validator) add(key, format string, args ...any) {
	v.errs = append(v.errs, fmt.Errorf("%s: %s", key, fmt.Sprintf(format, args...)))
}

func (v *validator) err() error { return errors.Join(v.errs...) }
