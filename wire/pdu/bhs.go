package pdu

import "encoding/binary"

// Opcode is the iSCSI opcode in the low six bits of BHS byte 0.
type Opcode uint8

// Initiator opcodes (RFC 7143 section 11.1.1).
const (
	OpNOPOut      Opcode = 0x00
	OpSCSICmd     Opcode = 0x01
	OpTaskMgmtReq Opcode = 0x02
	OpLoginReq    Opcode = 0x03
	OpTextReq     Opcode = 0x04
	OpDataOut     Opcode = 0x05
	OpLogoutReq   Opcode = 0x06
	OpSNACKReq    Opcode = 0x10
)

// Target opcodes.
const (
	OpNOPIn        Opcode = 0x20
	OpSCSIResp     Opcode = 0x21
	OpTaskMgmtResp Opcode = 0x22
	OpLoginResp    Opcode = 0x23
	OpTextResp     Opcode = 0x24
	OpDataIn       Opcode = 0x25
	OpLogoutResp   Opcode = 0x26
	OpR2T          Opcode = 0x31
	OpAsyncMsg     Opcode = 0x32
	OpReject       Opcode = 0x3f
)

var opNames = map[Opcode]string{
	OpNOPOut: "NOP-Out", OpSCSICmd: "SCSI-Command", OpTaskMgmtReq: "TMF-Request",
	OpLoginReq: "Login-Request", OpTextReq: "Text-Request", OpDataOut: "Data-Out",
	OpLogoutReq: "Logout-Request", OpSNACKReq: "SNACK", OpNOPIn: "NOP-In",
	OpSCSIResp: "SCSI-Response", OpTaskMgmtResp: "TMF-Response", OpLoginResp: "Login-Response",
	OpTextResp: "Text-Response", OpDataIn: "Data-In", OpLogoutResp: "Logout-Response",
	OpR2T: "R2T", OpAsyncMsg: "Async-Message", OpReject: "Reject",
}

func (o Opcode) String() string {
	if s, ok := opNames[o]; ok {
		return s
	}
	return "Opcode(0x" + hex2(byte(o)) + ")"
}

func hex2(b byte) string {
	const digits = "0123456789abcdef"
	return string([]byte{digits[b>>4], digits[b&0xf]})
}

// BHSLen is the size of the basic header segment.
const BHSLen = 48

// Flag bits of BHS byte 1. Their meaning depends on the opcode.
const (
	FlagFinal    = 0x80 // F: final PDU of a sequence (most opcodes)
	FlagRead     = 0x40 // R: SCSI Command expects Data-In
	FlagWrite    = 0x20 // W: SCSI Command carries Data-Out
	FlagAck      = 0x40 // A: Data-In acknowledge request
	FlagContinue = 0x40 // C: Text/Login data continues in the next PDU
	FlagTransit  = 0x80 // T: Login stage transition
	FlagStatus   = 0x01 // S: Data-In carries the status

	// Residual flags of SCSI Response (o, u, O, U) and Data-In (O, U).
	FlagBidiOverflow  = 0x10
	FlagBidiUnderflow = 0x08
	FlagOverflow      = 0x04
	FlagUnderflow     = 0x02

	// ImmediateBit is bit 6 of byte 0 (the I bit) on initiator PDUs.
	ImmediateBit = 0x40

	// AttrMask selects the task attribute in SCSI Command byte 1.
	AttrMask = 0x07
)

// Login stages (CSG/NSG).
const (
	StageSecurity    = 0
	StageOperational = 1
	StageFullFeature = 3
)

// ReservedTag is the all-ones Initiator/Target Task Tag value.
const ReservedTag = 0xffffffff

// BHS is the raw basic header segment.
type BHS [BHSLen]byte

func (b *BHS) u32(off int) uint32       { return binary.BigEndian.Uint32(b[off:]) }
func (b *BHS) setU32(off int, v uint32) { binary.BigEndian.PutUint32(b[off:], v) }

