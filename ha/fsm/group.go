package fsm

import (
	"errors"
	"log/slog"
	"strconv"
	"time"
)

// The group sequencer: start and stop in order, monitors, and the
// results of resource operations (the stop escalation among them).

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
		if m.draining && m.restored {
			m.draining = false // FlagYield: the peer may take the group now
			m.notify(slog.LevelWarn, "leftovers stopped: fenced until tandemctl rejoin", "reason", m.fencedBy)
		} else if m.draining {
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
			m.failGroup(name, "start of "+name+" failed")
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
			m.failGroup(name, name+" failed "+strconv.Itoa(r.restarts)+" times")
			return
		}
		m.counters.Restarts++
		m.notify(slog.LevelWarn, "monitor failed: restarting", "resource", name, "err", err, "restart", r.restarts, "max_restarts", r.cfg.MaxRestarts)
		m.upTo, m.after = j, toRestart
		m.become(Stopping, "restarting "+name)
	}
}
