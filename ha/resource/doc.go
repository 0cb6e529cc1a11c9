// Package resource defines the members of a tandem-agent resource group: the
// Resource interface the failover state machine drives (start, stop, monitor,
// in the order of the configuration), the YAML Spec of one resource, and the
// registry that turns a Spec into a Resource.
//
// Implementations live in subpackages (vip, script, lsb, filesystem) and
// register themselves in init; import ha/resource/all to get every type.
//
// Duties of an implementation, after heartbeat's resource agents:
//  1. Start of a running resource and Stop of a stopped one succeed.
//  2. Every operation honours its ctx (the agent sets the per-op timeout) and
//     leaves nothing running behind when it expires.
//  3. The factory given to Register only checks the Spec; it changes nothing
//     on the host, so Spec.Validate can call it while loading configuration.
package resource
