// Package control is tandem-agent's operator API: HTTP+JSON on a unix
// socket of mode 0600 (only root, or the socket's owner, may move the
// cluster). It holds the API's types, the server and the client that
// tandemctl uses.
//
//	GET  /v1/status       -> Status
//	POST /v1/standby      give the group to the peer
//	POST /v1/takeover     take the group from the peer
//	POST /v1/maintenance  {"on": true|false}: stop acting on failures
//	POST /v1/rejoin       clear a fenced node (stopped, peer holds the reservation)
package control

import (
	"context"
	"errors"
	"time"
)

// Status is the agent's state as the operator sees it.
type Status struct {
	Cluster   string           `json:"cluster"`
	Node      NodeStatus       `json:"node"`
	Peer      NodeStatus       `json:"peer"`
	Links     []LinkStatus     `json:"links"`
	Resources []ResourceStatus `json:"resources"`
	Failovers uint64           `json:"failovers"`
	// Fence is the storage fencing view (nil: no fence resource).
	Fence *FenceStatus `json:"fence,omitempty"`
	// DiskHeartbeat is the arbiter medium (nil: not configured).
	DiskHeartbeat *DiskHeartbeatStatus `json:"disk_heartbeat,omitempty"`
	Uptime        time.Duration        `json:"uptime_ns"`
	GeneratedAt   time.Time            `json:"generated_at"`
}

// NodeStatus is one node.
type NodeStatus struct {
	Name  string `json:"name"`
	State string `json:"state"` // init, standby, starting, active, stopping, failed, maintenance, fenced, dead, unknown
	// Alive is true when heartbeats from the node arrived within deadtime
	// (always true for this node).
	Alive bool `json:"alive"`
	// Boot is the node's boot generation.
	Boot uint64 `json:"boot,omitempty"`
	// Key is the node's reservation key (ha/fence.Key), hex.
	Key string `json:"key,omitempty"`
	// Fenced: the storage fenced this node; FencedBy says how. Only
	// `tandemctl rejoin` clears it.
	Fenced   bool   `json:"fenced,omitempty"`
	FencedBy string `json:"fenced_by,omitempty"`
	// Reason is why the node entered State (this node only). Cause is the
	// failure that last banned it from holding the group, with the
	// resource's error ("start of mq failed: start: strmqm: ..."); it is
	// kept until the group starts here again, so a failed node says why.
	Reason string `json:"reason,omitempty"`
	Cause  string `json:"cause,omitempty"`
}

// FenceStatus is the last fence monitor's answer (cached by the agent).
type FenceStatus struct {
	// Resource is the fence resource's name.
	Resource string `json:"resource"`
	// Holder is the node whose key holds the reservation ("" none; the
	// hex key when it is no node of this cluster); HolderKey its key.
	Holder    string `json:"holder"`
	HolderKey string `json:"holder_key,omitempty"`
	// Keys are the registered keys (READ KEYS), hex.
	Keys []string `json:"keys,omitempty"`
}

// DiskHeartbeatStatus is the disk heartbeat on the arbiter LUN.
type DiskHeartbeatStatus struct {
	// OK: our last round (write our slot, read the peer's) succeeded.
	OK        bool      `json:"ok"`
	LastError string    `json:"last_error,omitempty"`
	LastOK    time.Time `json:"last_ok,omitzero"`
	// Seq is our last written sequence.
	Seq uint64 `json:"seq"`
	// PeerAlive: the peer's slot changed within deadtime.
	PeerAlive bool `json:"peer_alive"`
	// PeerLastSeen is when the peer's slot last changed (zero: never),
	// with its PeerSeq and PeerState.
	PeerLastSeen time.Time `json:"peer_last_seen,omitzero"`
	PeerSeq      uint64    `json:"peer_seq"`
	PeerState    string    `json:"peer_state,omitempty"`
}

// LinkStatus is one heartbeat link.
type LinkStatus struct {
	Name string `json:"name"`
	Mode string `json:"mode"`
	// Up is true when a heartbeat arrived on this link within deadtime.
	Up bool `json:"up"`
	// LastSeen is when the peer's last heartbeat arrived (zero: never).
	LastSeen time.Time `json:"last_seen,omitzero"`
	// RTT is the last measured round trip (zero: not measured yet).
	RTT        time.Duration `json:"rtt_ns"`
	Sent       uint64        `json:"sent"`
	Received   uint64        `json:"received"`
	Lost       uint64        `json:"lost"`
	Forged     uint64        `json:"forged"`
	Foreign    uint64        `json:"foreign"`
	Replayed   uint64        `json:"replayed"`
	Malformed  uint64        `json:"malformed"`
	SendErrors uint64        `json:"send_errors"`
}

// ResourceStatus is one resource of the group.
type ResourceStatus struct {
	Name      string `json:"name"`
	Type      string `json:"type"`
	State     string `json:"state"` // as the state machine sees it
	Restarts  int    `json:"restarts"`
	LastError string `json:"last_error,omitempty"`
}

// Command is an operator request.
type Command string

// Commands.
const (
	CmdStandby        Command = "standby"
	CmdTakeover       Command = "takeover"
	CmdMaintenanceOn  Command = "maintenance-on"
	CmdMaintenanceOff Command = "maintenance-off"
	CmdRejoin         Command = "rejoin"
)

// Backend is what the server serves: the agent.
type Backend interface {
	Status() Status
	// Command queues an operator command; it returns once the state
	// machine has accepted it, not when the group has moved.
	Command(ctx context.Context, c Command) error
}

// ErrUnknownCommand is returned by Backend.Command for a Command it does not know.
var ErrUnknownCommand = errors.New("unknown command")
