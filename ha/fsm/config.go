package fsm

import (
	"errors"
	"strconv"
	"time"
)

// Timing is the failure detector's timing, the one home of its defaults
// (DefaultTiming) and rules (Validate): ha/config loads it from YAML and
// the Machine, the disk heartbeat and the labs take it from here. Both
// nodes should use the same values.
type Timing struct {
	// Keepalive is the heartbeat interval on every link (and the disk
	// heartbeat's round period).
	Keepalive time.Duration
	// DeadTime is how long the peer must be silent on every link before it
	// is declared dead and the group taken over. Lower means faster
	// failover and more false ones under load; at least 2×Keepalive, and
	// 4×Keepalive or more so a few lost datagrams never kill a peer.
	DeadTime time.Duration
	// InitDead is how long a freshly started node waits to hear its peer
	// before taking the group alone: links and switches may come up slower
	// than the agent after a power cut. At least DeadTime.
	InitDead time.Duration
}

// Defaults of Timing, those of heartbeat's ha.cf scaled to a LAN cluster.
const (
	DefaultKeepalive = 200 * time.Millisecond // 5 datagrams/s per link
	DefaultDeadTime  = time.Second            // 5 keepalives lost on every link
	DefaultInitDead  = 10 * time.Second       // time for the peer to boot, then start alone
)

// DefaultTiming returns the default timing.
func DefaultTiming() Timing {
	return Timing{Keepalive: DefaultKeepalive, DeadTime: DefaultDeadTime, InitDead: DefaultInitDead}
}

// withDefaults fills zero durations from DefaultTiming.
func (t Timing) withDefaults() Timing {
	if t.Keepalive == 0 {
		t.Keepalive = DefaultKeepalive
	}
	if t.DeadTime == 0 {
		t.DeadTime = DefaultDeadTime
	}
	if t.InitDead == 0 {
		t.InitDead = DefaultInitDead
	}
	return t
}

// Validate checks the timing rules. Errors start with the key that breaks
// a rule (keepalive, deadtime, initdead), as in the YAML configuration.
func (t Timing) Validate() error {
	switch {
	case t.Keepalive <= 0:
		return errors.New("keepalive: " + t.Keepalive.String() + ": must be positive (default " + DefaultKeepalive.String() + ")")
	case t.DeadTime < 2*t.Keepalive:
		return errors.New("deadtime: " + t.DeadTime.String() + " is less than twice keepalive " + t.Keepalive.String() +
			": one lost heartbeat would kill the peer; raise deadtime (4x keepalive or more) or lower keepalive")
	case t.InitDead < t.DeadTime:
		return errors.New("initdead: " + t.InitDead.String() + " is less than deadtime " + t.DeadTime.String() +
			": raise initdead (default " + DefaultInitDead.String() + ")")
	}
	return nil
}

// Config configures a Machine. Both nodes must agree on Preferred,
// AutoFailback, DeadTime and the resource list.
type Config struct {
	// Self and Peer are the node names (heartbeat.Message.Node).
	Self, Peer string
	// Preferred names the node that takes the group when both are idle and
	// keeps it when both hold it after a partition heals. "" means no
	// preference: the lexically smaller name wins those ties.
	Preferred string
	// AutoFailback hands the group back to Preferred when it (re)joins the
	// cluster idle. Off, the group stays where it is until an operator
	// command or a failure moves it.
	AutoFailback bool
	// Keepalive, DeadTime and InitDead are the fields of Timing (see there
	// for units and rules); zero takes the default.
	Keepalive, DeadTime, InitDead time.Duration
	// Links is the number of heartbeat links (Heartbeat.Link in [0, Links)).
	Links int
	// Resources is the group, in start order; it stops in reverse.
	Resources []ResourceConfig
	// FencedBy restores the storage fencing of an earlier run of the agent
	// (its persisted marker): the node starts Fenced for that reason,
	// stops whatever may run (forced, then stopped, as when fenced) and
	// stays Fenced until CmdRejoin. Its self-fence action is not run again:
	// it ran when the storage fenced the node. Empty: a normal start.
	FencedBy string
	// Arbiter: a disk heartbeat runs on an arbiter LUN (DiskBeat,
	// DiskStatus). The peer is then dead only when silent on every link
	// AND on the disk for DeadTime; and a node that hears its peer on no
	// link while its own disk I/O fails for DeadTime is isolated: it stops
	// the group and starts nothing. Off: the links alone decide.
	Arbiter bool
}

