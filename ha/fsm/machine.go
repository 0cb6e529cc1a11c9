package fsm

import (
	"log/slog"
	"time"
)

// afterStop is what a Stopping node becomes once the stop is done.
type afterStop uint8

const (
	toInit    afterStop = iota // startup cleanup done: wait for the peer
	toStandby                  // hand-over done: idle, yielding to the peer
	toBanned                   // the group failed here: Standby if the peer can take it, else Failed
	toRestart                  // local restart: start the stopped part again
	toFailed                   // back to Failed (maintenance off from Failed)
)

// rstate is what the machine knows of one resource.
type rstate uint8

const (
	rUnknown rstate = iota // may run: a failed start, stop or monitor, or after maintenance
	rStopped
	rRunning
)

type resource struct {
	cfg       ResourceConfig
	st        rstate
	inflight  bool
	op        Op
	stopStage uint8 // 0: stop, 1: force stop, 2: stop again (then fence), 3: given up (fenced drain)
	restarts  int
	nextMon   time.Duration
}

// Counters count decisions, for metrics.
type Counters struct {
	// Failovers: group starts because the peer was declared dead.
	Failovers uint64
	// Handovers: the group handed to the peer (standby, failback, conflict,
	// takeover request, local failure).
	Handovers uint64
	// Restarts: local restarts after a monitor failure.
	Restarts uint64
	// MonitorFailures, StartFailures, StopFailures: failed operations.
	MonitorFailures, StartFailures, StopFailures uint64
	// FenceRetries: fence starts retried while the peer was dead.
	FenceRetries uint64
	// StorageFenced: times the storage fenced this node.
	StorageFenced uint64
}

// Machine is the failover state machine of one node. It is pure: no
// goroutines, sockets, clocks or randomness; Step maps one input to the
// actions to take. Not safe for concurrent use.
type Machine struct {
	cfg   Config
	index map[string]int

	booted bool
	now    time.Duration
	state  NodeState
	prev   NodeState // the state Maintenance was entered from
	upTo   int       // resources [0, upTo) should run, the rest be stopped
	after  afterStop
	res    []resource
	peer   peerView

	initDeadline time.Duration
	nextHB       time.Duration
	sendNow      bool
	sent         SendHeartbeat // the last heartbeat sent

	// claim: Starting, but no resource runs until the peer acknowledges
	// (FlagAck) or is declared dead.
	claim bool

	banned bool // the group failed here: never start it unasked
	// reason is why the machine entered its state; cause is the last
	// failure that banned this node (failGroup), kept for the operator
	// until the group starts here again.
	reason, cause, causeRes string
	yield                   bool // we handed the group over: start only if the peer dies or fails
	request                 bool // operator takeover: ask the holding peer to hand over

	conflict      bool
	conflictSince time.Duration
	// reannounce: while this node held the group, the peer may have held
	// it too; once the peer holds nothing, Reannounce (whyAnnounce).
	reannounce  bool
	whyAnnounce string

	unknownNode string // last unknown node warned about
	counters    Counters
	out         []Action

	// Storage fencing: fencedBy is why the storage fenced us (Fenced);
	// draining while the group is being stopped after it.
	fencedBy string
	draining bool
	restored bool   // Fenced from an earlier run: its self-fence already ran
	holder   string // ReservationHolder, for CmdRejoin
	// Fence start retries while the peer is dead.
	retries int
	retryAt time.Duration
	// The arbiter: when our disk I/O last succeeded; diskDown once warned.
	diskOK    time.Duration
	diskDown  bool
	diskSeen  bool // a disk heartbeat round succeeded once (FlagDisk)
	netWarnAt time.Duration
	isolWarn  bool
}

// New returns a machine for cfg, zero durations replaced by defaults.
func New(cfg Config) (*Machine, error) {
	cfg = cfg.withDefaults()
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	m := &Machine{cfg: cfg, index: make(map[string]int, len(cfg.Resources))}
	m.res = make([]resource, len(cfg.Resources))
	for i, r := range cfg.Resources {
		m.res[i].cfg = r
		m.index[r.Name] = i
	}
	m.peer.links = make([]link, cfg.Links)
	return m, nil
}