// Opcode returns the opcode.
func (b *BHS) Opcode() Opcode { return Opcode(b[0] & 0x3f) }

// SetOpcode sets the opcode and clears the I bit.
func (b *BHS) SetOpcode(o Opcode) { b[0] = byte(o) & 0x3f }

// Immediate reports the I bit of an initiator PDU.
func (b *BHS) Immediate() bool { return b[0]&ImmediateBit != 0 }

// SetImmediate sets or clears the I bit.
func (b *BHS) SetImmediate(v bool) {
	if v {
		b[0] |= ImmediateBit
	} else {
		b[0] &^= ImmediateBit
	}
}

// Flags returns byte 1.
func (b *BHS) Flags() byte { return b[1] }

// SetFlags sets byte 1.
func (b *BHS) SetFlags(f byte) { b[1] = f }

// Final reports the F bit.
func (b *BHS) Final() bool { return b[1]&FlagFinal != 0 }

// TotalAHSLength is the AHS length in 4-byte words (byte 4).
func (b *BHS) TotalAHSLength() int { return int(b[4]) }

// SetTotalAHSLength sets byte 4, in 4-byte words.
func (b *BHS) SetTotalAHSLength(words int) { b[4] = byte(words) }

// DataSegmentLength is the unpadded data segment length (bytes 5..7).
func (b *BHS) DataSegmentLength() int {
	return int(b[5])<<16 | int(b[6])<<8 | int(b[7])
}

// SetDataSegmentLength sets bytes 5..7; n must be below 1<<24.
func (b *BHS) SetDataSegmentLength(n int) {
	b[5], b[6], b[7] = byte(n>>16), byte(n>>8), byte(n)
}

// LUN returns bytes 8..15 as the raw 8-byte LUN field.
func (b *BHS) LUN() uint64 { return binary.BigEndian.Uint64(b[8:]) }

// SetLUN sets bytes 8..15.
func (b *BHS) SetLUN(l uint64) { binary.BigEndian.PutUint64(b[8:], l) }

// ISID returns the 6-byte ISID of a login PDU (bytes 8..13).
func (b *BHS) ISID() [6]byte { var s [6]byte; copy(s[:], b[8:14]); return s }

// SetISID sets bytes 8..13.
func (b *BHS) SetISID(s [6]byte) { copy(b[8:14], s[:]) }

// TSIH returns bytes 14..15 of a login PDU.
func (b *BHS) TSIH() uint16 { return binary.BigEndian.Uint16(b[14:]) }

// SetTSIH sets bytes 14..15.
func (b *BHS) SetTSIH(v uint16) { binary.BigEndian.PutUint16(b[14:], v) }

// ITT is the Initiator Task Tag (bytes 16..19).
func (b *BHS) ITT() uint32 { return b.u32(16) }

// SetITT sets the Initiator Task Tag.
func (b *BHS) SetITT(v uint32) { b.setU32(16, v) }

// TTT is the Target Transfer Tag (bytes 20..23); also the Referenced Task
// Tag of a TMF request, the SNACK Tag of a SCSI Response and the
// Expected Data Transfer Length of a SCSI Command share these bytes.
func (b *BHS) TTT() uint32 { return b.u32(20) }

// SetTTT sets bytes 20..23.
func (b *BHS) SetTTT(v uint32) { b.setU32(20, v) }

// ExpectedDataTransferLength of a SCSI Command (bytes 20..23).
func (b *BHS) ExpectedDataTransferLength() uint32 { return b.u32(20) }

// SetExpectedDataTransferLength sets bytes 20..23.
func (b *BHS) SetExpectedDataTransferLength(v uint32) { b.setU32(20, v) }

// ReferencedTaskTag of a TMF request (bytes 20..23).
func (b *BHS) ReferencedTaskTag() uint32 { return b.u32(20) }

// SetReferencedTaskTag sets bytes 20..23.
func (b *BHS) SetReferencedTaskTag(v uint32) { b.setU32(20, v) }

