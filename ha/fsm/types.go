package fsm

import (
	"log/slog"
	"strconv"
	"time"
)

// NodeState is a node's role in the group. The values travel in heartbeats
// (heartbeat.Message.State), so the list is append-only.
type NodeState uint8

const (
	// Init: the agent just started; it stops leftovers (reported as
	// Stopping meanwhile) and waits up to InitDead to hear the peer.
	Init NodeState = iota
	// Standby: holds nothing and may take the group.
	Standby
	// Starting: starting the group in order.
	Starting
	// Active: the whole group runs here and is monitored.
	Active
	// Stopping: stopping the group (or part of it) in reverse order.
	Stopping
	// Failed: holds nothing and will not take the group until an operator
	// command: the group failed here while no peer could take it.
	Failed
	// Maintenance: the operator froze the node; resources are left as they
	// are and nothing is monitored or acted on.
	Maintenance
	// Fenced: a stop failed even after ForceStop, or the storage fenced
	// this node (its reservation key was preempted: ResourceResult.Fenced);
	// the node stopped what it could and ran its self-fence action. It
	// leaves the state only on CmdRejoin.
	Fenced
)

var stateNames = [...]string{"Init", "Standby", "Starting", "Active", "Stopping", "Failed", "Maintenance", "Fenced"}

func (s NodeState) String() string {
	if int(s) < len(stateNames) {
		return stateNames[s]
	}
	return "NodeState(" + strconv.Itoa(int(s)) + ")"
}

// holds reports whether a node in state s may hold resources, so its peer
// must not start them (unless it is declared dead).
func (s NodeState) holds() bool {
	switch s {
	case Starting, Active, Stopping, Maintenance, Fenced:
		return true
	}
	return false
}

// Flags are bits carried next to the state in heartbeats
// (heartbeat.Message.Flags); append-only.
type Flags uint8

const (
	// FlagTakeover asks the peer to hand the group over: the operator
	// issued takeover here while the peer holds the group.
	FlagTakeover Flags = 1 << iota
	// FlagYield says an idle node will not take the group: it handed it
	// over (operator standby, failback, lost conflict) or the group failed
	// here. Its peer may start at once even if this node would win the tie,
	// and even if it missed the hand-over itself (lost datagrams).
	FlagYield
	// FlagAck says: "I am idle, I see you Starting or Active, and I will not
	// start while I do". A node that decides to start while its peer is
	// alive claims the group (Starting) but runs no resource until the
	// peer's heartbeats carry FlagAck, so two nodes deciding at once on
	// stale views (lost heartbeats) never both run the group.
	FlagAck
	// FlagDisk says: "my I/O to the arbiter LUN works" (it succeeded within
	// DeadTime). An Active node whose own arbiter I/O has failed for
	// DeadTime hands the group over to a peer that sends it: the peer
	// reaches the storage, this node does not (its writes fail), so the
	// peer takes over and fences it at once instead of waiting for a
	// fence monitor to time out. A peer that does not send it (storage
	// down for both, or no arbiter) gets nothing handed over this way.
	FlagDisk
)

// A Fenced node that the storage fenced (its key preempted) and that has
// stopped its group sends FlagYield (and FlagAck): it cannot write the
// disk any more, so its peer may take the group, fencing first.

// Op is a resource operation.
type Op int

const (
	OpStart Op = iota
	OpStop
	OpMonitor
	// OpForceStop escalates a failed stop (resource.Forcer); the runtime
	// reports success for resources that are not Forcers.
	OpForceStop
)

func (o Op) String() string {
	switch o {
	case OpStart:
		return "start"
	case OpStop:
		return "stop"
	case OpMonitor:
		return "monitor"
	case OpForceStop:
		return "forcestop"
	}
	return "Op(" + strconv.Itoa(int(o)) + ")"
}

// ResStatus duplicates resource.Status so the machine imports no adapter.
type ResStatus int

const (
	ResRunning ResStatus = iota
	ResStopped
	ResFailed
)

func (s ResStatus) String() string {
	switch s {
	case ResRunning:
		return "running"
	case ResStopped:
		return "stopped"
	case ResFailed:
		return "failed"
	}
	return "ResStatus(" + strconv.Itoa(int(s)) + ")"
}

// CommandKind is an operator command.
type CommandKind int

const (
	// CmdStandby hands the group to the peer (refused unless the peer is
	// alive and idle).
	CmdStandby CommandKind = iota
	// CmdTakeover takes the group: starts it, or asks the holding peer to
	// hand it over. Clears a local failure ban.
	CmdTakeover
	// CmdMaintenanceOn freezes the node: no monitoring, no actions.
	CmdMaintenanceOn
	// CmdMaintenanceOff resumes: the group is brought to where the node was
	// heading before (started if it was Starting/Active, else stopped).
	CmdMaintenanceOff
	// CmdRejoin clears a Fenced node: accepted only when everything is
	// stopped here and the peer holds the reservation (ReservationHolder).
	// The node becomes Standby, yielding to the peer.
	CmdRejoin
)