// Step feeds one event and returns the actions to carry out, in order.
func (m *Machine) Step(ev Event) []Action {
	m.out = nil
	switch e := ev.(type) {
	case Tick:
		m.advance(e.Now)
		m.boot()
		m.tickLinks()
	case Heartbeat:
		m.advance(e.Now)
		m.boot()
		m.heartbeat(e)
	case ResourceResult:
		m.boot()
		m.result(e)
	case Command:
		m.boot()
		m.command(e.Kind)
	case DiskBeat:
		m.advance(e.Now)
		m.boot()
		m.diskBeat(e)
	case DiskStatus:
		m.advance(e.Now)
		m.boot()
		m.diskStatus(e)
	case ReservationHolder:
		m.boot()
		m.holder = e.Node
	}
	// Decide and drive until the state settles: one input may cascade, e.g.
	// the last stop result settles Stopping, then Standby starts the group.
	for range 8 {
		s := m.state
		m.decide()
		m.drive()
		if m.state == s {
			break
		}
	}
	m.monitor()
	m.maybeReannounce()
	// Any change of what we would say is sent at once, so the peer learns
	// of transitions and acknowledgements within one network delay.
	// FlagDisk set waits for the next keepalive (the heartbeat rhythm stays
	// as it was), FlagDisk cleared goes out at once: the peer must learn
	// that we lost the arbiter too before it hands the group to us.
	hb := SendHeartbeat{State: m.state, Flags: m.flags()}
	changed := hb.State != m.sent.State || (hb.Flags^m.sent.Flags)&^FlagDisk != 0 ||
		m.sent.Flags&^hb.Flags&FlagDisk != 0
	if m.sendNow || changed || m.now >= m.nextHB {
		m.emit(hb)
		m.sent, m.sendNow = hb, false
		m.nextHB = m.now + m.cfg.Keepalive
	}
	return m.out
}

func (m *Machine) advance(now time.Duration) {
	if now > m.now {
		m.now = now
	}
}

func (m *Machine) flags() Flags {
	var f Flags
	if m.request {
		f |= FlagTakeover
	}
	yield := m.yield || m.banned
	if m.state == Fenced {
		// Only a node the storage fenced, done stopping, lets the peer in:
		// a stop failure may have left a resource running.
		yield = m.fencedBy != "" && !m.draining
	}
	if yield {
		f |= FlagYield
	}
	if m.diskFresh() {
		f |= FlagDisk
	}
	idle := false
	switch m.state {
	case Init, Standby, Failed:
		idle = true
	case Fenced:
		idle = m.fencedBy != "" && !m.draining
	}
	if idle && m.peer.alive && (m.peer.state == Starting || m.peer.state == Active) {
		f |= FlagAck
	}
	return f
}

func (m *Machine) emit(a Action) { m.out = append(m.out, a) }

func (m *Machine) notify(l slog.Level, msg string, attrs ...any) {
	m.emit(Notify{Level: l, Msg: msg, Attrs: attrs})
}

// boot runs once, on the first event: whatever an earlier run of the agent
// left behind is stopped (Stop is idempotent) before anything else, so a
// node never joins holding stale resources. The peer sees Stopping meanwhile
// and keeps its hands off.
func (m *Machine) boot() {
	if m.booted {
		return
	}
	m.booted = true
	m.initDeadline = m.now + m.cfg.InitDead
	m.diskOK = m.now // the arbiter gets DeadTime to answer a first time
	m.notify(slog.LevelInfo, "agent started", "node", m.cfg.Self, "peer", m.cfg.Peer, "initdead", m.cfg.InitDead)
	if m.cfg.FencedBy != "" {
		m.restoreFenced(m.cfg.FencedBy)
		return
	}
	m.stopAll(toInit, "startup: stopping leftovers of an earlier run")
}

// become moves to state s and sends a heartbeat at once, so the peer sees
// every transition without waiting for the keepalive (fast hand-over).
func (m *Machine) become(s NodeState, reason string) {
	if s == m.state {
		return
	}
	m.notify(slog.LevelInfo, "state", "from", m.state, "to", s, "reason", reason)
	m.state, m.reason = s, reason
	m.sendNow = true
}
