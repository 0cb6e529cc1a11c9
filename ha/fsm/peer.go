package fsm

import (
	"log/slog"
	"time"
)

// Peer tracking: what the heartbeats (links and disk) say of the peer,
// and the liveness rules derived from it.

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
	// released: the peer's guard said its agent died and the group is
	// stopped there (Heartbeat.Released); the peer is down until a
	// heartbeat of a new run.
	released bool
	// The disk heartbeat: when the peer's slot last changed.
	diskHeard bool
	diskLast  time.Duration
	diskSeq   uint64
	diskState NodeState
}

// peerIdle: the peer holds nothing: an idle state, or fenced by the
// storage and done stopping (FlagYield while Fenced).
func (m *Machine) peerIdle() bool {
	return !m.peer.state.holds() || (m.peer.state == Fenced && m.peer.flags&FlagYield != 0)
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
	if p.released && e.Boot <= p.boot {
		return // the slot of the run that died (its guard's word names it), read after that word
	}
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
	if e.Released {
		m.peerReleased(e)
		return
	}
	p.released = false
	switch {
	case newBoot:
		m.notify(slog.LevelWarn, "peer restarted", "peer", m.cfg.Peer, "state", e.State)
		p.rejoined, p.held, p.handedOver = true, false, false
		m.markReannounce("the peer restarted while this node held the group")
	case !p.alive:
		m.notify(slog.LevelInfo, "peer alive", "peer", m.cfg.Peer, "state", e.State)
		p.rejoined, p.held, p.handedOver = true, false, false
		m.markReannounce("the peer came back while this node held the group")
	}
	if e.State.holds() && !(e.State == Fenced && e.Flags&FlagYield != 0) {
		m.markReannounce("the peer held the group too")
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

// peerReleased: the peer's guard stopped the group after its agent died
// (Heartbeat.Released). The peer holds nothing and will not answer, so it
// is down now, as if declared dead, and a graceful hand-over: this node
// takes the group without waiting for deadtime or an acknowledgement.
func (m *Machine) peerReleased(e Heartbeat) {
	p := &m.peer
	if !p.released {
		m.notify(slog.LevelWarn, "peer released the group: its agent died and its guard stopped the group", "peer", m.cfg.Peer)
	}
	p.heard, p.alive, p.released = true, false, true
	p.state, p.flags, p.boot, p.seq = Standby, FlagYield, e.Boot, e.Seq
	p.held, p.handedOver, p.rejoined = false, false, false
	m.conflict, m.yield, m.request = false, false, false
	m.sendNow = true
}

// markReannounce notes that the peer may have held the group's addresses
// while this node holds the group (Starting or Active).
func (m *Machine) markReannounce(why string) {
	if (m.state == Starting || m.state == Active) && !m.reannounce {
		m.reannounce, m.whyAnnounce = true, why
	}
}

// maybeReannounce emits Reannounce once this node runs the group and the
// peer that may have held it holds nothing (or is gone): the addresses
// are ours alone again, and the neighbours must learn it.
func (m *Machine) maybeReannounce() {
	switch {
	case !m.reannounce:
	case m.state != Starting && m.state != Active:
		m.reannounce = false
	case m.state == Active && (!m.peer.alive || m.peerIdle()):
		m.reannounce = false
		m.notify(slog.LevelInfo, "re-announcing the group's addresses", "reason", m.whyAnnounce)
		m.emit(Reannounce{Reason: m.whyAnnounce})
	}
}
