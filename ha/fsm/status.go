package fsm

import "time"

// Status is a snapshot of the machine for the control socket and metrics.
type Status struct {
	Node  string
	State NodeState
	Flags Flags
	Now   time.Duration
	// Banned: the group failed here; only an operator command clears it.
	// Yielding: the group was handed to the peer; this node takes it back
	// only if the peer dies or fails.
	// Claiming: Starting, waiting for the peer's acknowledgement.
	Banned, Yielding, Claiming bool
	// StorageFenced: the storage fenced this node (FencedBy says how);
	// only CmdRejoin clears it. Isolated: with an arbiter, neither the
	// peer nor the arbiter is reachable.
	StorageFenced, Isolated bool
	FencedBy                string
	// Reason is why the machine entered State (the state log line's
	// reason). Cause is the failure that last banned this node ("start
	// of mq failed"); empty once the group started here again.
	// CauseResource names the resource that failed.
	Reason, Cause, CauseResource string
	// Holder is the reservation holder last reported (ReservationHolder).
	Holder string
	// Arbiter: a disk heartbeat is configured; DiskLastOK is when our
	// last disk round succeeded.
	Arbiter    bool
	DiskLastOK time.Duration
	Peer       PeerStatus
	Links      []LinkStatus
	Resources  []ResourceStatus
	Counters   Counters
}

// PeerStatus is the peer as last heard.
type PeerStatus struct {
	Name         string
	Heard, Alive bool
	// Released: the peer's guard released the group after its agent died;
	// the peer is down until a new run of its agent is heard.
	Released  bool
	State     NodeState
	Boot      uint64
	LastHeard time.Duration
	// The disk heartbeat: the peer's slot last changed at DiskLast, with
	// DiskSeq and DiskState.
	DiskHeard bool
	DiskLast  time.Duration
	DiskSeq   uint64
	DiskState NodeState
}

// LinkStatus is one heartbeat link: up while the peer was heard on it
// within DeadTime.
type LinkStatus struct {
	Heard, Up bool
	LastHeard time.Duration
}

// ResourceStatus is one resource as the machine knows it: Failed means
// "may be running, state unknown" (a failed operation).
type ResourceStatus struct {
	Name     string
	Status   ResStatus
	Busy     bool
	Op       Op // the operation in flight when Busy
	Restarts int
}

// Status returns a snapshot.
func (m *Machine) Status() Status {
	s := Status{
		Node: m.cfg.Self, State: m.state, Flags: m.flags(), Now: m.now,
		Reason: m.reason, Cause: m.cause, CauseResource: m.causeRes, Banned: m.banned, Yielding: m.yield, Claiming: m.claim, Counters: m.counters,
		Peer: PeerStatus{
			Name: m.cfg.Peer, Heard: m.peer.heard, Alive: m.peer.alive, Released: m.peer.released,
			State: m.peer.state, Boot: m.peer.boot, LastHeard: m.peer.last,
			DiskHeard: m.peer.diskHeard, DiskLast: m.peer.diskLast, DiskSeq: m.peer.diskSeq, DiskState: m.peer.diskState,
		},
		StorageFenced: m.state == Fenced && m.fencedBy != "", FencedBy: m.fencedBy, Holder: m.holder,
		Isolated: m.booted && m.isolated(), Arbiter: m.cfg.Arbiter, DiskLastOK: m.diskOK,
	}
	for _, l := range m.peer.links {
		s.Links = append(s.Links, LinkStatus{Heard: l.heard, Up: l.up, LastHeard: l.last})
	}
	for _, r := range m.res {
		rs := ResourceStatus{Name: r.cfg.Name, Busy: r.inflight, Op: r.op, Restarts: r.restarts}
		switch r.st {
		case rRunning:
			rs.Status = ResRunning
		case rStopped:
			rs.Status = ResStopped
		default:
			rs.Status = ResFailed
		}
		s.Resources = append(s.Resources, rs)
	}
	return s
}
