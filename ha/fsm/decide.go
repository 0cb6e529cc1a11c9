package fsm

import "log/slog"

// Coordination: who holds the group, decided after every input.

// winsTie reports whether this node keeps or takes the group when the
// nodes disagree: the preferred node, else the lexically smaller name.
// Both nodes compute the same answer from the same Config.
func (m *Machine) winsTie() bool {
	if m.cfg.Preferred != "" {
		return m.cfg.Preferred == m.cfg.Self
	}
	return m.cfg.Self < m.cfg.Peer
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
		if m.peer.released {
			m.notify(slog.LevelWarn, "taking over from released peer", "peer", m.cfg.Peer)
			m.start("peer released the group")
			return
		}
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
	m.cause, m.causeRes = "", ""
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
func (m *Machine) failGroup(res, reason string) {
	m.banned = true
	m.cause, m.causeRes = reason, res
	m.counters.Handovers++
	m.notify(slog.LevelError, "group failed here: stopping it for the peer", "reason", reason)
	m.stopAll(toBanned, reason)
}
