// Package tools holds tandemctl (cmd/tandemctl), the operator's command
// line for tandem-agent: it talks to the agent's control socket
// (ha/control, default control.DefaultSocket, --socket to change) and
// offers exactly these commands:
//
//	status [--json]       nodes, links, state, resources, fence keys, holder and disk heartbeat
//	standby               hand the resource group to the peer
//	takeover              take the resource group from the peer
//	maintenance on|off    freeze or resume failure handling on this node
//	rejoin                let a fenced node rejoin as standby
//	import heartbeat DIR  ha.cf, haresources, authkeys -> agent.yaml + key file (importer/heartbeat)
//	import tgt FILE       targets.conf -> target.yaml + CHAP secret files (importer/tgt)
//
// It does not provision: targets, LUNs and CHAP are set in tandem-target's
// config file or through its admin socket's HTTP API (target/admin).
package tools
