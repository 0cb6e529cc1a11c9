package fsm

import "time"

// NextDeadline is the earliest instant after the last event's Now at which
// a Tick can change what the machine does: the peer or a link declared
// dead (last heard + DeadTime), the next keepalive, initdead, a due
// monitor, the end of a conflict's grace, a fence retry, the arbiter's
// verdicts. The runtime steps a Tick at that instant (duty 2), so nothing
// is decided later than its deadline by the tick period. ok is false when
// nothing is pending.
func (m *Machine) NextDeadline() (at time.Duration, ok bool) {
	consider := func(t time.Duration) {
		if t > m.now && (!ok || t < at) {
			at, ok = t, true
		}
	}
	if !m.booted {
		return 0, false
	}
	consider(m.nextHB)
	if m.state == Init {
		consider(m.initDeadline)
	}
	if m.peer.netHeard {
		consider(m.peer.last + m.cfg.DeadTime)
	}
	for _, l := range m.peer.links {
		if l.up {
			consider(l.last + m.cfg.DeadTime)
		}
	}
	if m.conflict {
		consider(m.conflictSince + m.cfg.DeadTime)
	}
	if m.state == Starting {
		consider(m.retryAt)
	}
	if m.state == Active {
		for _, r := range m.res {
			if r.cfg.MonitorInterval > 0 && !r.inflight && r.st == rRunning {
				consider(r.nextMon)
			}
		}
	}
	if m.cfg.Arbiter {
		if m.peer.diskHeard {
			consider(m.peer.diskLast + m.cfg.DeadTime)
		}
		consider(m.diskOK + m.cfg.DeadTime)
		if m.diskSeen {
			consider(m.diskOK + m.cfg.DeadTime/2)
		}
		consider(m.netWarnAt)
	}
	return at, ok
}
