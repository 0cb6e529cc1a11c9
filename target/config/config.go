package config

import (
	"time"
)

// Config is the whole tandem-target configuration. Field comments give the
// YAML key, the unit and the default.
type Config struct {
	// Listen are the portals, host:port with an IP literal host (empty host
	// = all addresses). YAML "listen". Default ["127.0.0.1:3260"].
	Listen []string `mapstructure:"listen" yaml:"listen"`
	// StateDir keeps persistent state (reservations, generated serials).
	// YAML "state_dir". Default /var/lib/tandem/target.
	StateDir string `mapstructure:"state_dir" yaml:"state_dir"`
	// AdminSocket is the unix socket tandemctl talks to. YAML
	// "admin_socket". Default /run/tandem/target.sock.
	AdminSocket string `mapstructure:"admin_socket" yaml:"admin_socket"`
	// MetricsAddress is the Prometheus listener (/metrics), IP:PORT.
	// YAML "metrics_address". Default DefaultMetricsAddress (loopback
	// only: the metrics name initiators and LUNs); "off" turns metrics
	// off. A port that cannot be bound is logged and the target serves
	// on without metrics: they are not worth an outage.
	MetricsAddress string `mapstructure:"metrics_address" yaml:"metrics_address"`
	// Limits are the per-session limits and iSCSI negotiation preferences.
	Limits Limits `mapstructure:"limits" yaml:"limits"`
	// Discovery protects SendTargets discovery sessions with CHAP.
	Discovery Discovery `mapstructure:"discovery" yaml:"discovery"`
	// Targets are the iSCSI targets served.
	Targets []Target `mapstructure:"-" yaml:"targets"`
}

// Discovery holds the discovery-session settings. YAML "discovery".
type Discovery struct {
	// CHAP; empty User = discovery needs no authentication.
	CHAP CHAP `mapstructure:"chap" yaml:"chap"`
}

// Limits are per-session limits and the target's iSCSI operational
// preferences (RFC 7143 section 13). YAML "limits".
type Limits struct {
	// MaxSessions caps concurrent sessions over all targets. Default 64.
	MaxSessions uint32 `mapstructure:"max_sessions" yaml:"max_sessions"`
	// QueueDepth is the CmdSN window granted per session (MaxCmdSN -
	// ExpCmdSN + 1, RFC 7143 section 4.2.2.1). Default 128.
	QueueDepth uint32 `mapstructure:"queue_depth" yaml:"queue_depth"`
	// MaxRecvDataSegmentLength is the largest data segment the target
	// accepts, in bytes, 512..16777215 (RFC 7143 section 13.12). Default 262144.
	MaxRecvDataSegmentLength uint32 `mapstructure:"max_recv_data_segment_length" yaml:"max_recv_data_segment_length"`
	// MaxBurstLength in bytes, 512..16777215 (RFC 7143 section 13.13).
	// Default 1048576.
	MaxBurstLength uint32 `mapstructure:"max_burst_length" yaml:"max_burst_length"`
	// FirstBurstLength in bytes, 512..16777215 and at most MaxBurstLength
	// (RFC 7143 section 13.14). Default 262144.
	FirstBurstLength uint32 `mapstructure:"first_burst_length" yaml:"first_burst_length"`
	// MaxOutstandingR2T, 1..65535 (RFC 7143 section 13.17). Default 1.
	MaxOutstandingR2T uint32 `mapstructure:"max_outstanding_r2t" yaml:"max_outstanding_r2t"`
	// NopInterval is the idle time before the target sends a NOP-In ping;
	// 0 disables pings. Default 10s.
	NopInterval time.Duration `mapstructure:"nop_interval" yaml:"-"`
	// NopTimeout is how long a ping may go unanswered before the
	// connection is dropped. Default 60s: synchronous initiators (libiscsi's
	// sync API, qemu's iscsi driver) answer pings only when they next send
	// a command, and a busy-sleeping client must not lose its session.
	NopTimeout time.Duration `mapstructure:"nop_timeout" yaml:"-"`
	// ImmediateData offered by the target (RFC 7143 section 13.11). Default true.
	ImmediateData bool `mapstructure:"immediate_data" yaml:"immediate_data"`
	// InitialR2T offered by the target (RFC 7143 section 13.10). Default false.
	InitialR2T bool `mapstructure:"initial_r2t" yaml:"initial_r2t"`
	// HeaderDigest allows CRC32C header digests when the initiator offers
	// them (RFC 7143 section 13.1). Default true.
	HeaderDigest bool `mapstructure:"header_digest" yaml:"header_digest"`
	// DataDigest allows CRC32C data digests. Default true.
	DataDigest bool `mapstructure:"data_digest" yaml:"data_digest"`
}

