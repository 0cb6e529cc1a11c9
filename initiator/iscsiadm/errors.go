package iscsiadm

import (
	"strconv"
	"strings"
)

// ExitCode is an iscsiadm exit status (open-iscsi include/iscsi_err.h).
// It is an error so that callers can branch with errors.Is(err,
// iscsiadm.ExitAuthFailed): *OpError matches its own code.
type ExitCode int

// Exit codes of the open-iscsi tools (include/iscsi_err.h).
const (
	ExitGeneric         ExitCode = 1  // ISCSI_ERR
	ExitSessNotFound    ExitCode = 2  // ISCSI_ERR_SESS_NOT_FOUND
	ExitNoMem           ExitCode = 3  // ISCSI_ERR_NOMEM
	ExitTransport       ExitCode = 4  // ISCSI_ERR_TRANS: connection failed
	ExitLogin           ExitCode = 5  // ISCSI_ERR_LOGIN: generic login failure
	ExitIDBM            ExitCode = 6  // ISCSI_ERR_IDBM: record database (or /run/lock) error
	ExitInvalid         ExitCode = 7  // ISCSI_ERR_INVAL: invalid argument
	ExitTransTimeout    ExitCode = 8  // ISCSI_ERR_TRANS_TIMEOUT: connect timed out
	ExitInternal        ExitCode = 9  // ISCSI_ERR_INTERNAL
	ExitLogout          ExitCode = 10 // ISCSI_ERR_LOGOUT
	ExitPDUTimeout      ExitCode = 11 // ISCSI_ERR_PDU_TIMEOUT
	ExitTransNotFound   ExitCode = 12 // ISCSI_ERR_TRANS_NOT_FOUND: iscsi_tcp not loaded
	ExitAccess          ExitCode = 13 // ISCSI_ERR_ACCESS: permission denied
	ExitTransCaps       ExitCode = 14 // ISCSI_ERR_TRANS_CAPS
	ExitSessExists      ExitCode = 15 // ISCSI_ERR_SESS_EXISTS: already logged in
	ExitInvalidMgmtReq  ExitCode = 16 // ISCSI_ERR_INVALID_MGMT_REQ
	ExitISNSUnavailable ExitCode = 17 // ISCSI_ERR_ISNS_UNAVAILABLE
	ExitISCSIDComm      ExitCode = 18 // ISCSI_ERR_ISCSID_COMM_ERR
	ExitFatalLogin      ExitCode = 19 // ISCSI_ERR_FATAL_LOGIN (e.g. wrong target secret in mutual CHAP)
	ExitISCSIDNotConn   ExitCode = 20 // ISCSI_ERR_ISCSID_NOTCONN: iscsid not running
	ExitNoObjsFound     ExitCode = 21 // ISCSI_ERR_NO_OBJS_FOUND: no record/session
	ExitSysfsLookup     ExitCode = 22 // ISCSI_ERR_SYSFS_LOOKUP
	ExitHostNotFound    ExitCode = 23 // ISCSI_ERR_HOST_NOT_FOUND
	ExitAuthFailed      ExitCode = 24 // ISCSI_ERR_LOGIN_AUTH_FAILED: CHAP refused
	ExitISNSQuery       ExitCode = 25 // ISCSI_ERR_ISNS_QUERY
	ExitISNSRegFailed   ExitCode = 26 // ISCSI_ERR_ISNS_REG_FAILED
	ExitOpNotSupp       ExitCode = 27 // ISCSI_ERR_OP_NOT_SUPP
	ExitBusy            ExitCode = 28 // ISCSI_ERR_BUSY
)

