package mqres

import (
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"strings"
	"time"
)

// Config describes one queue manager under the resource's control.
type Config struct {
	// QMgr is the queue manager name (required).
	QMgr string
	// BinDir holds strmqm, endmqm, dspmq and dspmqinf. Default /opt/mqm/bin.
	BinDir string
	// User runs the control commands, as IBM's HA scripts do with su mqm.
	// DefaultConfig sets "mqm"; "" or the agent's own user means no switch.
	User string
	// StartTimeout bounds strmqm plus the wait for RUNNING (STARTING is
	// tolerated until then). Default 60s: log replay can be slow.
	StartTimeout time.Duration
	// StopTimeout bounds the whole stop: endmqm -i, endmqm -p, the kill
	// sweep. Default 60s.
	StopTimeout time.Duration
	// EndTimeout bounds each endmqm before escalating. Default StopTimeout/3,
	// leaving time for -p and the sweep.
	EndTimeout time.Duration
	// MonitorTimeout bounds one dspmq: a hung dspmq is a failure, never a hang
	// of the agent. Default 10s.
	MonitorTimeout time.Duration
	// PollInterval between dspmq calls while waiting for a state. Default 500ms.
	PollInterval time.Duration
	// SharedMount, when set, is the mount point of the shared filesystem; Start
	// refuses a queue manager whose data or log path is not on it.
	SharedMount string
	// Log receives one line per decision; nil discards.
	Log *slog.Logger

	// Runner runs MQ commands; nil means ExecRunner{Dir: BinDir, User: User}.
	Runner Runner
	// Procs finds and kills leftover processes; nil means ProcFS{}.
	Procs ProcTable
	// IsMount reports whether path is a mount point; nil reads
	// /proc/self/mountinfo.
	IsMount func(path string) (bool, error)
}

// DefaultConfig returns the documented defaults for qm.
func DefaultConfig(qm string) Config {
	return Config{
		QMgr:           qm,
		BinDir:         "/opt/mqm/bin",
		User:           "mqm",
		StartTimeout:   60 * time.Second,
		StopTimeout:    60 * time.Second,
		MonitorTimeout: 10 * time.Second,
		PollInterval:   500 * time.Millisecond,
	}
}

// withDefaults fills zero durations; it does not touch User ("" is meaningful).
func (c Config) withDefaults() Config {
	d := DefaultConfig(c.QMgr)
	if c.BinDir == "" {
		c.BinDir = d.BinDir
	}
	if c.StartTimeout <= 0 {
		c.StartTimeout = d.StartTimeout
	}
	if c.StopTimeout <= 0 {
		c.StopTimeout = d.StopTimeout
	}
	if c.EndTimeout <= 0 {
		c.EndTimeout = c.StopTimeout / 3
	}
	if c.MonitorTimeout <= 0 {
		c.MonitorTimeout = d.MonitorTimeout
	}
	if c.PollInterval <= 0 {
		c.PollInterval = d.PollInterval
	}
	return c
}

// Validate names the bad field and the fix.
func (c Config) Validate() error {
	if c.QMgr == "" {
		return errors.New("qmgr is empty: set it to the queue manager name (e.g. qmgr=QM1)")
	}
	// MQ names: up to 48 of A-Z a-z 0-9 . / _ %
	if len(c.QMgr) > 48 || strings.IndexFunc(c.QMgr, func(r rune) bool {
		return !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || strings.ContainsRune("._/%", r))
	}) >= 0 {
		return fmt.Errorf("qmgr %q is not a valid queue manager name: use up to 48 of A-Z a-z 0-9 . / _ %%", c.QMgr)
	}
	if c.BinDir != "" && !strings.HasPrefix(c.BinDir, "/") {
		return fmt.Errorf("mqbin %q is not absolute: set it to the MQ bin directory (default /opt/mqm/bin)", c.BinDir)
	}
	if c.SharedMount != "" && !strings.HasPrefix(c.SharedMount, "/") {
		return fmt.Errorf("shared_mount %q is not absolute: set it to the shared filesystem's mount point", c.SharedMount)
	}
	return nil
}

// Param keys shared by the agent's resource params, heartbeat's environment
// and OCF's OCF_RESKEY_* variables.
const (
	ParamQMgr           = "qmgr"
	ParamBinDir         = "mqbin"
	ParamUser           = "user"
	ParamSharedMount    = "shared_mount"
	ParamStartTimeout   = "start_timeout"
	ParamStopTimeout    = "stop_timeout"
	ParamEndTimeout     = "end_timeout"
	ParamMonitorTimeout = "monitor_timeout"
)

// ConfigFromParams builds a Config from string params (ha resource Params,
// OCF_RESKEY_*). Missing keys keep DefaultConfig's values; a present but empty
// user means "no user switch". Durations are Go durations ("90s") or plain
// seconds ("90").
func ConfigFromParams(p map[string]string) (Config, error) {
	c := DefaultConfig(p[ParamQMgr])
	if v, ok := p[ParamBinDir]; ok && v != "" {
		c.BinDir = v
	}
	if v, ok := p[ParamUser]; ok {
		c.User = v
	}
	c.SharedMount = p[ParamSharedMount]
	for key, dst := range map[string]*time.Duration{
		ParamStartTimeout: &c.StartTimeout, ParamStopTimeout: &c.StopTimeout,
		ParamEndTimeout: &c.EndTimeout, ParamMonitorTimeout: &c.MonitorTimeout,
	} {
		v := p[key]
		if v == "" {
			continue
		}
		d, err := ParseDuration(v)
		if err != nil {
			return c, fmt.Errorf("%s=%q: %w", key, v, err)
		}
		*dst = d
	}
	return c, c.Validate()
}

// ParseDuration accepts a Go duration or a whole number of seconds.
func ParseDuration(v string) (time.Duration, error) {
	if n, err := strconv.Atoi(v); err == nil {
		if n <= 0 {
			return 0, errors.New("must be positive")
		}
		return time.Duration(n) * time.Second, nil
	}
	d, err := time.ParseDuration(v)
	if err != nil || d <= 0 {
		return 0, errors.New("not a positive duration: use e.g. 90s or 90")
	}
	return d, nil
}

// NewFromParams is New(ConfigFromParams(p)) with a logger: the one call an
// adapter for tandem-agent's resource registry needs.
func NewFromParams(p map[string]string, log *slog.Logger) (*Resource, error) {
	cfg, err := ConfigFromParams(p)
	if err != nil {
		return nil, err
	}
	cfg.Log = log
	return New(cfg)
}
