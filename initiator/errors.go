package initiator

import (
	"errors"
	"fmt"

	"github.com/tandem-ha/tandem/wire/scsi"
)

// ErrSessionClosed is returned for commands issued on, or outstanding
// when, a session is closed or its connection fails; Unwrap of the
// returned error may give the cause.
var ErrSessionClosed = errors.New("initiator: session closed")

// LoginError is a login the target refused (RFC 7143 section 11.13.5).
type LoginError struct {
	Class, Detail byte
	// TargetAddress is where a redirect (class 1) points.
	TargetAddress string
}

var loginStatusText = map[uint16]string{
	0x0101: "target moved temporarily",
	0x0102: "target moved permanently",
	0x0200: "initiator error",
	0x0201: "authentication failure",
	0x0202: "authorization failure",
	0x0203: "target not found",
	0x0204: "target removed",
	0x0205: "unsupported version",
	0x0206: "too many connections",
	0x0207: "missing parameter",
	0x0208: "can't include in session",
	0x0209: "session type not supported",
	0x020a: "session does not exist",
	0x020b: "invalid request during login",
	0x0300: "target error",
	0x0301: "service unavailable",
	0x0302: "out of resources",
}

// Text is the RFC 7143 name of the status.
func (e *LoginError) Text() string {
	if s, ok := loginStatusText[uint16(e.Class)<<8|uint16(e.Detail)]; ok {
		return s
	}
	switch e.Class {
	case 1:
		return "redirection"
	case 2:
		return "initiator error"
	case 3:
		return "target error"
	}
	return "unknown status"
}

func (e *LoginError) Error() string {
	s := fmt.Sprintf("initiator: login rejected: %s (status class %#02x detail %#02x)", e.Text(), e.Class, e.Detail)
	if e.TargetAddress != "" {
		s += "; target is at " + e.TargetAddress
	}
	switch uint16(e.Class)<<8 | uint16(e.Detail) {
	case 0x0201:
		s += "; check the CHAP user and secret"
	case 0x0202:
		s += "; check the target's initiator ACL"
	case 0x0203:
		s += "; check the target name (Discover lists them)"
	}
	return s
}

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

// ProtocolError is a PDU that breaks RFC 7143; the session is failed.
type ProtocolError struct{ Msg string }

func (e *ProtocolError) Error() string { return "initiator: protocol error: " + e.Msg }

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
