package fsm

import (
	"errors"
	"strconv"
	"time"
)

// Defaults of Config, those of heartbeat's ha.cf scaled to a LAN cluster.
const (
	DefaultKeepalive = 200 * time.Millisecond
	DefaultDeadTime  = time.Second
	DefaultInitDead  = 10 * time.Second
)

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
	// Keepalive is the heartbeat interval (default 200ms).
	Keepalive time.Duration
	// DeadTime is how long the peer must be silent on every link before it
	// is declared dead and the group taken over (default 1s). Lower means
	// faster failover and more false ones under load; keep it at least
	// 4×Keepalive so a few lost datagrams never kill a peer.
	DeadTime time.Duration
	// InitDead is how long a freshly started node waits to hear its peer
	// before taking the group alone (default 10s): links and switches may
	// come up slower than the agent after a power cut.
	InitDead time.Duration
	// Links is the number of heartbeat links (Heartbeat.Link in [0, Links)).
	Links int
	// Resources is the group, in start order; it stops in reverse.
	Resources []ResourceConfig
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

// withDefaults fills zero durations.
func (c Config) withDefaults() Config {
	if c.Keepalive == 0 {
		c.Keepalive = DefaultKeepalive
	}
	if c.DeadTime == 0 {
		c.DeadTime = DefaultDeadTime
	}
	if c.InitDead == 0 {
		c.InitDead = DefaultInitDead
	}
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
	case c.Keepalive < 0 || c.DeadTime < 0 || c.InitDead < 0:
		return errors.New("fsm: keepalive, deadtime and initdead must not be negative")
	case c.DeadTime < 2*c.Keepalive:
		return errors.New("fsm: deadtime " + c.DeadTime.String() + " is less than twice keepalive " + c.Keepalive.String() + ": one lost heartbeat would kill the peer; raise deadtime (4x keepalive or more)")
	case c.InitDead < c.DeadTime:
		return errors.New("fsm: initdead " + c.InitDead.String() + " is less than deadtime " + c.DeadTime.String() + ": raise initdead")
	case c.Links < 0:
		return errors.New("fsm: links must not be negative")
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
