package scsi

// Sense keys (SPC-4 section 4.5.6, table 27).
const (
	SenseNoSense        = 0x0
	SenseRecoveredError = 0x1
	SenseNotReady       = 0x2
	SenseMediumError    = 0x3
	SenseHardwareError  = 0x4
	SenseIllegalRequest = 0x5
	SenseUnitAttention  = 0x6
	SenseDataProtect    = 0x7
	SenseBlankCheck     = 0x8
	SenseVendorSpecific = 0x9
	SenseCopyAborted    = 0xa
	SenseAbortedCommand = 0xb
	SenseVolumeOverflow = 0xd
	SenseMiscompare     = 0xe
	SenseCompleted      = 0xf
)

// senseKeyNames are the SPC-4 names, indexed by sense key; 0Ch is reserved.
var senseKeyNames = [16]string{
	"NO SENSE", "RECOVERED ERROR", "NOT READY", "MEDIUM ERROR", "HARDWARE ERROR",
	"ILLEGAL REQUEST", "UNIT ATTENTION", "DATA PROTECT", "BLANK CHECK", "VENDOR SPECIFIC",
	"COPY ABORTED", "ABORTED COMMAND", "RESERVED", "VOLUME OVERFLOW", "MISCOMPARE", "COMPLETED",
}

// SenseKeyName is the SPC-4 name of a sense key ("ILLEGAL REQUEST"); only
// the low four bits of key count.
func SenseKeyName(key byte) string { return senseKeyNames[key&0xf] }

// Additional sense codes and qualifiers that both ends branch on
// (SPC-4 annex D).
const (
	// ASCParametersChanged (2Ah) with one of the ASCQ values below is a
	// persistent reservation unit attention (SPC-4 section 5.12.11).
	ASCParametersChanged       = 0x2a
	ASCQReservationsPreempted  = 0x03
	ASCQReservationsReleased   = 0x04
	ASCQRegistrationsPreempted = 0x05
)
