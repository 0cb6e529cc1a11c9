// Package initiator is a native iSCSI initiator (RFC 7143) over TCP.
//
// Discover runs a discovery session (SendTargets). Dial logs in to one
// target and returns a Session: many SCSI commands may be in flight at
// once, up to Options.QueueDepth, subject to the target's CmdSN window
// (RFC 7143 section 4.2.2.1). One goroutine reads the connection and
// dispatches PDUs by Initiator Task Tag; writes are serialised, one
// vectored write per PDU. Write data goes as immediate data, unsolicited
// Data-Out and R2T-solicited Data-Out (sections 4.2.5.2, 11.7), read
// data lands straight in the caller's buffer.
//
// The session runs at ErrorRecoveryLevel 0: a protocol error, a digest
// error or a lost connection fails every outstanding command and the
// session; the caller dials again.
//
// Typed calls cover persistent reservations (PRReadKeys, PRReserve,
// PRPreemptAndAbort, ... SPC-4 sections 6.15, 6.16) and task management
// (AbortTask ... TargetColdReset). RESERVATION CONFLICT matches
// ErrReservationConflict; the convenience calls reissue a command after a
// UNIT ATTENTION, except the reservation ones (2Ah/03h-05h), which the
// caller gets as a *SenseError (IsReservationUnitAttention).
//
// Login negotiation is a pure state machine (package negotiate) that
// turns Login Responses into the next Login Request by wire/text's key
// table, the rules target/login answers with; Dial only moves PDUs.
package initiator
