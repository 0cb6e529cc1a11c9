package sgio

import (
	"context"
	"errors"
	"fmt"
	"unsafe"

	"github.com/tandem-ha/tandem/initiator"
	"github.com/tandem-ha/tandem/wire/scsi"
)

// SG_IO request code and interface id (include/scsi/sg.h).
const (
	ioctlSGIO   = 0x2285
	interfaceID = 'S'
)

// Direction is sg_io_hdr.dxfer_direction.
type Direction int32

// Data transfer directions (include/scsi/sg.h).
const (
	DirNone      Direction = -1 // SG_DXFER_NONE
	DirToDev     Direction = -2 // SG_DXFER_TO_DEV: data out (writes, PR OUT)
	DirFromDev   Direction = -3 // SG_DXFER_FROM_DEV: data in (reads, INQUIRY)
	DirToFromDev Direction = -4 // SG_DXFER_TO_FROM_DEV
)

// Hdr mirrors struct sg_io_hdr (include/scsi/sg.h). Go lays out this
// struct as C does on both 64-bit (88 bytes) and 32-bit (64 bytes) Linux;
// hdr_test.go checks the offsets. The pointer fields are unsafe.Pointer so
// the garbage collector keeps the buffers alive during the ioctl.
type Hdr struct {
	InterfaceID    int32     // 'S'
	DxferDirection Direction // DirNone, DirToDev, DirFromDev
	CmdLen         uint8
	MxSbLen        uint8 // sense buffer size
	IovecCount     uint16
	DxferLen       uint32
	Dxferp         unsafe.Pointer
	Cmdp           unsafe.Pointer
	Sbp            unsafe.Pointer
	Timeout        uint32 // milliseconds
	Flags          uint32
	PackID         int32
	UsrPtr         unsafe.Pointer
	Status         uint8 // SCSI status byte (SAM-5 5.3)
	MaskedStatus   uint8 // status >> 1 & 0x7f, the old Linux convention
	MsgStatus      uint8
	SbLenWr        uint8 // sense bytes written
	HostStatus     uint16
	DriverStatus   uint16
	Resid          int32 // dxfer_len minus the bytes transferred
	Duration       uint32
	Info           uint32 // SG_INFO_CHECK set when anything above is not OK
}

// infoCheck is SG_INFO_CHECK: the command did not end cleanly.
const infoCheck = 0x1

// Host (adapter) status values, DID_* in include/scsi/scsi_status.h.
var hostNames = map[uint16]string{
	0x01: "DID_NO_CONNECT", 0x02: "DID_BUS_BUSY", 0x03: "DID_TIME_OUT", 0x04: "DID_BAD_TARGET",
	0x05: "DID_ABORT", 0x06: "DID_PARITY", 0x07: "DID_ERROR", 0x08: "DID_RESET",
	0x09: "DID_BAD_INTR", 0x0a: "DID_PASSTHROUGH", 0x0b: "DID_SOFT_ERROR", 0x0c: "DID_IMM_RETRY",
	0x0d: "DID_REQUEUE", 0x0e: "DID_TRANSPORT_DISRUPTED", 0x0f: "DID_TRANSPORT_FAILFAST",
	0x10: "DID_TARGET_FAILURE", 0x11: "DID_NEXUS_FAILURE", 0x12: "DID_ALLOC_FAILURE",
	0x13: "DID_MEDIUM_ERROR", 0x14: "DID_TRANSPORT_MARGINAL",
}

const (
	didTimeOut      = 0x03
	didNexusFailure = 0x11 // Linux's mapping of RESERVATION CONFLICT for block I/O
	driverTimeout   = 0x06
	driverSense     = 0x08
	driverMask      = 0x0f
)

// Driver status values, DRIVER_* (low nibble of driver_status).
var driverNames = map[uint16]string{
	0x01: "DRIVER_BUSY", 0x02: "DRIVER_SOFT", 0x03: "DRIVER_MEDIA", 0x04: "DRIVER_ERROR",
	0x05: "DRIVER_INVALID", 0x06: "DRIVER_TIMEOUT", 0x07: "DRIVER_HARD", 0x08: "DRIVER_SENSE",
}

// TransportError is a command the host adapter or the SCSI midlayer failed
// before the device answered (a dead iSCSI session, a timeout...).
type TransportError struct {
	Host, Driver uint16
}

func (e *TransportError) Error() string {
	s := "sgio: command failed in the host"
	if e.Host != 0 {
		n := hostNames[e.Host]
		if n == "" {
			n = "unknown"
		}
		s += fmt.Sprintf(": host status %s (%#02x)", n, e.Host)
	}
	if d := e.Driver & driverMask; d != 0 {
		n := driverNames[d]
		if n == "" {
			n = "unknown"
		}
		s += fmt.Sprintf(": driver status %s (%#02x)", n, e.Driver)
	}
	if e.Timeout() {
		s += "; the device did not answer in time: check the iSCSI session (iscsiadm -m session -P 3)"
	}
	return s
}

// Timeout reports whether the command timed out.
func (e *TransportError) Timeout() bool {
	return e.Host == didTimeOut || e.Driver&driverMask == driverTimeout
}

// Is makes a timeout match context.DeadlineExceeded and a nexus failure
// match initiator.ErrReservationConflict.
func (e *TransportError) Is(target error) bool {
	switch target {
	case context.DeadlineExceeded:
		return e.Timeout()
	case initiator.ErrReservationConflict:
		return e.Host == didNexusFailure
	}
	return false
}

// Check turns a completed sg_io_hdr into an error: nil for GOOD, an
// *initiator.SenseError for CHECK CONDITION (sense is the sense buffer
// given to the ioctl), an *initiator.StatusError for another status
// (RESERVATION CONFLICT matches initiator.ErrReservationConflict, as on
// the native session), else a *TransportError for host or driver
// failures. It is pure: the ioctl path and the tests share it.
func Check(h *Hdr, sense []byte) error {
	if h.Info&infoCheck == 0 && h.Status == 0 && h.HostStatus == 0 && h.DriverStatus&driverMask == 0 {
		return nil
	}
	n := min(int(h.SbLenWr), len(sense))
	switch {
	case h.Status == scsi.StatusCheckCondition || (h.Status == 0 && h.DriverStatus&driverMask == driverSense && n > 0):
		if n == 0 {
			return errors.New("sgio: check condition without sense data")
		}
		return initiator.NewSenseError(append([]byte(nil), sense[:n]...))
	case h.Status != scsi.StatusGood:
		return &initiator.StatusError{Status: h.Status}
	}
	return &TransportError{Host: h.HostStatus, Driver: h.DriverStatus}
}