// Timings of the machine that are not configured.
const (
	// NetWarnEvery bounds the rate of the "network heartbeat lost, peer
	// alive on the disk" warning.
	NetWarnEvery = 10 * time.Second
	// MaxFenceBackoff caps the back-off between fence start retries
	// (DeadTime, doubling).
	MaxFenceBackoff = 30 * time.Second
)

// ResourceConfig is the timing of one resource of the group.
type ResourceConfig struct {
	Name string
	// MonitorInterval between two monitors while Active; 0 disables them.
	MonitorInterval time.Duration
	// MonitorTimeout, StartTimeout and StopTimeout bound each operation;
	// the runtime reports an expired one as a failed ResourceResult.
	MonitorTimeout, StartTimeout, StopTimeout time.Duration
	// MaxRestarts is how many monitor failures are repaired by a local
	// restart before the group fails over; 0 fails over at once.
	MaxRestarts int
	// Fence marks the fence resource: when its start fails while the peer
	// is dead, nobody else can take the group, so the machine retries it
	// after a back-off (DeadTime doubling up to MaxFenceBackoff) instead of
	// giving up, and starts nothing after it meanwhile.
	Fence bool
}

// Timing returns the timing fields of c.
func (c Config) Timing() Timing {
	return Timing{Keepalive: c.Keepalive, DeadTime: c.DeadTime, InitDead: c.InitDead}
}

// withDefaults fills zero durations and links.
func (c Config) withDefaults() Config {
	t := c.Timing().withDefaults()
	c.Keepalive, c.DeadTime, c.InitDead = t.Keepalive, t.DeadTime, t.InitDead
	if c.Links == 0 {
		c.Links = 1
	}
	c.Resources = append([]ResourceConfig(nil), c.Resources...)
	return c
}

func (c Config) validate() error {
	switch {
	case c.Self == "" || c.Peer == "":
		return errors.New("fsm: self and peer names are required")
	case c.Self == c.Peer:
		return errors.New("fsm: self and peer have the same name " + strconv.Quote(c.Self) + ": give each node its own name")
	case c.Preferred != "" && c.Preferred != c.Self && c.Preferred != c.Peer:
		return errors.New("fsm: preferred node " + strconv.Quote(c.Preferred) + " is neither self nor peer: set it to one of them or leave it empty")
	case c.Links < 0:
		return errors.New("fsm: links must not be negative")
	}
	if err := c.Timing().Validate(); err != nil {
		return errors.New("fsm: " + err.Error())
	}
	seen := make(map[string]bool, len(c.Resources))
	for i, r := range c.Resources {
		switch {
		case r.Name == "":
			return errors.New("fsm: resources[" + strconv.Itoa(i) + "]: name is required")
		case seen[r.Name]:
			return errors.New("fsm: resources[" + strconv.Itoa(i) + "]: duplicate name " + strconv.Quote(r.Name) + ": names must be unique in the group")
		case r.MonitorInterval < 0 || r.MonitorTimeout < 0 || r.StartTimeout < 0 || r.StopTimeout < 0 || r.MaxRestarts < 0:
			return errors.New("fsm: resources[" + strconv.Itoa(i) + "] " + strconv.Quote(r.Name) + ": intervals, timeouts and max_restarts must not be negative")
		}
		seen[r.Name] = true
	}
	return nil
}