func (c CommandKind) String() string {
	switch c {
	case CmdStandby:
		return "standby"
	case CmdTakeover:
		return "takeover"
	case CmdMaintenanceOn:
		return "maintenance-on"
	case CmdMaintenanceOff:
		return "maintenance-off"
	case CmdRejoin:
		return "rejoin"
	}
	return "CommandKind(" + strconv.Itoa(int(c)) + ")"
}

// Event is an input of Machine.Step.
type Event interface{ isEvent() }

// Tick advances the clock. Now is monotonic time since the agent started;
// it must never go backwards. Tick at least every Keepalive/2.
type Tick struct{ Now time.Duration }

// Heartbeat is an authenticated, non-replayed heartbeat (heartbeat.Filter
// already accepted it) received on link Link at time Now.
//
// Released marks the datagram of the peer's guard (heartbeat.TypeReleased):
// the peer's agent died and its guard stopped the group there. The peer
// holds nothing and nobody runs on its node to acknowledge a claim, so
// the machine treats it as a graceful hand-over by a peer that is gone:
// the peer is down at once (no deadtime wait) and this node takes the
// group. State and Flags are then not read.
type Heartbeat struct {
	Link     int
	Node     string
	Boot     uint64
	Seq      uint64
	State    NodeState
	Flags    Flags
	Released bool
	Now      time.Duration
}

// ResourceResult reports the end of a RunResource action: Err is non-nil
// when the operation failed or timed out. Status is meaningful for
// OpMonitor only. Fenced says Err matches resource.ErrFenced: the storage
// fenced this node off, so the machine stops the group at once, enters
// Fenced and emits SelfFence instead of restarting anything.
type ResourceResult struct {
	Name   string
	Op     Op
	Err    error
	Status ResStatus
	Fenced bool
}

// DiskBeat is the peer's slot on the arbiter LUN, read at Now, passed only
// when it changed since the last read (ha/diskhb.Tracker): a third
// heartbeat medium next to the network links (Config.Arbiter).
type DiskBeat struct {
	Node  string
	Boot  uint64
	Seq   uint64
	State NodeState
	Now   time.Duration
}

// DiskStatus reports one round of the disk heartbeat at Now: OK when this
// node's slot was written and the peer's slot read.
type DiskStatus struct {
	OK  bool
	Now time.Duration
}

// ReservationHolder says which node holds the persistent reservation
// ("" none or unknown), as the fence read it; CmdRejoin needs the peer.
type ReservationHolder struct{ Node string }

// Command is an operator command (tandemctl via the control socket).
type Command struct{ Kind CommandKind }

func (Tick) isEvent()              {}
func (Heartbeat) isEvent()         {}
func (ResourceResult) isEvent()    {}
func (Command) isEvent()           {}
func (DiskBeat) isEvent()          {}
func (DiskStatus) isEvent()        {}
func (ReservationHolder) isEvent() {}

// Action is an output of Machine.Step, for the runtime to carry out.
type Action interface{ isAction() }

// SendHeartbeat sends one heartbeat with State and Flags on every link.
type SendHeartbeat struct {
	State NodeState
	Flags Flags
}

// RunResource runs Op on resource Name with Timeout, in the background,
// and reports a ResourceResult when done. The machine never has two
// operations outstanding on one resource.
type RunResource struct {
	Name    string
	Op      Op
	Timeout time.Duration
}

// SelfFence: a resource could not be stopped, or the storage fenced this
// node (Storage; the group was stopped first); the node must take itself
// out of the cluster (production: immediate reboot) so the peer can take
// over safely once it declares this node dead.
type SelfFence struct {
	Reason  string
	Storage bool
}

// MsgCommandRefused is the Msg of the Notify emitted when an operator
// command is refused; its "reason" attribute says why, for the operator.
const MsgCommandRefused = "command refused"

// Notify is a log line for the runtime to print; Attrs are slog key-value
// pairs with stable keys (node, peer, resource, link, from, to, reason).
type Notify struct {
	Level slog.Level
	Msg   string
	Attrs []any
}

// Reannounce: this node keeps the group after the peer may have held it
// too (both held it, the peer came back after seeming dead, or left a
// holding state while this node was running): neighbours may still send
// the group's addresses to the peer. The runtime re-announces them
// (resource.Announcer: gratuitous ARP for a VIP), in the background.
type Reannounce struct {
	Reason string
}

func (Reannounce) isAction()    {}
func (SendHeartbeat) isAction() {}
func (RunResource) isAction()   {}
func (SelfFence) isAction()     {}
func (Notify) isAction()        {}
