// Package control is tandem-agent's operator API: HTTP+JSON on a unix
// socket of mode 0600 (only root, or the socket's owner, may move the
// cluster). It holds the API's types, the server and the client that
// tandemctl uses.
//
//	GET  /v1/status       -> Status
//	POST /v1/standby      give the group to the peer
//	POST /v1/takeover     take the group from the peer
//	POST /v1/maintenance  {"on": true|false}: stop acting on failures
package control

import (
	"context"
	"errors"
	"time"
)

// Status is the agent's state as the operator sees it.
type Status struct {
	Cluster     string           `json:"cluster"`
	Node        NodeStatus       `json:"node"`
	Peer        NodeStatus       `json:"peer"`
	Links       []LinkStatus     `json:"links"`
	Resources   []ResourceStatus `json:"resources"`
	Failovers   uint64           `json:"failovers"`
	Uptime      time.Duration    `json:"uptime_ns"`
	GeneratedAt time.Time        `json:"generated_at"`
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
