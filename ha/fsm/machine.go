package fsm

import (
	"errors"
	"log/slog"
	"strconv"
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

type link struct {
	heard, up bool
	last      time.Duration
}

// peerView is the peer as its heartbeats describe it.
type peerView struct {
	heard    bool // at least once in this run of the agent, on any medium
	netHeard bool // on a link at least once
	alive    bool // declared alive: heard on some link within DeadTime
	state    NodeState
	flags    Flags
	boot     uint64
	seq      uint64
	last     time.Duration
	links    []link
	// held: we saw the peer Starting or Active since it was last idle.
	// handedOver: then we saw it Standby, i.e. it handed the group over; we
	// may start at once (no deadtime wait).
	held, handedOver bool
	// rejoined: the peer (re)joined while we were running, so a preferred
	// peer is owed the group when AutoFailback is on.
	rejoined bool
	// The disk heartbeat: when the peer's slot last changed.
	diskHeard bool
	diskLast  time.Duration
	diskSeq   uint64
	diskState NodeState
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

	banned  bool // the group failed here: never start it unasked
	yield   bool // we handed the group over: start only if the peer dies or fails
	request bool // operator takeover: ask the holding peer to hand over

	conflict      bool
	conflictSince time.Duration

	unknownNode string // last unknown node warned about
	counters    Counters
	out         []Action

	// Storage fencing: fencedBy is why the storage fenced us (Fenced);
	// draining while the group is being stopped after it.
	fencedBy string
	draining bool
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

// peerIdle: the peer holds nothing: an idle state, or fenced by the
// storage and done stopping (FlagYield while Fenced).
func (m *Machine) peerIdle() bool {
	return !m.peer.state.holds() || (m.peer.state == Fenced && m.peer.flags&FlagYield != 0)
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
	m.stopAll(toInit, "startup: stopping leftovers of an earlier run")
}

// become moves to state s and sends a heartbeat at once, so the peer sees
// every transition without waiting for the keepalive (fast hand-over).
func (m *Machine) become(s NodeState, reason string) {
	if s == m.state {
		return
	}
	m.notify(slog.LevelInfo, "state", "from", m.state, "to", s, "reason", reason)
	m.state = s
	m.sendNow = true
}

// peerLive is the peer-liveness rule, in one place: the peer is alive
// while it was heard on at least one link within DeadTime, or, with an
// arbiter, while its disk slot changed within DeadTime. A single link cut
// therefore never kills it, nor does a cut of every link while the disk
// still shows it writing.
func (m *Machine) peerLive() bool {
	return m.netLive() || m.diskLive()
}

// netLive: the peer was heard on some link within DeadTime.
func (m *Machine) netLive() bool {
	return m.peer.netHeard && m.now-m.peer.last < m.cfg.DeadTime
}

// diskLive: with an arbiter, the peer's slot changed within DeadTime.
func (m *Machine) diskLive() bool {
	return m.cfg.Arbiter && m.peer.diskHeard && m.now-m.peer.diskLast < m.cfg.DeadTime
}

// isolated: with an arbiter, neither the peer (no link) nor the arbiter
// (our disk I/O failing for DeadTime) is reachable. Such a node cannot
// know whether the peer took the storage, so it must not hold the group.
func (m *Machine) isolated() bool {
	return !m.netLive() && m.storageLost()
}

// storageLost: with an arbiter, our disk I/O has failed for DeadTime.
func (m *Machine) storageLost() bool {
	return m.cfg.Arbiter && m.now-m.diskOK >= m.cfg.DeadTime
}

// diskFresh: our last disk heartbeat round succeeded within DeadTime/2
// (FlagDisk). Half, not all of DeadTime: if the storage fails for both
// nodes at once, each clears FlagDisk (and says so at once) before the
// other's own DeadTime of failures runs out, so neither hands the group to
// a node that cannot reach the storage either (given DeadTime > 2 x
// Keepalive, the disk round interval).
func (m *Machine) diskFresh() bool {
	return m.cfg.Arbiter && m.diskSeen && m.now-m.diskOK < m.cfg.DeadTime/2
}

// storageBetterThere: this node lost the arbiter (hence, most likely, the
// shared storage: its writes fail) while the peer, heard on the network,
// says it still reaches it (FlagDisk). The peer can serve and fence us, we
// cannot serve, so the group goes there now rather than when a fence
// monitor times out.
func (m *Machine) storageBetterThere() bool {
	return m.storageLost() && m.peer.alive && m.netLive() && m.peer.flags&FlagDisk != 0
}

func (m *Machine) diskBeat(e DiskBeat) {
	if !m.cfg.Arbiter {
		return
	}
	if e.Node != m.cfg.Peer {
		if e.Node != m.unknownNode {
			m.unknownNode = e.Node
			m.notify(slog.LevelWarn, "disk heartbeat from an unknown node ignored: check the arbiter's node list", "node", e.Node)
		}
		return
	}
	p := &m.peer
	p.diskHeard, p.diskLast, p.diskSeq, p.diskState = true, m.now, e.Seq, e.State
	if !m.netLive() {
		// The disk is the only news of the peer: its state is current.
		p.state = e.State
		p.boot = e.Boot
	}
	if !p.alive {
		m.notify(slog.LevelInfo, "peer alive on the disk", "peer", m.cfg.Peer, "state", e.State)
		p.rejoined, p.held, p.handedOver = true, false, false
		p.heard, p.alive = true, true
		p.state = e.State
	}
}

func (m *Machine) diskStatus(e DiskStatus) {
	if !m.cfg.Arbiter || !e.OK {
		return
	}
	m.diskOK, m.diskSeen = m.now, true
	if m.diskDown {
		m.diskDown = false
		m.notify(slog.LevelInfo, "arbiter reachable again")
	}
}

// watchMedia warns about lost media, at a bounded rate.
func (m *Machine) watchMedia() {
	if !m.cfg.Arbiter {
		return
	}
	if !m.diskDown && m.now-m.diskOK >= m.cfg.DeadTime {
		m.diskDown = true
		m.notify(slog.LevelWarn, "arbiter unreachable: disk heartbeat I/O failing", "silent", m.now-m.diskOK)
	}
	if m.diskLive() && !m.netLive() && m.now >= m.netWarnAt {
		m.netWarnAt = m.now + NetWarnEvery
		m.notify(slog.LevelWarn, "NETWORK HEARTBEAT LOST: the peer is alive on the disk only; no failover: repair the links",
			"peer", m.cfg.Peer, "peer_state", m.peer.diskState)
	}
}

// winsTie reports whether this node keeps or takes the group when the
// nodes disagree: the preferred node, else the lexically smaller name.
// Both nodes compute the same answer from the same Config.
func (m *Machine) winsTie() bool {
	if m.cfg.Preferred != "" {
		return m.cfg.Preferred == m.cfg.Self
	}
	return m.cfg.Self < m.cfg.Peer
}

func (m *Machine) tickLinks() {
	for i := range m.peer.links {
		l := &m.peer.links[i]
		if l.up && m.now-l.last >= m.cfg.DeadTime {
			l.up = false
			m.notify(slog.LevelWarn, "link down", "link", i, "silent", m.now-l.last)
		}
	}
}

func (m *Machine) heartbeat(e Heartbeat) {
	if e.Node == m.cfg.Peer && e.Link >= 0 && e.Link < len(m.peer.links) {
		m.peer.netHeard = true
	}
	if e.Node != m.cfg.Peer {
		if e.Node != m.unknownNode {
			m.unknownNode = e.Node
			m.notify(slog.LevelWarn, "heartbeat from an unknown node ignored: check the peer's node name", "node", e.Node)
		}
		return
	}
	if e.Link < 0 || e.Link >= len(m.peer.links) {
		m.notify(slog.LevelWarn, "heartbeat on an unknown link ignored", "link", e.Link)
		return
	}
	l := &m.peer.links[e.Link]
	if !l.up {
		l.up = true
		m.notify(slog.LevelInfo, "link up", "link", e.Link)
	}
	l.heard = true
	l.last = m.now
	p := &m.peer
	newBoot := p.heard && e.Boot != p.boot
	if newBoot && e.Boot < p.boot {
		return // a datagram of an earlier run that the filter has not seen
	}
	if p.heard && !newBoot && e.Seq < p.seq {
		// Reordered across links: it proves liveness but its state is old.
		p.last = m.now
		return
	}
	switch {
	case newBoot:
		m.notify(slog.LevelWarn, "peer restarted", "peer", m.cfg.Peer, "state", e.State)
		p.rejoined, p.held, p.handedOver = true, false, false
	case !p.alive:
		m.notify(slog.LevelInfo, "peer alive", "peer", m.cfg.Peer, "state", e.State)
		p.rejoined, p.held, p.handedOver = true, false, false
	}
	switch e.State {
	case Starting, Active:
		// The peer holds the group: a hand-over to it is complete, and a
		// rejoin no longer owes it anything.
		p.held, p.handedOver, p.rejoined = true, false, false
		m.yield = false
	case Standby:
		// Holding, then Standby (Stopping in between, unless lost): the
		// peer stopped the group for us. Startup cleanup (Stopping without
		// holding first) is not a hand-over.
		if p.held {
			p.handedOver = true
		}
		p.held = false
	case Init, Failed:
		p.held, p.handedOver = false, false
	}
	p.heard, p.alive = true, true
	p.state, p.flags, p.boot, p.seq = e.State, e.Flags, e.Boot, e.Seq
	p.last = m.now
}

// decide applies the coordination rules after any input.
func (m *Machine) decide() {
	if m.state == Fenced {
		return
	}
	if m.peer.alive && !m.peerLive() {
		m.peer.alive = false
		m.peer.handedOver, m.conflict, m.yield, m.request = false, false, false, false
		if m.cfg.Arbiter {
			m.notify(slog.LevelWarn, "peer dead", "peer", m.cfg.Peer, "last_heard", m.peer.last, "silent", m.now-m.peer.last,
				"disk_last", m.peer.diskLast)
		} else {
			m.notify(slog.LevelWarn, "peer dead", "peer", m.cfg.Peer, "last_heard", m.peer.last, "silent", m.now-m.peer.last)
		}
		m.sendNow = true
	}
	m.watchMedia()
	if m.isolated() {
		if !m.isolWarn {
			m.isolWarn = true
			m.notify(slog.LevelError, "isolated: neither the peer nor the arbiter is reachable: this node cannot be safe holding the group")
		}
		if m.state == Starting || m.state == Active {
			m.stopAll(toStandby, "isolated: stopping the group")
			return
		}
	} else {
		m.isolWarn = false
	}
	switch m.state {
	case Init:
		switch {
		case m.peer.heard:
			m.become(Standby, "peer heard")
			m.maybeStart()
		case m.isolated():
		case m.now >= m.initDeadline:
			m.notify(slog.LevelWarn, "peer not heard within initdead: taking the group alone", "peer", m.cfg.Peer, "initdead", m.cfg.InitDead)
			m.start("started alone")
		}
	case Standby:
		if m.banned && !m.peer.alive {
			m.become(Failed, "peer dead and the group failed here: operator action needed")
			return
		}
		m.maybeStart()
	case Starting, Active:
		if m.storageBetterThere() {
			m.handOver("storage lost here, the peer reaches it: handing the group over")
			return
		}
		m.maybeYield()
	}
}

// maybeStart starts the group on an idle node when the rules allow: never
// while the peer reports a holding state, unless it is declared dead.
func (m *Machine) maybeStart() {
	if m.banned || m.isolated() {
		return
	}
	if !m.peer.alive {
		m.counters.Failovers++
		m.notify(slog.LevelWarn, "taking over from dead peer", "peer", m.cfg.Peer)
		m.start("peer dead")
		return
	}
	switch m.peer.state {
	case Failed:
		m.start("peer failed")
	case Fenced:
		if m.peerIdle() {
			m.start("peer fenced by the storage")
		}
	case Standby, Init:
		switch {
		case m.yield:
		case m.peer.flags&FlagTakeover != 0:
			// The peer's operator asked for the group: let it start.
		case m.peer.flags&FlagYield != 0:
			m.start("peer yields the group")
		case m.request:
			m.start("operator takeover")
		case m.peer.handedOver:
			m.start("peer handed over")
		case m.winsTie():
			m.start(m.tieReason())
		}
	}
}

func (m *Machine) tieReason() string {
	if m.cfg.Preferred != "" {
		return "both idle: preferred node"
	}
	return "both idle: smaller name"
}

// maybeYield hands the group over while Starting or Active when the peer
// must have it: both hold it (partition healed), the peer asked for it, or
// the preferred peer rejoined with AutoFailback.
func (m *Machine) maybeYield() {
	if !m.peer.alive {
		m.conflict = false
		return
	}
	ps := m.peer.state
	if m.state == Starting && m.claim && !m.peerIdle() && ps != Starting && ps != Active {
		// Nothing runs yet: withdraw and decide again once the peer is idle.
		m.claim = false
		m.become(Standby, "claim withdrawn: the peer is "+ps.String())
		return
	}
	if ps == Starting || ps == Active {
		if !m.winsTie() {
			m.handOver("both nodes hold the group: the peer keeps it")
			return
		}
		if !m.conflict {
			m.conflict, m.conflictSince = true, m.now
			m.notify(slog.LevelWarn, "both nodes hold the group: this node keeps it", "peer", m.cfg.Peer)
			return
		}
		if m.now-m.conflictSince >= m.cfg.DeadTime {
			// The loser stops within a keepalive of hearing us; if it still
			// holds after DeadTime it cannot hear us (one-way link failure)
			// and believes us dead. One of us must give way: we can hear it.
			m.handOver("the peer keeps holding the group and cannot hear this node: yielding")
		}
		return
	}
	m.conflict = false
	if m.peer.flags&FlagTakeover != 0 && !ps.holds() {
		m.handOver("peer requested takeover")
		return
	}
	if m.state == Active && m.cfg.AutoFailback && m.cfg.Preferred == m.cfg.Peer && m.peer.rejoined && ps == Standby {
		m.handOver("auto failback to the preferred node")
	}
}

// start starts the group. While the peer is alive the start is a claim:
// no resource runs before the peer acknowledges it (see FlagAck).
func (m *Machine) start(reason string) {
	m.claim = m.peer.alive
	m.retries, m.retryAt = 0, 0
	m.request, m.yield, m.conflict = false, false, false
	m.peer.handedOver = false
	for i := range m.res {
		m.res[i].restarts = 0
	}
	m.upTo = len(m.res)
	m.become(Starting, reason)
}

func (m *Machine) handOver(reason string) {
	m.counters.Handovers++
	m.yield, m.request, m.conflict = true, false, false
	m.peer.rejoined = false
	m.stopAll(toStandby, reason)
}

// failGroup stops the group after a local failure and bans this node.
func (m *Machine) failGroup(reason string) {
	m.banned = true
	m.counters.Handovers++
	m.notify(slog.LevelError, "group failed here: stopping it for the peer", "reason", reason)
	m.stopAll(toBanned, reason)
}

func (m *Machine) stopAll(after afterStop, reason string) {
	m.upTo, m.after = 0, after
	if m.state == Stopping {
		m.notify(slog.LevelInfo, "stopping the whole group", "reason", reason)
		return
	}
	m.become(Stopping, reason)
}

// drive is the group sequencer: while Starting or Stopping it stops the
// highest resource at or above upTo that may run (reverse order), else
// starts the lowest below upTo that is not running (start order), one
// operation at a time, and settles when nothing is left.
func (m *Machine) drive() {
	if m.state != Starting && m.state != Stopping && !(m.state == Fenced && m.draining) {
		return
	}
	if m.state == Starting && m.now < m.retryAt {
		return // fence start back-off
	}
	if m.state == Starting && m.claim {
		switch {
		case !m.peer.alive:
			m.claim = false
		case m.peer.flags&FlagAck != 0 && m.peerIdle():
			m.claim = false
			m.notify(slog.LevelInfo, "peer acknowledged the start", "peer", m.cfg.Peer)
		default:
			return
		}
	}
	for j := len(m.res) - 1; j >= m.upTo; j-- {
		r := &m.res[j]
		if r.st == rStopped || (m.draining && r.stopStage >= 3) {
			continue
		}
		if r.inflight {
			return
		}
		if r.stopStage == 1 {
			m.run(j, OpForceStop)
		} else {
			m.run(j, OpStop)
		}
		return
	}
	for j := 0; j < m.upTo; j++ {
		r := &m.res[j]
		if r.st == rRunning {
			continue
		}
		if r.inflight {
			return
		}
		m.run(j, OpStart)
		return
	}
	m.settle()
}

func (m *Machine) settle() {
	if m.state == Fenced {
		if m.draining {
			m.draining = false // FlagYield: the peer may take the group now
			m.notify(slog.LevelError, "group stopped after storage fencing: running the self-fence action", "reason", m.fencedBy)
			m.emit(SelfFence{Reason: m.fencedBy, Storage: true})
		}
		return
	}
	if m.state == Starting {
		for i := range m.res {
			m.res[i].nextMon = m.now + m.res[i].cfg.MonitorInterval
		}
		m.become(Active, "group running")
		return
	}
	switch m.after {
	case toInit:
		m.become(Init, "leftovers stopped")
	case toStandby:
		m.become(Standby, "group stopped")
	case toBanned:
		if m.peer.alive {
			m.become(Standby, "group stopped after a failure: the peer takes it")
		} else {
			m.become(Failed, "group stopped after a failure and no peer can take it: operator action needed")
		}
	case toRestart:
		// We held the group all along (Stopping, then Starting): the peer
		// never saw us idle, so no claim is needed.
		m.upTo, m.claim = len(m.res), false
		m.become(Starting, "restarting")
	case toFailed:
		m.become(Failed, "group stopped")
	}
}

func (m *Machine) run(j int, op Op) {
	r := &m.res[j]
	r.inflight, r.op = true, op
	var t time.Duration
	switch op {
	case OpStart:
		t = r.cfg.StartTimeout
	case OpStop, OpForceStop:
		t = r.cfg.StopTimeout
	case OpMonitor:
		t = r.cfg.MonitorTimeout
	}
	m.emit(RunResource{Name: r.cfg.Name, Op: op, Timeout: t})
}

// monitor schedules due monitors of an Active node.
func (m *Machine) monitor() {
	if m.state != Active {
		return
	}
	for j := range m.res {
		r := &m.res[j]
		if r.cfg.MonitorInterval > 0 && !r.inflight && r.st == rRunning && m.now >= r.nextMon {
			m.run(j, OpMonitor)
		}
	}
}

func (m *Machine) result(e ResourceResult) {
	j, ok := m.index[e.Name]
	if !ok {
		m.notify(slog.LevelWarn, "result for an unknown resource ignored", "resource", e.Name)
		return
	}
	r := &m.res[j]
	if !r.inflight || r.op != e.Op {
		m.notify(slog.LevelWarn, "unexpected resource result ignored", "resource", e.Name, "op", e.Op)
		return
	}
	r.inflight = false
	name := r.cfg.Name
	if e.Fenced && e.Err != nil && m.state != Fenced && m.state != Maintenance {
		r.st = rUnknown
		m.fenceByStorage(name, e.Err)
		return
	}
	if m.draining {
		m.drained(r, e)
		return
	}
	maint := m.state == Maintenance || m.state == Fenced
	switch e.Op {
	case OpStart:
		if e.Err == nil {
			r.st = rRunning
			return
		}
		r.st = rUnknown
		m.counters.StartFailures++
		m.notify(slog.LevelError, "start failed", "resource", name, "err", e.Err)
		if !maint && m.state == Starting && r.cfg.Fence && !m.peer.alive {
			// Nobody else can take the group: keep trying to fence, and
			// start nothing after the fence meanwhile.
			m.retries++
			m.counters.FenceRetries++
			backoff := m.cfg.DeadTime << min(m.retries-1, 10)
			if backoff > MaxFenceBackoff || backoff <= 0 {
				backoff = MaxFenceBackoff
			}
			m.retryAt = m.now + backoff
			m.notify(slog.LevelError, "fencing failed with the peer dead: nothing after it starts; retrying", "resource", name,
				"retry", m.retries, "backoff", backoff)
			return
		}
		if !maint && m.state == Starting {
			m.failGroup("start of " + name + " failed")
		}
	case OpStop:
		if e.Err == nil {
			r.st, r.stopStage = rStopped, 0
			return
		}
		r.st = rUnknown
		m.counters.StopFailures++
		if maint {
			m.notify(slog.LevelError, "stop failed", "resource", name, "err", e.Err)
			return
		}
		if r.stopStage == 0 {
			m.notify(slog.LevelWarn, "stop failed: forcing", "resource", name, "err", e.Err)
			r.stopStage = 1
			return
		}
		m.fence("resource " + name + " still runs after a forced stop: " + e.Err.Error())
	case OpForceStop:
		if e.Err != nil {
			m.notify(slog.LevelWarn, "force stop failed: stopping again", "resource", name, "err", e.Err)
		}
		r.stopStage = 2
	case OpMonitor:
		r.nextMon = m.now + r.cfg.MonitorInterval
		if m.state != Active || r.st != rRunning {
			return // stale: the group moved on while it ran
		}
		if e.Err == nil && e.Status == ResRunning {
			return
		}
		m.counters.MonitorFailures++
		r.st = rUnknown
		r.restarts++
		err := e.Err
		if err == nil {
			err = errors.New("resource is " + e.Status.String())
		}
		if r.restarts > r.cfg.MaxRestarts {
			m.notify(slog.LevelError, "monitor failed: restarts exhausted", "resource", name, "err", err, "max_restarts", r.cfg.MaxRestarts)
			m.failGroup(name + " failed " + strconv.Itoa(r.restarts) + " times")
			return
		}
		m.counters.Restarts++
		m.notify(slog.LevelWarn, "monitor failed: restarting", "resource", name, "err", err, "restart", r.restarts, "max_restarts", r.cfg.MaxRestarts)
		m.upTo, m.after = j, toRestart
		m.become(Stopping, "restarting "+name)
	}
}

func (m *Machine) fence(reason string) {
	m.notify(slog.LevelError, "fencing this node", "reason", reason)
	m.become(Fenced, "stop failed")
	m.emit(SelfFence{Reason: reason})
}

// fenceByStorage: the storage fenced this node off (our key preempted,
// RESERVATION CONFLICT). Stop everything at once, in reverse order, each
// resource forced first (kill the application, lazy unmount) then
// stopped; failures are logged, not escalated. Then SelfFence (settle).
// No restart, no re-registration: only CmdRejoin leaves Fenced.
func (m *Machine) fenceByStorage(name string, err error) {
	m.counters.StorageFenced++
	m.fencedBy = "storage fenced this node (" + name + "): " + err.Error()
	m.notify(slog.LevelError, "FENCED by the storage: stopping the group at once", "resource", name, "err", err)
	m.draining, m.claim, m.conflict, m.request = true, false, false, false
	m.upTo = 0
	for i := range m.res {
		if m.res[i].st != rStopped {
			m.res[i].stopStage = 1
		}
	}
	m.become(Fenced, "storage fenced this node")
}

// drained records a result while draining after storage fencing.
func (m *Machine) drained(r *resource, e ResourceResult) {
	switch e.Op {
	case OpForceStop:
		if e.Err != nil {
			m.notify(slog.LevelWarn, "force stop failed while fenced", "resource", r.cfg.Name, "err", e.Err)
		}
		r.stopStage = 2
	case OpStop:
		if e.Err == nil {
			r.st, r.stopStage = rStopped, 0
			return
		}
		m.counters.StopFailures++
		m.notify(slog.LevelError, "stop failed while fenced: giving up on it", "resource", r.cfg.Name, "err", e.Err)
		r.st, r.stopStage = rUnknown, 3
	default:
		// An operation started before the fencing (start, monitor): the
		// resource may run; force and stop it.
		if r.st != rStopped {
			r.st, r.stopStage = rUnknown, 1
		}
	}
}

// rejoin is CmdRejoin (see its doc).
func (m *Machine) rejoin(refuse func(string)) {
	if m.state != Fenced {
		refuse("the node is not fenced")
		return
	}
	if m.draining {
		refuse("the group is still being stopped here")
		return
	}
	for _, r := range m.res {
		if r.inflight || r.st != rStopped {
			refuse("resource " + r.cfg.Name + " may still run here: stop it (check with tandemctl status) before rejoining")
			return
		}
	}
	if m.holder != m.cfg.Peer {
		h := m.holder
		if h == "" {
			h = "nobody"
		}
		refuse("the peer does not hold the reservation (holder: " + h + "): rejoin only once the peer runs the group")
		return
	}
	m.fencedBy, m.banned, m.yield = "", false, true
	m.become(Standby, "operator rejoin: the peer holds the reservation")
}

func (m *Machine) command(k CommandKind) {
	refuse := func(why string) {
		m.notify(slog.LevelWarn, MsgCommandRefused, "command", k, "reason", why)
	}
	if k == CmdRejoin {
		m.notify(slog.LevelInfo, "command", "command", k)
		m.rejoin(refuse)
		return
	}
	if m.state == Fenced {
		refuse("node is fenced: rejoin it once stopped and the peer holds the reservation")
		return
	}
	if m.state == Maintenance && k != CmdMaintenanceOff && k != CmdMaintenanceOn {
		refuse("node is in maintenance: turn maintenance off first")
		return
	}
	m.notify(slog.LevelInfo, "command", "command", k)
	switch k {
	case CmdMaintenanceOn:
		if m.state != Maintenance {
			m.prev = m.state
			m.become(Maintenance, "operator")
		}
	case CmdMaintenanceOff:
		if m.state != Maintenance {
			return
		}
		// What runs is unknown: the operator may have touched it. Converge
		// on where the node was heading; Start and Stop are idempotent.
		for i := range m.res {
			m.res[i].st, m.res[i].stopStage, m.res[i].restarts = rUnknown, 0, 0
		}
		wasUp := m.prev == Starting || m.prev == Active || (m.prev == Stopping && m.after == toRestart)
		switch {
		case wasUp && m.peer.alive && m.peer.state.holds():
			// The peer took the group meanwhile (we were silent or seemed
			// dead): stop our copy rather than start a second one.
			m.upTo, m.after = 0, toStandby
			m.become(Stopping, "maintenance off: the peer holds the group")
		case wasUp:
			m.upTo, m.claim = len(m.res), m.peer.alive
			m.become(Starting, "maintenance off: the group was running here")
		case m.prev == Stopping:
			m.upTo = 0
			m.become(Stopping, "maintenance off: the group was stopping here")
		case m.prev == Init:
			m.upTo, m.after = 0, toInit
			m.become(Stopping, "maintenance off")
		case m.prev == Failed:
			m.upTo, m.after = 0, toFailed
			m.become(Stopping, "maintenance off")
		default:
			m.upTo, m.after = 0, toStandby
			m.become(Stopping, "maintenance off")
		}
	case CmdStandby:
		switch m.state {
		case Starting, Active:
			if !m.peer.alive || m.peer.state.holds() || m.peer.state == Failed {
				refuse("the peer cannot take the group (dead, failed, or busy): it would stay stopped")
				return
			}
			m.handOver("operator standby")
		case Failed:
			m.banned, m.yield = false, true
			m.become(Standby, "operator standby")
		case Standby, Init:
			m.yield, m.request = true, false
			m.sendNow = true
		case Stopping:
			refuse("already stopping")
		}
	case CmdTakeover:
		m.banned, m.yield = false, false
		switch m.state {
		case Starting, Active:
		case Stopping:
			refuse("stopping: retry when it is done")
		case Init:
			refuse("the peer has not been heard yet: the group starts after initdead if it stays silent")
		default:
			if m.peer.alive && m.peer.state.holds() {
				if m.peer.state != Starting && m.peer.state != Active {
					refuse("the peer is " + m.peer.state.String() + ": it cannot hand the group over now")
					return
				}
				m.request, m.sendNow = true, true
				if m.state == Failed {
					m.become(Standby, "operator takeover")
				}
				m.notify(slog.LevelInfo, "asking the peer to hand the group over", "peer", m.cfg.Peer)
				return
			}
			m.start("operator takeover")
		}
	}
}