var exitNames = map[ExitCode]string{
	ExitGeneric: "generic error", ExitSessNotFound: "session not found", ExitNoMem: "out of memory",
	ExitTransport: "transport error", ExitLogin: "login failure", ExitIDBM: "record database error",
	ExitInvalid: "invalid argument", ExitTransTimeout: "connection timed out", ExitInternal: "internal iscsid error",
	ExitLogout: "logout failure", ExitPDUTimeout: "iSCSI PDU timed out", ExitTransNotFound: "transport module not loaded",
	ExitAccess: "permission denied", ExitTransCaps: "operation not supported by the transport",
	ExitSessExists: "session already exists", ExitInvalidMgmtReq: "invalid management request",
	ExitISNSUnavailable: "iSNS unavailable", ExitISCSIDComm: "iscsid communication error",
	ExitFatalLogin: "fatal login error", ExitISCSIDNotConn: "could not connect to iscsid",
	ExitNoObjsFound: "no records or sessions found", ExitSysfsLookup: "sysfs lookup failed",
	ExitHostNotFound: "host not found", ExitAuthFailed: "authorization failure",
	ExitISNSQuery: "iSNS query failed", ExitISNSRegFailed: "iSNS registration failed",
	ExitOpNotSupp: "operation not supported", ExitBusy: "device or resource in use",
}

// fixes say what usually repairs each failure (from the field: see
// /work/shared/notes/vm-lab.md).
var exitFixes = map[ExitCode]string{
	ExitTransport:     "check the portal address and that the target listens",
	ExitIDBM:          "check that /etc/iscsi is writable and /run/lock exists",
	ExitTransTimeout:  "the portal did not answer: check the address, routes and firewall",
	ExitTransNotFound: "load the iscsi_tcp kernel module",
	ExitAccess:        "run as root",
	ExitFatalLogin:    "the target refused the login for good: with mutual CHAP check the target's user and secret (password_in)",
	ExitISCSIDNotConn: "start iscsid, or point iscsid.startup in /etc/iscsi/iscsid.conf at it",
	ExitNoObjsFound:   "no such node record or session: run discovery first, or check the target name and portal",
	ExitAuthFailed:    "check the CHAP user and secret on both the initiator and the target",
}

func (c ExitCode) Error() string { return c.String() }

func (c ExitCode) String() string {
	s := "iscsiadm exit " + strconv.Itoa(int(c))
	if n, ok := exitNames[c]; ok {
		s += " (" + n + ")"
	}
	return s
}

// Fix is a hint for repairing the failure, or "".
func (c ExitCode) Fix() string { return exitFixes[c] }

// OpError is a failed iscsiadm call.
type OpError struct {
	// Op is what was attempted: "login", "discovery", "update node"...
	Op string
	// Args are iscsiadm's arguments with secret values replaced by "***".
	Args []string
	// ExitCode is iscsiadm's exit status, -1 when it did not exit (not
	// found, killed at the deadline).
	ExitCode int
	// Stderr is iscsiadm's message, secrets redacted.
	Stderr string
	// Err is the cause: an ExitCode, or the exec or context error.
	Err error
}

func (e *OpError) Error() string {
	var b strings.Builder
	b.WriteString("iscsiadm ")
	b.WriteString(e.Op)
	b.WriteString(": ")
	b.WriteString(e.Err.Error())
	if msg := lastLines(e.Stderr, 2); msg != "" {
		b.WriteString(": ")
		b.WriteString(msg)
	}
	if fix := ExitCode(e.ExitCode).Fix(); fix != "" && e.ExitCode > 0 {
		b.WriteString("; ")
		b.WriteString(fix)
	}
	return b.String()
}

// Unwrap returns Err (an ExitCode for a non-zero exit).
func (e *OpError) Unwrap() error { return e.Err }

// Code is the exit code as an ExitCode (0 when iscsiadm did not exit).
func (e *OpError) Code() ExitCode {
	if e.ExitCode < 0 {
		return 0
	}
	return ExitCode(e.ExitCode)
}

// lastLines joins the last n non-empty lines of s with " / ", without the
// "iscsiadm: " prefix every line carries.
func lastLines(s string, n int) string {
	var out []string
	for _, l := range strings.Split(s, "\n") {
		l = strings.TrimSpace(strings.TrimPrefix(strings.TrimSpace(l), "iscsiadm:"))
		if l != "" {
			out = append(out, l)
		}
	}
	if len(out) > n {
		out = out[len(out)-n:]
	}
	return strings.Join(out, " / ")
}
