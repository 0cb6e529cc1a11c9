package agent

import (
	"strings"
	"time"

	"github.com/tandem-ha/tandem/ha/fence"

	"github.com/tandem-ha/tandem/ha/control"
	"github.com/tandem-ha/tandem/ha/fsm"
)

// Status is the control API's view of the agent; safe to call from any
// goroutine. Liveness and states are the machine's; last-seen times, RTT
// and counters are this runtime's.
func (a *Agent) Status() control.Status {
	a.mu.Lock()
	defer a.mu.Unlock()
	s := a.state
	st := control.Status{
		Cluster:     a.cfg.Cluster,
		Node:        control.NodeStatus{Name: a.cfg.Node, State: stateName(s.State), Alive: true, Boot: a.boot},
		Peer:        control.NodeStatus{Name: a.cfg.Peer, State: "unknown", Alive: s.Peer.Alive, Boot: s.Peer.Boot},
		Failovers:   s.Counters.Failovers,
		Uptime:      a.now(),
		GeneratedAt: time.Now(),
	}
	st.Node.Key = fence.FormatKey(a.key)
	st.Peer.Key = fence.FormatKey(fence.Key(a.cfg.Cluster, a.cfg.Peer))
	st.Node.Fenced, st.Node.FencedBy = s.State == fsm.Fenced, s.FencedBy
	st.Node.Reason, st.Node.Cause = s.Reason, a.failureCause(s)
	for _, spec := range a.cfg.Resources {
		if spec.Type != fence.Type {
			continue
		}
		fs := &control.FenceStatus{Resource: spec.Name}
		if h, ok := a.env.Get(spec.Name + ".holder"); ok && h != "" {
			fs.HolderKey = h
			fs.Holder = h
			for _, n := range []string{a.cfg.Node, a.cfg.Peer} {
				if fence.FormatKey(fence.Key(a.cfg.Cluster, n)) == h {
					fs.Holder = n
				}
			}
		}
		if k, ok := a.env.Get(spec.Name + ".keys"); ok && k != "" {
			fs.Keys = strings.Split(k, ",")
		}
		st.Fence = fs
		break
	}
	if a.dhb != nil {
		ds := a.ds
		st.DiskHeartbeat = &control.DiskHeartbeatStatus{OK: ds.ok, LastError: ds.lastErr, LastOK: ds.lastOK,
			Seq: ds.seq, PeerLastSeen: ds.peerSeen, PeerSeq: ds.peerSeq,
			PeerAlive: ds.peerHeardAny && a.now()-ds.peerSeenAt < a.cfg.Timing.DeadTime}
		if ds.peerHeardAny {
			st.DiskHeartbeat.PeerState = stateName(ds.peerState)
		}
	}
	switch {
	case s.Peer.Alive:
		st.Peer.State = stateName(s.Peer.State)
	case s.Peer.Heard:
		st.Peer.State = "dead"
	}
	for i, ls := range a.ls {
		c := a.links[i].Counters().Snapshot()
		up := i < len(s.Links) && s.Links[i].Up
		st.Links = append(st.Links, control.LinkStatus{
			Name: a.cfg.Links[i].Name, Mode: a.cfg.Links[i].Mode, Up: up, LastSeen: ls.lastSeen,
			RTT: ls.rtt, Sent: c.Sent, Received: c.Received, Lost: c.Lost, Forged: c.Forged,
			Foreign: c.Foreign, Replayed: c.Replayed, Malformed: c.Malformed, SendErrors: c.SendErrors,
		})
	}
	for i, spec := range a.cfg.Resources {
		rs := control.ResourceStatus{Name: spec.Name, Type: spec.Type, State: "unknown", LastError: a.rs[i].lastErr}
		if i < len(s.Resources) {
			r := s.Resources[i]
			rs.State = r.Status.String()
			if r.Busy {
				rs.State += " (" + r.Op.String() + "ing)"
			}
			rs.Restarts = r.Restarts
		}
		st.Resources = append(st.Resources, rs)
	}
	return st
}

func stateName(s fsm.NodeState) string { return strings.ToLower(s.String()) }

// failureCause is the failure that last banned this node, with the failed
// resource's own error (the machine knows only that it failed).
func (a *Agent) failureCause(s fsm.Status) string {
	if s.Cause == "" {
		return ""
	}
	if i, ok := a.byName[s.CauseResource]; ok && a.rs[i].lastFailure != "" {
		return s.Cause + ": " + a.rs[i].lastFailure
	}
	return s.Cause
}
