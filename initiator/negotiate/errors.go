package negotiate

import (
	"errors"
	"fmt"
)

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

// ProtocolError is a PDU that breaks RFC 7143; the session is failed.
type ProtocolError struct{ Msg string }

func (e *ProtocolError) Error() string { return "initiator: protocol error: " + e.Msg }

// ErrMutualCHAP is returned (wrapped) when the target's answer to the
// initiator's mutual CHAP challenge is wrong: the target does not know
// CHAP.MutualSecret, or is not the target it claims to be.
var ErrMutualCHAP = errors.New("initiator: target failed mutual CHAP authentication")
