package scsi

import (
	wscsi "github.com/tandem-ha/tandem/wire/scsi"
)

// reason is why a command ends in CHECK CONDITION; senseTable maps it to
// sense key, ASC and ASCQ (SPC-4 annex D).
type reason uint8

const (
	reasonNone reason = iota
	reasonInvalidOpcode
	reasonInvalidFieldInCDB
	reasonInvalidFieldInParamList
	reasonParamListLength
	reasonInvalidFieldInIU
	reasonLBAOutOfRange
	reasonLUNotSupported
	reasonWriteProtected
	reasonMiscompare
	reasonReadError
	reasonWriteError
	reasonSavingNotSupported
	reasonInternal
	reasonNoSense
	reasonSanitizeInProgress
	reasonSanitizeFailed
	reasonInsufficientRegistration
	reasonInvalidRelease
	// EXTENDED COPY parameter list and copy errors (SPC-4 6.4).
	reasonTooManyTargetDescs
	reasonUnsupportedTargetDesc
	reasonTooManySegmentDescs
	reasonUnsupportedSegmentDesc
	reasonOperationInProgress
	reasonCopyAborted
	reasonUnreachableCopyTarget
	// reasonUnitAttention takes its ASC and ASCQ from failure.code.
	reasonUnitAttention
	// reasonSpaceAllocFailed is a write the thin backing had no space
	// for (SBC-3 4.7.3.6).
	reasonSpaceAllocFailed
)

var senseTable = [...]struct{ key, asc, ascq byte }{
	reasonNone:                    {wscsi.SenseNoSense, 0x00, 0x00},
	reasonInvalidOpcode:           {wscsi.SenseIllegalRequest, 0x20, 0x00},
	reasonInvalidFieldInCDB:       {wscsi.SenseIllegalRequest, 0x24, 0x00},
	reasonInvalidFieldInParamList: {wscsi.SenseIllegalRequest, 0x26, 0x00},
	reasonParamListLength:         {wscsi.SenseIllegalRequest, 0x1a, 0x00},
	reasonInvalidFieldInIU:        {wscsi.SenseIllegalRequest, 0x0e, 0x03},
	reasonLBAOutOfRange:           {wscsi.SenseIllegalRequest, 0x21, 0x00},
	reasonLUNotSupported:          {wscsi.SenseIllegalRequest, 0x25, 0x00},
	reasonWriteProtected:          {wscsi.SenseDataProtect, 0x27, 0x00},
	reasonMiscompare:              {wscsi.SenseMiscompare, 0x1d, 0x00},
	reasonReadError:               {wscsi.SenseMediumError, 0x11, 0x00},
	reasonWriteError:              {wscsi.SenseMediumError, 0x0c, 0x00},
	reasonSavingNotSupported:      {wscsi.SenseIllegalRequest, 0x39, 0x00},
	reasonInternal:                {wscsi.SenseHardwareError, 0x44, 0x00},
	reasonNoSense:                 {wscsi.SenseNoSense, 0x00, 0x00},
	reasonSanitizeInProgress:      {wscsi.SenseNotReady, 0x04, 0x1b},
	reasonSanitizeFailed:          {wscsi.SenseMediumError, 0x31, 0x03},
	// SPC-4 5.12.7 and 5.12.11.2.2.
	reasonInsufficientRegistration: {wscsi.SenseIllegalRequest, 0x55, 0x04},
	reasonInvalidRelease:           {wscsi.SenseIllegalRequest, 0x26, 0x04},
	reasonUnitAttention:            {wscsi.SenseUnitAttention, 0x00, 0x00},
	// SPC-4 6.4.3.x and 6.4.5: descriptor list errors are ILLEGAL
	// REQUEST; a segment that cannot be processed is COPY ABORTED.
	reasonTooManyTargetDescs:     {wscsi.SenseIllegalRequest, 0x26, 0x06},
	reasonUnsupportedTargetDesc:  {wscsi.SenseIllegalRequest, 0x26, 0x07},
	reasonTooManySegmentDescs:    {wscsi.SenseIllegalRequest, 0x26, 0x08},
	reasonUnsupportedSegmentDesc: {wscsi.SenseIllegalRequest, 0x26, 0x09},
	reasonOperationInProgress:    {wscsi.SenseIllegalRequest, 0x00, 0x16},
	reasonCopyAborted:            {senseCopyAborted, 0x00, 0x00},
	reasonUnreachableCopyTarget:  {senseCopyAborted, 0x08, 0x04},
	// SPACE ALLOCATION FAILED WRITE PROTECT (SBC-3 4.7.3.6).
	reasonSpaceAllocFailed: {wscsi.SenseDataProtect, 0x27, 0x07},
}