// CHAP names the credentials of one direction pair. Secrets live in files
// (mode 0600) so that the YAML can be world readable.
type CHAP struct {
	// User is the name the initiator must present (CHAP_N); empty = no CHAP.
	User string `mapstructure:"user" yaml:"user,omitempty"`
	// SecretFile holds the initiator's secret, at least 12 bytes; one
	// trailing newline is ignored.
	SecretFile string `mapstructure:"secret_file" yaml:"secret_file,omitempty"`
	// MutualUser is the target's own name for mutual CHAP; empty = mutual
	// CHAP refused.
	MutualUser string `mapstructure:"mutual_user" yaml:"mutual_user,omitempty"`
	// MutualSecretFile holds the target's secret; it must differ from the
	// initiator's (RFC 7143 section 12.1.3).
	MutualSecretFile string `mapstructure:"mutual_secret_file" yaml:"mutual_secret_file,omitempty"`

	// Secret and MutualSecret are loaded from the files by Load.
	Secret       []byte `mapstructure:"-" yaml:"-"`
	MutualSecret []byte `mapstructure:"-" yaml:"-"`
}

// Enabled reports whether initiators must authenticate with CHAP.
func (c CHAP) Enabled() bool { return c.User != "" }

// Target is one iSCSI target. YAML "targets[i]".
type Target struct {
	// Name is the iSCSI name (iqn., eui. or naa., RFC 7143 section 4.2.7).
	Name string `mapstructure:"name" yaml:"name"`
	// Alias is the optional TargetAlias (RFC 7143 section 13.6).
	Alias string `mapstructure:"alias" yaml:"alias,omitempty"`
	// Initiators is the ACL of initiator names; empty = everyone.
	Initiators []string `mapstructure:"initiators" yaml:"initiators,omitempty"`
	// CHAP protects logins to this target.
	CHAP CHAP `mapstructure:"chap" yaml:"chap,omitempty"`
	// LUNs are the logical units.
	LUNs []LUN `mapstructure:"-" yaml:"luns"`
}

// LUN is one logical unit. YAML "targets[i].luns[j]".
type LUN struct {
	// ID is the LUN number, 0..16383 (SAM-5 flat space addressing).
	ID uint64 `mapstructure:"id" yaml:"id"`
	// Path is a regular file or a block device. Exactly one of Path and
	// LV is set.
	Path string `mapstructure:"path" yaml:"path,omitempty"`
	// LV is an LVM logical volume, "VG/NAME", served through its device
	// (/dev/VG/NAME) at its own size, found through package lvm at
	// start. YAML "lv".
	LV string `mapstructure:"lv" yaml:"lv,omitempty"`
	// Wait is how long the daemon waits at start for a backing that is
	// not there yet (an LV activated late at boot, a device not yet
	// attached) before it gives up and exits. 0 (default) fails at once;
	// at most MaxWait. YAML "wait", e.g. 30s.
	Wait time.Duration `mapstructure:"wait" yaml:"-"`
	// Size in bytes creates a sparse file of this size when Path is
	// missing; 0 = Path must exist. YAML accepts units: 10GiB, 512MiB, 1T.
	Size int64 `mapstructure:"size" yaml:"size,omitempty"`
	// BlockSize is the logical block size, 512 or 4096. Default 512.
	BlockSize uint32 `mapstructure:"block_size" yaml:"block_size"`
	// Thin enables UNMAP and thin provisioning reporting.
	Thin bool `mapstructure:"thin" yaml:"thin"`
	// WriteCache enables write-back caching (WCE). Default true.
	WriteCache bool `mapstructure:"-" yaml:"write_cache"`
	// ReadOnly write-protects the LU.
	ReadOnly bool `mapstructure:"read_only" yaml:"read_only"`
	// Serial is the unit serial number (VPD page 0x80); the NAA identifier
	// is derived from it. Default: derived from target name and ID, so it
	// is stable across restarts.
	Serial string `mapstructure:"serial" yaml:"serial,omitempty"`
	// Audit is a file that receives the audit stream of the LU: every
	// WRITE-class command accepted or refused, with its I_T nexus, range,
	// status and reservation state (format: target/audit). Relative to
	// the config file; an existing file is replaced at start. Empty = no
	// audit.
	Audit string `mapstructure:"audit" yaml:"audit,omitempty"`
	// Cache is the write cache under the LU: "" (default) is the kernel
	// page cache; CacheVolatile keeps unsynced writes in the daemon's
	// memory so that a power cut (admin API power-cut) loses them; for
	// labs, regular files only.
	Cache string `mapstructure:"cache" yaml:"cache,omitempty"`
	// Faults puts the LU on a fault-injecting backstore (backstore.Faulty)
	// whose faults (EIO, ENOSPC, delays over a range) the lab API sets at
	// run time; it starts healthy. For labs and tests only.
	Faults bool `mapstructure:"faults" yaml:"faults,omitempty"`
}

