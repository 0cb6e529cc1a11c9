// Package fence is tandem-agent's storage fencing: the `fence` resource
// (params.type: scsi-pr) that makes the active node the only one that can
// write the shared LUNs, with SCSI-3 persistent reservations (SPC-4 5.12).
//
// # Keys
//
// Each node's reservation key is derived, never configured, so both nodes
// and tandemctl compute the same keys and a restart keeps them:
//
//	Key(cluster, node) = SHA-256(cluster)[0:4] || SHA-256(node)[0:4]
//
// as one big-endian uint64. A result of 0 (which SPC-4 reserves for "no
// key") becomes 1. Two nodes of one cluster share the high half, so an
// operator reading READ KEYS sees which keys belong to which cluster.
// InitiatorName and ISID derive the native initiator's iSCSI name and
// session id from the same inputs, so a redial after a lost connection is
// the same I_T nexus and keeps its registration.
//
// # Start: take the storage
//
// On every LUN, in order: REGISTER AND IGNORE EXISTING KEY our key; then,
// if another key holds the reservation, PREEMPT AND ABORT it with type 5
// (WRITE EXCLUSIVE - REGISTRANTS ONLY), which removes every registration
// of that key and aborts its queued writes (SPC-4 5.12.11.2.4); any other
// foreign key is preempted the same way, as under type 5 every registrant
// may write. A target that answers INVALID FIELD IN CDB (tgt 1.0.85)
// gets PREEMPT instead, with a Warn that the old node's in-flight writes
// were not aborted. Without a reservation: RESERVE type 5. Finally READ
// KEYS must list no foreign key and READ RESERVATION must name ours: only
// then does Start return nil. If the storage is unreachable Start fails,
// saying why; the state machine starts nothing after the fence and retries
// while the peer is dead (fsm.ResourceConfig.Fence).
//
// # The I_T nexus
//
// A registration belongs to one I_T nexus (initiator port = initiator name
// + ISID). With a kernel device (params.devices, e.g. ${disk.device}) the
// SG_IO commands travel on the very session that carries the filesystem's
// I/O, so that nexus is the registrant. With a native session (params
// portal/target/luns) the fence resource has its own nexus and shares
// nothing with the application: every process that writes must register
// the node's key (Key) on its own nexus before writing, and again after
// each login, as fence_scsi does on every path. Preemption is by key, so
// it removes all of them at once.
//
// # Stop and Monitor
//
// Stop is not destructive: the reservation and registration stay. A
// graceful hand-over needs nothing more, since the peer preempts our key
// when it starts; releasing here would open a window in which both keys
// are registered and no reservation protects the disk, and a RELEASE that
// fails half-way leaves LUNs in different states.
//
// Monitor reads READ KEYS and READ RESERVATION on every LUN. Our key
// present and the reservation ours: running. Our key missing, another key
// holding the reservation, or any RESERVATION CONFLICT: the node is
// fenced, and Monitor returns an error matching resource.ErrFenced; the
// agent then stops the group at once, marks itself fenced and runs its
// self-fence action. An I/O failure is an ordinary monitor failure. The
// last answer is published in the group's resource.Env as
// "<name>.holder" and "<name>.keys" (hex) for the agent's status.
package fence