// CID is the connection id of Login and Logout requests (bytes 20..21).
func (b *BHS) CID() uint16 { return binary.BigEndian.Uint16(b[20:]) }

// SetCID sets bytes 20..21.
func (b *BHS) SetCID(v uint16) { binary.BigEndian.PutUint16(b[20:], v) }

// CmdSN of an initiator PDU (bytes 24..27).
func (b *BHS) CmdSN() uint32 { return b.u32(24) }

// SetCmdSN sets bytes 24..27.
func (b *BHS) SetCmdSN(v uint32) { b.setU32(24, v) }

// StatSN of a target PDU (bytes 24..27).
func (b *BHS) StatSN() uint32 { return b.u32(24) }

// SetStatSN sets bytes 24..27.
func (b *BHS) SetStatSN(v uint32) { b.setU32(24, v) }

// ExpStatSN of an initiator PDU (bytes 28..31).
func (b *BHS) ExpStatSN() uint32 { return b.u32(28) }

// SetExpStatSN sets bytes 28..31.
func (b *BHS) SetExpStatSN(v uint32) { b.setU32(28, v) }

// ExpCmdSN of a target PDU (bytes 28..31).
func (b *BHS) ExpCmdSN() uint32 { return b.u32(28) }

// SetExpCmdSN sets bytes 28..31.
func (b *BHS) SetExpCmdSN(v uint32) { b.setU32(28, v) }

// MaxCmdSN of a target PDU (bytes 32..35).
func (b *BHS) MaxCmdSN() uint32 { return b.u32(32) }

// SetMaxCmdSN sets bytes 32..35.
func (b *BHS) SetMaxCmdSN(v uint32) { b.setU32(32, v) }

// RefCmdSN of a TMF request (bytes 32..35).
func (b *BHS) RefCmdSN() uint32 { return b.u32(32) }

// SetRefCmdSN sets bytes 32..35.
func (b *BHS) SetRefCmdSN(v uint32) { b.setU32(32, v) }

// DataSN is the DataSN of Data-In/Out, the R2TSN of an R2T, the ExpDataSN
// of a SCSI Response or TMF request (bytes 36..39).
func (b *BHS) DataSN() uint32 { return b.u32(36) }

// SetDataSN sets bytes 36..39.
func (b *BHS) SetDataSN(v uint32) { b.setU32(36, v) }

// BufferOffset of Data-In/Out and R2T; BegRun of a SNACK (bytes 40..43).
func (b *BHS) BufferOffset() uint32 { return b.u32(40) }

// SetBufferOffset sets bytes 40..43.
func (b *BHS) SetBufferOffset(v uint32) { b.setU32(40, v) }

// BidiReadResidualCount of a SCSI Response (bytes 40..43).
func (b *BHS) BidiReadResidualCount() uint32 { return b.u32(40) }

// SetBidiReadResidualCount sets bytes 40..43.
func (b *BHS) SetBidiReadResidualCount(v uint32) { b.setU32(40, v) }

// ResidualCount of a SCSI Response or Data-In; the Desired Data Transfer
// Length of an R2T; RunLength of a SNACK (bytes 44..47).
func (b *BHS) ResidualCount() uint32 { return b.u32(44) }

// SetResidualCount sets bytes 44..47.
func (b *BHS) SetResidualCount(v uint32) { b.setU32(44, v) }

// DesiredDataTransferLength of an R2T (bytes 44..47).
func (b *BHS) DesiredDataTransferLength() uint32 { return b.u32(44) }

// SetDesiredDataTransferLength sets bytes 44..47.
func (b *BHS) SetDesiredDataTransferLength(v uint32) { b.setU32(44, v) }

// CDB returns the 16-byte CDB field of a SCSI Command (bytes 32..47).
func (b *BHS) CDB() []byte { return b[32:48] }

// Response is byte 2 of SCSI, TMF and Logout responses; the Reject reason.
func (b *BHS) Response() byte { return b[2] }

