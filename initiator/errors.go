package initiator

import (
	"errors"
	"fmt"

	"github.com/tandem-ha/tandem/initiator/negotiate"
	"github.com/tandem-ha/tandem/wire/scsi"
)

// ErrSessionClosed is returned for commands issued on, or outstanding
// when, a session is closed or its connection fails; Unwrap of the
// returned error may give the cause.
var ErrSessionClosed = errors.New("initiator: session closed")

// LoginError is a login the target refused (RFC 7143 section 11.13.5).
type LoginError = negotiate.LoginError

// ProtocolError is a PDU that breaks RFC 7143; the session is failed.
type ProtocolError = negotiate.ProtocolError

// ErrMutualCHAP is returned (wrapped) when the target's answer to the
// initiator's mutual CHAP challenge is wrong: the target does not know
// CHAP.MutualSecret, or is not the target it claims to be.
var ErrMutualCHAP = negotiate.ErrMutualCHAP

// SenseError is a command that ended in CHECK CONDITION.
type SenseError struct {
	Key, ASC, ASCQ byte
	// Sense is the raw sense data.
	Sense []byte
}

func (e *SenseError) Error() string {
	return fmt.Sprintf("initiator: check condition: %s, asc/ascq %02xh/%02xh", scsi.SenseKeyName(e.Key), e.ASC, e.ASCQ)
}

// IsUnitAttention reports whether err is, or wraps, a CHECK CONDITION
// with sense key UNIT ATTENTION.
func IsUnitAttention(err error) bool {
	var se *SenseError
	return errors.As(err, &se) && se.Key == scsi.SenseUnitAttention
}

// IsReservationUnitAttention reports whether err is one of the unit
// attentions persistent reservations raise: RESERVATIONS PREEMPTED (2A/03),
// RESERVATIONS RELEASED (2A/04) or REGISTRATIONS PREEMPTED (2A/05).
// Convenience calls hand these to the caller instead of retrying.
func IsReservationUnitAttention(err error) bool {
	var se *SenseError
	if !errors.As(err, &se) || se.Key != scsi.SenseUnitAttention || se.ASC != scsi.ASCParametersChanged {
		return false
	}
	switch se.ASCQ {
	case scsi.ASCQReservationsPreempted, scsi.ASCQReservationsReleased, scsi.ASCQRegistrationsPreempted:
		return true
	}
	return false
}

// NewSenseError decodes raw sense data. Undecodable sense still gives a
// SenseError, with zero codes and the raw bytes.
func NewSenseError(sense []byte) *SenseError {
	e := &SenseError{Sense: sense}
	if p, err := scsi.ParseSense(sense); err == nil {
		e.Key, e.ASC, e.ASCQ = p.Key, p.ASC, p.ASCQ
	}
	return e
}

// ErrReservationConflict matches (errors.Is) a command that ended in
// RESERVATION CONFLICT status (SAM-5 section 5.3.1): another I_T nexus
// holds a persistent reservation, or this one was preempted. Fencing code
// branches on it: a fenced node must stop writing.
var ErrReservationConflict = errors.New("initiator: reservation conflict")

// StatusError is a command that ended with a status other than GOOD or
// CHECK CONDITION (BUSY, RESERVATION CONFLICT, TASK SET FULL, ...).
type StatusError struct{ Status byte }

// Is makes a RESERVATION CONFLICT status match ErrReservationConflict.
func (e *StatusError) Is(target error) bool {
	return target == ErrReservationConflict && e.Status == scsi.StatusReservationConflict
}

var statusNames = map[byte]string{
	scsi.StatusConditionMet:        "CONDITION MET",
	scsi.StatusBusy:                "BUSY",
	scsi.StatusReservationConflict: "RESERVATION CONFLICT",
	scsi.StatusTaskSetFull:         "TASK SET FULL",
	scsi.StatusACAActive:           "ACA ACTIVE",
	scsi.StatusTaskAborted:         "TASK ABORTED",
}

func (e *StatusError) Error() string {
	if n, ok := statusNames[e.Status]; ok {
		return "initiator: scsi status " + n
	}
	return fmt.Sprintf("initiator: scsi status %#02x", e.Status)
}

// ServiceResponseError is a SCSI Response whose Response field is not
// "command completed at target" (RFC 7143 section 11.4.3).
type ServiceResponseError struct{ Response byte }

func (e *ServiceResponseError) Error() string {
	return fmt.Sprintf("initiator: target failure (iSCSI response %#02x)", e.Response)
}

// RejectError is a command the target rejected (RFC 7143 section 11.17).
type RejectError struct{ Reason byte }

func (e *RejectError) Error() string {
	return fmt.Sprintf("initiator: target rejected the PDU (reason %#02x)", e.Reason)
}