// CacheVolatile is the LUN cache mode of a lab's lossy storage
// (backstore.Volatile).
const CacheVolatile = "volatile"

// DefaultConfig returns the defaults Load starts from.
func DefaultConfig() *Config {
	return &Config{
		Listen:         []string{"127.0.0.1:3260"}, // loopback only until told otherwise
		StateDir:       "/var/lib/tandem/target",
		AdminSocket:    "/run/tandem/target.sock",
		MetricsAddress: DefaultMetricsAddress,
		Limits:         DefaultLimits(),
	}
}

// DefaultMetricsAddress is where Prometheus scrapes the target by
// default: loopback, one port above the agent's 127.0.0.1:9464 so both
// run on one node.
const DefaultMetricsAddress = "127.0.0.1:9465"

// MetricsEnabled reports whether the metrics listener is configured.
func (c *Config) MetricsEnabled() bool { return c.MetricsAddress != "" && c.MetricsAddress != "off" }

// DefaultLimits returns the default Limits.
func DefaultLimits() Limits {
	return Limits{
		MaxSessions:              64,
		QueueDepth:               128,     // enough to keep a NVMe-backed LU busy
		MaxRecvDataSegmentLength: 262144,  // 256 KiB: what Linux open-iscsi uses
		MaxBurstLength:           1048576, // 1 MiB
		FirstBurstLength:         262144,  // RFC 7143 default 64 KiB is too small for ImmediateData
		MaxOutstandingR2T:        1,       // RFC 7143 default
		NopInterval:              10 * time.Second,
		NopTimeout:               60 * time.Second,
		ImmediateData:            true,
		InitialR2T:               false, // unsolicited Data-Out saves one round trip per write
		HeaderDigest:             true,
		DataDigest:               true,
	}
}

// DefaultBlockSize is the logical block size of a LUN that does not set one.
const DefaultBlockSize = 512

// MarshalYAML writes Wait as "30s" rather than nanoseconds.
func (l LUN) MarshalYAML() (any, error) {
	type plain LUN
	return struct {
		plain `yaml:",inline"`
		Wait  string `yaml:"wait,omitempty"`
	}{plain(l), durationOrEmpty(l.Wait)}, nil
}

func durationOrEmpty(d time.Duration) string {
	if d == 0 {
		return ""
	}
	return d.String()
}

// MarshalYAML writes durations as "5s" rather than nanoseconds.
func (l Limits) MarshalYAML() (any, error) {
	type plain Limits // no methods, so no recursion
	return struct {
		plain       `yaml:",inline"`
		NopInterval string `yaml:"nop_interval"`
		NopTimeout  string `yaml:"nop_timeout"`
	}{plain(l), l.NopInterval.String(), l.NopTimeout.String()}, nil
}