// SetResponse sets byte 2.
func (b *BHS) SetResponse(v byte) { b[2] = v }

// Status is the SCSI status in byte 3 of a SCSI Response or Data-In.
func (b *BHS) Status() byte { return b[3] }

// SetStatus sets byte 3.
func (b *BHS) SetStatus(v byte) { b[3] = v }

// Login request/response fields in byte 1.

// Transit reports the T bit of a login PDU.
func (b *BHS) Transit() bool { return b[1]&FlagTransit != 0 }

// Continue reports the C bit of a login or text PDU.
func (b *BHS) Continue() bool { return b[1]&FlagContinue != 0 }

// CSG is the current login stage.
func (b *BHS) CSG() int { return int(b[1]>>2) & 3 }

// NSG is the next login stage (valid only with T set).
func (b *BHS) NSG() int { return int(b[1]) & 3 }

// SetLoginStages sets T, C, CSG and NSG in byte 1.
func (b *BHS) SetLoginStages(transit, cont bool, csg, nsg int) {
	var f byte
	if transit {
		f |= FlagTransit
	}
	if cont {
		f |= FlagContinue
	}
	b[1] = f | byte(csg&3)<<2 | byte(nsg&3)
}

// VersionMax is byte 2 of a login PDU.
func (b *BHS) VersionMax() byte { return b[2] }

// VersionMinOrActive is byte 3 of a login PDU (VersionMin in requests,
// VersionActive in responses).
func (b *BHS) VersionMinOrActive() byte { return b[3] }

// SetVersions sets bytes 2 and 3 of a login PDU.
func (b *BHS) SetVersions(max, minOrActive byte) { b[2], b[3] = max, minOrActive }

// LoginStatus returns Status-Class and Status-Detail of a login response.
func (b *BHS) LoginStatus() (class, detail byte) { return b[36], b[37] }

// SetLoginStatus sets bytes 36 and 37 of a login response.
func (b *BHS) SetLoginStatus(class, detail byte) { b[36], b[37] = class, detail }

// Function is the TMF function, the Logout reason code or the SNACK type
// (low seven bits of byte 1; the request's bit 7 is always set).
func (b *BHS) Function() byte { return b[1] & 0x7f }

// Time2Wait and Time2Retain of a Logout response (bytes 40..43).
func (b *BHS) Time2Wait() uint16 { return binary.BigEndian.Uint16(b[40:]) }

// SetTime2Wait sets bytes 40..41.
func (b *BHS) SetTime2Wait(v uint16) { binary.BigEndian.PutUint16(b[40:], v) }

// Time2Retain of a Logout response (bytes 42..43).
func (b *BHS) Time2Retain() uint16 { return binary.BigEndian.Uint16(b[42:]) }

// SetTime2Retain sets bytes 42..43.
func (b *BHS) SetTime2Retain(v uint16) { binary.BigEndian.PutUint16(b[42:], v) }

// AsyncEvent and AsyncVCode of an Async Message (bytes 36, 37).
func (b *BHS) AsyncEvent() (event, vcode byte) { return b[36], b[37] }

// SetAsyncEvent sets bytes 36 and 37.
func (b *BHS) SetAsyncEvent(event, vcode byte) { b[36], b[37] = event, vcode }

// AsyncParameters are Parameter1..3 of an Async Message (bytes 38..43).
func (b *BHS) AsyncParameters() (p1, p2, p3 uint16) {
	return binary.BigEndian.Uint16(b[38:]), binary.BigEndian.Uint16(b[40:]), binary.BigEndian.Uint16(b[42:])
}

// SetAsyncParameters sets bytes 38..43.
func (b *BHS) SetAsyncParameters(p1, p2, p3 uint16) {
	binary.BigEndian.PutUint16(b[38:], p1)
	binary.BigEndian.PutUint16(b[40:], p2)
	binary.BigEndian.PutUint16(b[42:], p3)
}
