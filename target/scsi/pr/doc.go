// Package pr is the persistent reservation engine of one logical unit:
// SPC-4 PERSISTENT RESERVE IN and OUT (section 5.12, 6.15, 6.16), the
// reservation conflict tables of SPC-4 (5.12.3, table "SPC commands that
// are allowed in the presence of various reservations") and SBC-3 (4.17),
// and the SPC-2 RESERVE/RELEASE model with the compatible reservation
// handling exceptions of SPC-4 5.12.3 (CRH=1).
//
// The engine is pure: it performs no I/O, starts no goroutines and reads
// no clock. A State is not safe for concurrent use; the logical unit
// serializes calls (Check allocates nothing and is O(registrations)).
//
// The caller's duties, per command received on an I_T nexus p:
//
//  1. Before executing any command, call Check(p, cdb); if it reports a
//     conflict, complete the command with RESERVATION CONFLICT status.
//  2. Route PERSISTENT RESERVE OUT (5Fh) to Out, PERSISTENT RESERVE IN
//     (5Eh) to In, RESERVE(6)/(10) (16h/56h) to Reserve6 and
//     RELEASE(6)/(10) (17h/57h) to Release6.
//  3. With a Result: if Persist is set, save MarshalBinary() (for example
//     with prfile.Save) before completing the command, and fail the
//     command if the save fails; queue every UA on the nexuses its
//     Selector matches; abort the tasks of the nexuses in Abort (PREEMPT
//     AND ABORT); then complete the command with Status, mapping Sense to
//     sense data with Reason.SenseKey, ASC and ASCQ, and returning Data.
//  4. On I_T nexus loss call NexusLoss(p); on LOGICAL UNIT RESET, target
//     reset or a hard reset call Reset(). Persistent reservations survive
//     both; SPC-2 reservations do not.
//  5. At power on, restore a saved state with UnmarshalBinary and call
//     PowerOn, which keeps registrations only if APTPL was set.
//
// Nexus identity: an I_T nexus is the SCSI initiator port (iSCSI name plus
// ISID, RFC 7143 section 4.4.2) and the target port, identified by its
// relative target port identifier. Registrations belong to a nexus, never
// to a TCP connection or session.
package pr
