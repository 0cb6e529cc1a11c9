package pdu

// Login Status-Class and Status-Detail values (RFC 7143 section 11.13.5),
// as class<<8 | detail.
const (
	LoginSuccess               = 0x0000
	LoginTargetMovedTemp       = 0x0101
	LoginTargetMovedPerm       = 0x0102
	LoginInitiatorError        = 0x0200
	LoginAuthFailed            = 0x0201
	LoginForbidden             = 0x0202
	LoginNotFound              = 0x0203
	LoginTargetRemoved         = 0x0204
	LoginUnsupportedVersion    = 0x0205
	LoginTooManyConnections    = 0x0206
	LoginMissingParameter      = 0x0207
	LoginCantIncludeInSession  = 0x0208
	LoginSessionTypeNotSupport = 0x0209
	LoginSessionDoesNotExist   = 0x020a
	LoginInvalidDuringLogin    = 0x020b
	LoginTargetError           = 0x0300
	LoginServiceUnavailable    = 0x0301
	LoginOutOfResources        = 0x0302
)

// Reject reasons (RFC 7143 section 11.17.1).
const (
	RejectDataDigest        = 0x02
	RejectSNACK             = 0x03
	RejectProtocolError     = 0x04
	RejectCommandNotSupport = 0x05
	RejectImmediateCmd      = 0x06
	RejectTaskInProgress    = 0x07
	RejectInvalidDataAck    = 0x08
	RejectInvalidPDUField   = 0x09
	RejectOutOfResources    = 0x0a
	RejectWaitingForLogout  = 0x0c
)

// Task management functions (RFC 7143 section 11.5.1).
const (
	TMFAbortTask        = 1
	TMFAbortTaskSet     = 2
	TMFClearACA         = 3
	TMFClearTaskSet     = 4
	TMFLogicalUnitReset = 5
	TMFTargetWarmReset  = 6
	TMFTargetColdReset  = 7
	TMFTaskReassign     = 8
)

// Task management responses (RFC 7143 section 11.6.1).
const (
	TMFRespComplete      = 0
	TMFRespNoTask        = 1
	TMFRespNoLUN         = 2
	TMFRespTaskAllegiant = 3
	TMFRespNoReassign    = 4
	TMFRespNotSupported  = 5
	TMFRespAuthFailed    = 6
	TMFRespRejected      = 255
)

// Logout reason codes and responses (RFC 7143 sections 11.14, 11.15).
const (
	LogoutCloseSession    = 0
	LogoutCloseConnection = 1
	LogoutRemoveRecovery  = 2

	LogoutRespSuccess     = 0
	LogoutRespCIDNotFound = 1
	LogoutRespNoRecovery  = 2
	LogoutRespCleanupFail = 3
)

// SCSI Response "Response" byte values.
const (
	RespCommandCompleted = 0x00
	RespTargetFailure    = 0x01
)

// Async message events (RFC 7143 section 11.9.1).
const (
	AsyncSCSIEvent      = 0
	AsyncRequestLogout  = 1
	AsyncDropConnection = 2
	AsyncDropAll        = 3
	AsyncRenegotiate    = 4
)