// senseCopyAborted is the COPY ABORTED sense key (SPC-4 4.5.6).
const senseCopyAborted = 0x0a

// failure is a CHECK CONDITION about to happen. It is a plain value so
// that handlers return it without allocating.
type failure struct {
	reason reason
	// Field pointer (SPC-4 section 4.5.2.4.2), valid when sks is set:
	// inCDB is the C/D bit, field the byte, bit the bit (-1: none).
	sks   bool
	inCDB bool
	field uint16
	bit   int8
	// progress makes the sense-key specific bytes a progress indication
	// (SPC-4 4.5.2.4.4) of field/65536 instead of a field pointer.
	progress bool
	// info is the INFORMATION field (e.g. miscompare offset).
	infoValid bool
	info      uint64
	// code is the ASC and ASCQ of reasonUnitAttention.
	code uaCode
}

func (f failure) failed() bool { return f.reason != reasonNone }

var ok failure

func fail(r reason) failure { return failure{reason: r} }

// badCDB is INVALID FIELD IN CDB pointing at byte/bit of the CDB.
func badCDB(field uint16, bit int8) failure {
	return failure{reason: reasonInvalidFieldInCDB, sks: true, inCDB: true, field: field, bit: bit}
}

// badParam is INVALID FIELD IN PARAMETER LIST pointing into the data-out.
func badParam(field uint16, bit int8) failure {
	return failure{reason: reasonInvalidFieldInParamList, sks: true, field: field, bit: bit}
}

func miscompare(offset uint64) failure {
	return failure{reason: reasonMiscompare, infoValid: true, info: offset}
}

// senseData builds sense data for f in descriptor (0x72, SPC-4 section
// 4.5.2) or fixed (0x70, section 4.5.3) format.
func senseData(f failure, descriptor bool) []byte {
	e := senseTable[reasonInternal]
	if int(f.reason) < len(senseTable) {
		e = senseTable[f.reason]
	}
	if f.reason == reasonUnitAttention {
		e.asc, e.ascq = f.code.asc, f.code.ascq
	}
	var sks [3]byte
	if f.progress {
		f.sks = true
		sks[0], sks[1], sks[2] = 0x80, byte(f.field>>8), byte(f.field)
	} else if f.sks {
		sks[0] = 0x80
		if f.inCDB {
			sks[0] |= 0x40
		}
		if f.bit >= 0 {
			sks[0] |= 0x08 | byte(f.bit&7)
		}
		sks[1], sks[2] = byte(f.field>>8), byte(f.field)
	}
	if descriptor {
		b := make([]byte, 8, 8+12+8)
		b[0], b[1], b[2], b[3] = 0x72, e.key, e.asc, e.ascq
		if f.infoValid {
			b = append(b, 0x00, 0x0a, 0x80, 0)
			b = be64(b, f.info)
		}
		if f.sks {
			b = append(b, 0x02, 0x06, 0, 0, sks[0], sks[1], sks[2], 0)
		}
		b[7] = byte(len(b) - 8)
		return b
	}
	b := make([]byte, 18)
	b[0] = 0x70
	b[2] = e.key
	// An INFORMATION value wider than the fixed format's four bytes is
	// left out, VALID clear (SPC-4 4.5.3).
	if f.infoValid && f.info <= 0xffffffff {
		b[0] |= 0x80
		b[3], b[4], b[5], b[6] = byte(f.info>>24), byte(f.info>>16), byte(f.info>>8), byte(f.info)
	}
	b[7] = 10
	b[12], b[13] = e.asc, e.ascq
	copy(b[15:18], sks[:])
	return b
}

func be16(b []byte, v uint16) []byte { return append(b, byte(v>>8), byte(v)) }
func be32(b []byte, v uint32) []byte {
	return append(b, byte(v>>24), byte(v>>16), byte(v>>8), byte(v))
}
func be64(b []byte, v uint64) []byte { return be32(be32(b, uint32(v>>32)), uint32(v)) }

func get16(b []byte) uint16 { return uint16(b[0])<<8 | uint16(b[1]) }
func get32(b []byte) uint32 {
	return uint32(b[0])<<24 | uint32(b[1])<<16 | uint32(b[2])<<8 | uint32(b[3])
}
func get64(b []byte) uint64 { return uint64(get32(b))<<32 | uint64(get32(b[4:])) }
