package resource

import (
	"context"
	"errors"
	"strconv"
	"time"
)

// ErrFenced is returned (wrapped) by a Monitor or Start that found this
// node fenced off the shared storage: its reservation key was preempted or
// a command ended in RESERVATION CONFLICT. The agent does not restart the
// group on it: it stops everything at once, marks the node fenced and runs
// its self-fence action (ha/fence).
var ErrFenced = errors.New("this node is fenced off the shared storage")

// Status is what Monitor observed.
type Status int

// Monitor results. StatusFailed means the resource is in a state that Stop
// may not clear on its own (for example an LSB status of 4, "unknown").
const (
	StatusRunning Status = iota
	StatusStopped
	StatusFailed
)

func (s Status) String() string {
	switch s {
	case StatusRunning:
		return "running"
	case StatusStopped:
		return "stopped"
	case StatusFailed:
		return "failed"
	}
	return "status(" + strconv.Itoa(int(s)) + ")"
}

// Resource is one member of the group. Start and Stop must be idempotent: Stop
// of a stopped resource succeeds (heartbeat's rule), Start of a running one
// succeeds. ctx carries the operation timeout.
type Resource interface {
	Name() string
	Start(ctx context.Context) error
	Stop(ctx context.Context) error
	Monitor(ctx context.Context) (Status, error)
}

// Forcer is implemented by resources that can escalate a failed stop (kill
// what holds the mount, kill the script's processes...). The agent calls it
// after Stop failed, then Stop again.
type Forcer interface {
	ForceStop(ctx context.Context) error
}

// Announcer is implemented by resources that tell the network where they
// run (the VIP: gratuitous ARP). The agent calls Announce when this node
// keeps the group after the peer may have held it too (a dual-active
// conflict settled in its favour): neighbours may still send to the peer.
// It must not block for long; repeats go to the background.
type Announcer interface {
	Announce(ctx context.Context) error
}

// Checker is implemented by resources that can check the host before they
// are first started (the interface exists, the VIP fits one of its subnets).
// The agent may call it at startup to fail fast; Start repeats the check.
type Checker interface {
	Check(ctx context.Context) error
}

// Defaults applied by Spec.WithDefaults when a field is zero.
const (
	// DefaultMonitorInterval is the time between two Monitor calls.
	DefaultMonitorInterval = 10 * time.Second
	// DefaultMonitorTimeout bounds one Monitor call.
	DefaultMonitorTimeout = 20 * time.Second
	// DefaultStartTimeout bounds one Start call (fsck of a big volume can be slow).
	DefaultStartTimeout = 60 * time.Second
	// DefaultStopTimeout bounds one Stop or ForceStop call.
	DefaultStopTimeout = 60 * time.Second
)

// Spec is the YAML shape of one resource (config: resources[i]); Build turns
// it into a Resource.
type Spec struct {
	// Type selects the implementation, one of the types the package doc
	// lists (vip, script, lsb, filesystem, iscsi, fence, mq).
	Type string `yaml:"type" mapstructure:"type" json:"type"`
	// Name is unique in the group; logs and the control API use it.
	Name string `yaml:"name" mapstructure:"name" json:"name"`
	// Params are per type: vip: address (CIDR), interface, arp_count (5),
	// arp_interval (200ms); script: path, args (space separated); lsb: path;
	// filesystem: device, directory, fstype, options, fsck (default
	// "e2fsck -p" for ext*); iscsi, fence and mq: see their package docs.
	Params map[string]string `yaml:"params" mapstructure:"params" json:"params,omitempty"`
	// Monitor sets how often (Interval) and how long at most (Timeout) the
	// agent monitors the resource while active. Zero means the default.
	Monitor struct {
		Interval time.Duration `yaml:"interval" mapstructure:"interval" json:"interval,omitempty"`
		Timeout  time.Duration `yaml:"timeout" mapstructure:"timeout" json:"timeout,omitempty"`
	} `yaml:"monitor" mapstructure:"monitor" json:"monitor"`
	// StartTimeout and StopTimeout bound Start and Stop (and ForceStop).
	StartTimeout time.Duration `yaml:"start_timeout" mapstructure:"start_timeout" json:"start_timeout,omitempty"`
	StopTimeout  time.Duration `yaml:"stop_timeout" mapstructure:"stop_timeout" json:"stop_timeout,omitempty"`
	// MaxRestarts is how many times a failed monitor restarts the resource in
	// place before the group fails over; 0 fails over at once.
	MaxRestarts int `yaml:"max_restarts" mapstructure:"max_restarts" json:"max_restarts,omitempty"`
}

// WithDefaults returns s with zero timeouts and intervals replaced by the
// Default* constants.
func (s Spec) WithDefaults() Spec {
	if s.Monitor.Interval == 0 {
		s.Monitor.Interval = DefaultMonitorInterval
	}
	if s.Monitor.Timeout == 0 {
		s.Monitor.Timeout = DefaultMonitorTimeout
	}
	if s.StartTimeout == 0 {
		s.StartTimeout = DefaultStartTimeout
	}
	if s.StopTimeout == 0 {
		s.StopTimeout = DefaultStopTimeout
	}
	return s
}
