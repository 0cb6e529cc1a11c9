package scsi

// Operation codes (SPC-4 annex D, SBC-3 section 5).
const (
	OpTestUnitReady          = 0x00
	OpRequestSense           = 0x03
	OpRead6                  = 0x08
	OpWrite6                 = 0x0a
	OpInquiry                = 0x12
	OpModeSelect6            = 0x15
	OpReserve6               = 0x16
	OpRelease6               = 0x17
	OpModeSense6             = 0x1a
	OpStartStopUnit          = 0x1b
	OpPreventAllowRemoval    = 0x1e
	OpReadCapacity10         = 0x25
	OpSanitize               = 0x48
	OpRead10                 = 0x28
	OpWrite10                = 0x2a
	OpWriteVerify10          = 0x2e
	OpVerify10               = 0x2f
	OpPreFetch10             = 0x34
	OpSynchronizeCache10     = 0x35
	OpReadDefectData10       = 0x37
	OpWriteSame10            = 0x41
	OpUnmap                  = 0x42
	OpModeSelect10           = 0x55
	OpReserve10              = 0x56
	OpRelease10              = 0x57
	OpModeSense10            = 0x5a
	OpPersistentReserveIn    = 0x5e
	OpPersistentReserveOut   = 0x5f
	OpRead16                 = 0x88
	OpCompareAndWrite        = 0x89
	OpWrite16                = 0x8a
	OpORWrite16              = 0x8b
	OpWriteVerify16          = 0x8e
	OpVerify16               = 0x8f
	OpPreFetch16             = 0x90
	OpSynchronizeCache16     = 0x91
	OpWriteAtomic16          = 0x9c
	OpWriteSame16            = 0x93
	OpServiceActionIn16      = 0x9e
	OpReportLUNs             = 0xa0
	OpMaintenanceIn          = 0xa3
	OpRead12                 = 0xa8
	OpWrite12                = 0xaa
	OpWriteVerify12          = 0xae
	OpVerify12               = 0xaf
	OpReadDefectData12       = 0xb7
	SAReadCapacity16         = 0x10 // SERVICE ACTION IN(16)
	SAGetLBAStatus           = 0x12 // SERVICE ACTION IN(16)
	SAReportSupportedOpcodes = 0x0c // MAINTENANCE IN
	SASanitizeOverwrite      = 0x01 // SANITIZE (SBC-4 5.30)
	SASanitizeBlockErase     = 0x02
	SASanitizeCryptoErase    = 0x03
	SASanitizeExitFailure    = 0x1f
)
