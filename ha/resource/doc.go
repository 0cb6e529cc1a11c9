// Package resource defines the members of a tandem-agent resource group: the
// Resource interface the failover state machine drives (start, stop, monitor,
// in the order of the configuration), the YAML Spec of one resource, and the
// registry that turns a Spec into a Resource.
//
// Implementations register themselves in init; import ha/resource/all to
// get every type (a test of ha/cmd/tandem-agent checks this list against
// the registry):
//
//	vip         ha/resource/vip         virtual IPv4 address, gratuitous ARP
//	script      ha/resource/script      heartbeat resource.d script
//	lsb         ha/resource/lsb         System V init script (LSB exit codes)
//	filesystem  ha/resource/filesystem  fsck and mount of a block device
//	iscsi       ha/resource/iscsi       kernel initiator session to the shared LUN
//	fence       ha/fence                SCSI-3 persistent reservation on the shared LUNs
//	mq          ha/resource/mq          IBM MQ queue manager (through mqres)
//
// Duties of an implementation, after heartbeat's resource agents:
//  1. Start of a running resource and Stop of a stopped one succeed.
//  2. Every operation honours its ctx (the agent sets the per-op timeout) and
//     leaves nothing running behind when it expires.
//  3. The factory given to Register only checks the Spec; it changes nothing
//     on the host, so Spec.Validate can call it while loading configuration.
package resource
