package fsm

import "log/slog"

// Operator commands.

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
