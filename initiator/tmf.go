package initiator

import (
	"context"

	"github.com/tandem-ha/tandem/wire/pdu"
)

// Task management function responses (RFC 7143 section 11.6.1), as the
// task management calls return them.
const (
	TMFFunctionComplete     = pdu.TMFRespComplete
	TMFTaskDoesNotExist     = pdu.TMFRespNoTask
	TMFLUNDoesNotExist      = pdu.TMFRespNoLUN
	TMFTaskStillAllegiant   = pdu.TMFRespTaskAllegiant
	TMFReassignNotSupported = pdu.TMFRespNoReassign
	TMFNotSupported         = pdu.TMFRespNotSupported
	TMFAuthorizationFailed  = pdu.TMFRespAuthFailed
	TMFRejected             = pdu.TMFRespRejected
)

// AbortTask sends ABORT TASK for the command with Initiator Task Tag
// taskTag, issued with refCmdSN (RFC 7143 section 11.5.1). Cancelling the
// context of Do aborts a command without knowing its tag; this call is
// for tools and tests that track tags themselves.
func (s *Session) AbortTask(ctx context.Context, lun uint64, taskTag, refCmdSN uint32) (byte, error) {
	return s.tmf(ctx, pdu.TMFAbortTask, lun, taskTag, refCmdSN)
}

// AbortTaskSet sends ABORT TASK SET: every task this session has on lun
// is aborted (SAM-5 section 7.2).
func (s *Session) AbortTaskSet(ctx context.Context, lun uint64) (byte, error) {
	return s.tmf(ctx, pdu.TMFAbortTaskSet, lun, pdu.ReservedTag, 0)
}

// ClearTaskSet sends CLEAR TASK SET: every task on lun is aborted, those
// of other sessions too (SAM-5 section 7.4).
func (s *Session) ClearTaskSet(ctx context.Context, lun uint64) (byte, error) {
	return s.tmf(ctx, pdu.TMFClearTaskSet, lun, pdu.ReservedTag, 0)
}

// TargetWarmReset sends TARGET WARM RESET: every LU of the target is
// reset (RFC 7143 section 11.5.1); sessions stay up.
func (s *Session) TargetWarmReset(ctx context.Context) (byte, error) {
	return s.tmf(ctx, pdu.TMFTargetWarmReset, 0, pdu.ReservedTag, 0)
}

// TargetColdReset sends TARGET COLD RESET: a warm reset after which the
// target drops every connection, this one included, so the session ends
// (Done closes) once the response is in; dial again.
func (s *Session) TargetColdReset(ctx context.Context) (byte, error) {
	return s.tmf(ctx, pdu.TMFTargetColdReset, 0, pdu.ReservedTag, 0)
}
