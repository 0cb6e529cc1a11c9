package fsm

import "log/slog"

// Fencing: self-fence after a stop that failed for good, storage fencing
// (drain, then self-fence), and the operator rejoin that leaves it.

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

// restoreFenced starts the node Fenced, as an earlier run of the agent
// left it (Config.FencedBy): everything is forced and stopped like after
// fencing, without running the self-fence action again.
func (m *Machine) restoreFenced(reason string) {
	m.fencedBy, m.restored = reason, true
	m.notify(slog.LevelError, "FENCED by the storage in an earlier run: stopping leftovers; only tandemctl rejoin clears it", "reason", reason)
	m.draining, m.upTo = true, 0
	for i := range m.res {
		m.res[i].stopStage = 1
	}
	m.become(Fenced, "fenced in an earlier run")
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
	m.fencedBy, m.banned, m.yield, m.restored = "", false, true, false
	m.become(Standby, "operator rejoin: the peer holds the reservation")
}
