package initiator

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"strings"

	"github.com/tandem-ha/tandem/wire/scsi"
)

// PERSISTENT RESERVE IN/OUT (SPC-4 sections 6.15, 6.16).
// The CDBs and the parameter list are built by wire/scsi (prcdb.go), shared
// with the SG_IO path (initiator/sgio) so both encode PR identically.
const (
	opPRIn  = scsi.OpPersistentReserveIn
	opPROut = scsi.OpPersistentReserveOut

	saReadKeys           = scsi.PRInReadKeys
	saReadReservation    = scsi.PRInReadReservation
	saReportCapabilities = scsi.PRInReportCapabilities
	saReadFullStatus     = scsi.PRInReadFullStatus
)

// PROutAction is a PERSISTENT RESERVE OUT service action (SPC-4 table 180).
type PROutAction byte

// PERSISTENT RESERVE OUT service actions.
const (
	PROutRegister          PROutAction = 0x0
	PROutReserve           PROutAction = 0x1
	PROutRelease           PROutAction = 0x2
	PROutClear             PROutAction = 0x3
	PROutPreempt           PROutAction = 0x4
	PROutPreemptAndAbort   PROutAction = 0x5
	PROutRegisterAndIgnore PROutAction = 0x6
	PROutRegisterAndMove   PROutAction = 0x7
)

// PRType is a persistent reservation type (SPC-4 table 169).
type PRType byte

// Persistent reservation types.
const (
	PRWriteExclusive                 PRType = 0x1
	PRExclusiveAccess                PRType = 0x3
	PRWriteExclusiveRegistrantsOnly  PRType = 0x5
	PRExclusiveAccessRegistrantsOnly PRType = 0x6
	PRWriteExclusiveAllRegistrants   PRType = 0x7
	PRExclusiveAccessAllRegistrants  PRType = 0x8
)

// PRScopeLU is the only scope SPC-4 keeps (LU_SCOPE, section 6.15.2).
const PRScopeLU = 0x0

var prTypeNames = map[PRType]string{
	PRWriteExclusive:                 "WRITE EXCLUSIVE",
	PRExclusiveAccess:                "EXCLUSIVE ACCESS",
	PRWriteExclusiveRegistrantsOnly:  "WRITE EXCLUSIVE - REGISTRANTS ONLY",
	PRExclusiveAccessRegistrantsOnly: "EXCLUSIVE ACCESS - REGISTRANTS ONLY",
	PRWriteExclusiveAllRegistrants:   "WRITE EXCLUSIVE - ALL REGISTRANTS",
	PRExclusiveAccessAllRegistrants:  "EXCLUSIVE ACCESS - ALL REGISTRANTS",
}

func (t PRType) String() string {
	if n, ok := prTypeNames[t]; ok {
		return n
	}
	return fmt.Sprintf("PR type %#x", byte(t))
}

// PRKeys is the READ KEYS answer (SPC-4 section 6.16.2).
type PRKeys struct {
	Generation uint32
	Keys       []uint64
}

// PRReservation is the READ RESERVATION answer (SPC-4 section 6.16.3).
type PRReservation struct {
	Generation uint32
	// Reserved is false when no persistent reservation exists; the other
	// fields are then zero.
	Reserved bool
	// Key is the holder's key; zero for the all registrants types.
	Key   uint64
	Scope byte
	Type  PRType
}

// PRCapabilities is the REPORT CAPABILITIES answer (SPC-4 section 6.16.4).
type PRCapabilities struct {
	// CRH: the RESERVE/RELEASE exceptions of SPC-4 5.12.3 apply. SIPC,
	// ATPC, PTPLC: SPEC_I_PT, ALL_TG_PT and APTPL are supported.
	CRH, SIPC, ATPC, PTPLC bool
	// TMV says TypeMask is valid; PTPLA that APTPL is active.
	TMV, PTPLA bool
	// AllowCommands is the 3-bit ALLOW COMMANDS field.
	AllowCommands byte
	// TypeMask has bit t set when type t is supported.
	TypeMask uint16
}

// Supports reports whether the type mask lists t.
func (c PRCapabilities) Supports(t PRType) bool { return c.TMV && c.TypeMask&(1<<t) != 0 }

// PRRegistrant is one READ FULL STATUS descriptor (SPC-4 section 6.16.5).
type PRRegistrant struct {
	Key uint64
	// AllTgPt: registered through every target port. Holder: this
	// registrant holds the reservation, of Scope and Type.
	AllTgPt, Holder    bool
	Scope              byte
	Type               PRType
	RelativeTargetPort uint16
	// TransportID is the raw TransportID; Initiator and ISID are decoded
	// from it when it is an iSCSI one (HasISID false for format 00b).
	TransportID []byte
	Initiator   string
	ISID        [6]byte
	HasISID     bool
}

// PRFullStatus is the READ FULL STATUS answer.
type PRFullStatus struct {
	Generation  uint32
	Registrants []PRRegistrant
}

// PROptions are the flags of a REGISTER or REGISTER AND IGNORE EXISTING
// KEY parameter list (SPC-4 section 6.15.3).
type PROptions struct {
	// APTPL asks the target to keep the registrations and reservation
	// across power loss.
	APTPL bool
	// AllTgPt registers through every target port.
	AllTgPt bool
	// TransportIDs, when set, sets SPEC_I_PT: the key is registered for
	// these initiator ports too (REGISTER only). Build them with
	// ISCSITransportID.
	TransportIDs [][]byte
}

// PRMove is the destination of REGISTER AND MOVE (SPC-4 section 6.15.4).
type PRMove struct {
	// RelativeTargetPort is the target port of the destination nexus.
	RelativeTargetPort uint16
	// TransportID names the destination initiator port.
	TransportID []byte
	// Unregister drops the caller's registration after the move.
	Unregister bool
	APTPL      bool
}

// ISCSITransportID builds an iSCSI TransportID (SPC-4 section 7.6.4.6):
// format 01b naming the initiator port name+ISID when isid is not nil,
// otherwise format 00b naming the initiator (all its ports).
func ISCSITransportID(name string, isid *[6]byte) []byte {
	body := name
	format := byte(0x00)
	if isid != nil {
		format = 0x40
		body += fmt.Sprintf(",i,0x%012x", isid[:])
	}
	n := len(body) + 1 // NUL terminated
	n = (n + 3) &^ 3   // padded to a multiple of four
	if n < 20 {
		n = 20
	}
	b := make([]byte, 4, 4+n)
	b[0] = format | 0x5 // protocol identifier: iSCSI
	binary.BigEndian.PutUint16(b[2:], uint16(n))
	b = append(b, body...)
	return append(b, make([]byte, 4+n-len(b))...)
}

// ParseISCSITransportID decodes an iSCSI TransportID: the initiator name
// and, for format 01b, the ISID.
func ParseISCSITransportID(b []byte) (name string, isid [6]byte, hasISID bool, err error) {
	if len(b) < 4 {
		return "", isid, false, io.ErrUnexpectedEOF
	}
	if b[0]&0x0f != 0x5 {
		return "", isid, false, fmt.Errorf("initiator: transport id protocol %#x is not iSCSI", b[0]&0x0f)
	}
	n := int(binary.BigEndian.Uint16(b[2:4]))
	if len(b) < 4+n {
		return "", isid, false, io.ErrUnexpectedEOF
	}
	body := b[4 : 4+n]
	if i := strings.IndexByte(string(body), 0); i >= 0 {
		body = body[:i]
	}
	s := string(body)
	switch b[0] >> 6 {
	case 0:
		return s, isid, false, nil
	case 1:
		i := strings.LastIndex(strings.ToLower(s), ",i,0x")
		if i < 0 || len(s)-i-5 != 12 {
			return "", isid, false, errors.New("initiator: transport id format 01b without ,i,0x<ISID>")
		}
		for j := range 6 {
			hi, ok1 := unhex(s[i+5+2*j])
			lo, ok2 := unhex(s[i+6+2*j])
			if !ok1 || !ok2 {
				return "", isid, false, errors.New("initiator: transport id ISID is not hex")
			}
			isid[j] = hi<<4 | lo
		}
		return s[:i], isid, true, nil
	}
	return "", isid, false, fmt.Errorf("initiator: transport id format %d is not defined for iSCSI", b[0]>>6)
}

func unhex(c byte) (byte, bool) {
	switch {
	case c >= '0' && c <= '9':
		return c - '0', true
	case c >= 'a' && c <= 'f':
		return c - 'a' + 10, true
	case c >= 'A' && c <= 'F':
		return c - 'A' + 10, true
	}
	return 0, false
}

// prIn runs PERSISTENT RESERVE IN, growing the allocation length until
// the list fits (the ADDITIONAL LENGTH tells the whole size, SPC-4
// 4.2.5.6).
func (s *Session) prIn(ctx context.Context, lun uint64, sa byte) ([]byte, error) {
	alloc := 8 + 8*32
	for {
		cdb := scsi.PRInCDB(sa, uint16(alloc))
		resp, err := s.simple(ctx, lun, cdb[:], uint32(alloc))
		if err != nil {
			return nil, fmt.Errorf("initiator: persistent reserve in: %w", err)
		}
		d := resp.Data
		if sa == saReportCapabilities || len(d) < 8 {
			return d, nil
		}
		need := 8 + int(binary.BigEndian.Uint32(d[4:8]))
		if need <= alloc || alloc == 0xffff {
			return d, nil
		}
		alloc = min(need, 0xffff)
	}
}

// PRReadKeys sends PERSISTENT RESERVE IN / READ KEYS.
func (s *Session) PRReadKeys(ctx context.Context, lun uint64) (PRKeys, error) {
	d, err := s.prIn(ctx, lun, saReadKeys)
	if err != nil {
		return PRKeys{}, err
	}
	return DecodePRKeys(d)
}

// DecodePRKeys decodes READ KEYS parameter data; a list cut by the
// allocation length gives the keys that arrived.
func DecodePRKeys(d []byte) (PRKeys, error) {
	if len(d) < 8 {
		return PRKeys{}, io.ErrUnexpectedEOF
	}
	k := PRKeys{Generation: binary.BigEndian.Uint32(d)}
	end := min(uint64(8)+uint64(binary.BigEndian.Uint32(d[4:])), uint64(len(d)))
	for off := uint64(8); off+8 <= end; off += 8 {
		k.Keys = append(k.Keys, binary.BigEndian.Uint64(d[off:]))
	}
	return k, nil
}

// PRReadReservation sends PERSISTENT RESERVE IN / READ RESERVATION.
func (s *Session) PRReadReservation(ctx context.Context, lun uint64) (PRReservation, error) {
	d, err := s.prIn(ctx, lun, saReadReservation)
	if err != nil {
		return PRReservation{}, err
	}
	return DecodePRReservation(d)
}

// DecodePRReservation decodes READ RESERVATION parameter data.
func DecodePRReservation(d []byte) (PRReservation, error) {
	if len(d) < 8 {
		return PRReservation{}, io.ErrUnexpectedEOF
	}
	r := PRReservation{Generation: binary.BigEndian.Uint32(d)}
	if binary.BigEndian.Uint32(d[4:]) == 0 {
		return r, nil
	}
	if len(d) < 24 {
		return r, io.ErrUnexpectedEOF
	}
	r.Reserved = true
	r.Key = binary.BigEndian.Uint64(d[8:])
	r.Scope, r.Type = d[21]>>4, PRType(d[21]&0x0f)
	return r, nil
}

// PRReportCapabilities sends PERSISTENT RESERVE IN / REPORT CAPABILITIES.
func (s *Session) PRReportCapabilities(ctx context.Context, lun uint64) (PRCapabilities, error) {
	d, err := s.prIn(ctx, lun, saReportCapabilities)
	if err != nil {
		return PRCapabilities{}, err
	}
	return DecodePRCapabilities(d)
}

// DecodePRCapabilities decodes REPORT CAPABILITIES parameter data.
func DecodePRCapabilities(d []byte) (PRCapabilities, error) {
	if len(d) < 8 {
		return PRCapabilities{}, io.ErrUnexpectedEOF
	}
	return PRCapabilities{
		CRH: d[2]&0x10 != 0, SIPC: d[2]&0x08 != 0, ATPC: d[2]&0x04 != 0, PTPLC: d[2]&0x01 != 0,
		TMV: d[3]&0x80 != 0, AllowCommands: d[3] >> 4 & 0x7, PTPLA: d[3]&0x01 != 0,
		TypeMask: uint16(d[4]) | uint16(d[5])<<8,
	}, nil
}

// PRReadFullStatus sends PERSISTENT RESERVE IN / READ FULL STATUS.
func (s *Session) PRReadFullStatus(ctx context.Context, lun uint64) (PRFullStatus, error) {
	d, err := s.prIn(ctx, lun, saReadFullStatus)
	if err != nil {
		return PRFullStatus{}, err
	}
	return DecodePRFullStatus(d)
}

// DecodePRFullStatus decodes READ FULL STATUS parameter data; a list cut
// by the allocation length gives the whole descriptors that arrived.
func DecodePRFullStatus(d []byte) (PRFullStatus, error) {
	if len(d) < 8 {
		return PRFullStatus{}, io.ErrUnexpectedEOF
	}
	fs := PRFullStatus{Generation: binary.BigEndian.Uint32(d)}
	end := min(uint64(8)+uint64(binary.BigEndian.Uint32(d[4:])), uint64(len(d)))
	d = d[:end]
	for off := 8; off+24 <= len(d); {
		r := PRRegistrant{
			Key:     binary.BigEndian.Uint64(d[off:]),
			AllTgPt: d[off+12]&0x02 != 0, Holder: d[off+12]&0x01 != 0,
			RelativeTargetPort: binary.BigEndian.Uint16(d[off+18:]),
		}
		if r.Holder {
			r.Scope, r.Type = d[off+13]>>4, PRType(d[off+13]&0x0f)
		}
		n := uint64(binary.BigEndian.Uint32(d[off+20:]))
		if uint64(off)+24+n > uint64(len(d)) {
			break
		}
		r.TransportID = append([]byte(nil), d[off+24:off+24+int(n)]...)
		if name, isid, has, err := ParseISCSITransportID(r.TransportID); err == nil {
			r.Initiator, r.ISID, r.HasISID = name, isid, has
		}
		fs.Registrants = append(fs.Registrants, r)
		off += 24 + int(n)
	}
	return fs, nil
}

// PersistentReserveOut sends PERSISTENT RESERVE OUT with a parameter list
// built by the caller. The typed calls below build it for each action.
// RESERVATION CONFLICT is returned as an error matching
// ErrReservationConflict. Like the other convenience calls, the PR calls
// reissue a command after a unit attention (it was not executed, SAM-5
// 5.14) except after the reservation ones (IsReservationUnitAttention),
// which are returned.
func (s *Session) PersistentReserveOut(ctx context.Context, lun uint64, sa PROutAction, t PRType, param []byte) error {
	c := scsi.PROutCDB(byte(sa), byte(t), uint32(len(param)))
	cdb := c[:]
	for attempt := 0; ; attempt++ {
		resp, err := s.Do(ctx, &Command{LUN: lun, CDB: cdb, DataOut: param})
		if err == nil {
			err = resp.Err()
		}
		if err == nil {
			return nil
		}
		if !retryUA(err, attempt) {
			return fmt.Errorf("initiator: persistent reserve out (service action %d): %w", sa, err)
		}
	}
}

// prParams builds the basic parameter list (SPC-4 table 182).
func prParams(key, sark uint64, o PROptions) []byte {
	return scsi.PROutParams(key, sark, o.Flags(), o.TransportIDs)
}

// Flags returns the ALL_TG_PT and APTPL bits of byte 20 of the parameter
// list (SPEC_I_PT follows from TransportIDs).
func (o PROptions) Flags() byte {
	var f byte
	if o.AllTgPt {
		f |= scsi.PROutAllTgPt
	}
	if o.APTPL {
		f |= scsi.PROutAPTPL
	}
	return f
}

// PRRegister registers newKey for this I_T nexus (key is the current
// registration's key, 0 when unregistered); newKey 0 unregisters.
func (s *Session) PRRegister(ctx context.Context, lun, key, newKey uint64, o PROptions) error {
	return s.PersistentReserveOut(ctx, lun, PROutRegister, 0, prParams(key, newKey, o))
}

// PRRegisterAndIgnore registers newKey whatever key is registered now
// (REGISTER AND IGNORE EXISTING KEY). TransportIDs must be empty.
func (s *Session) PRRegisterAndIgnore(ctx context.Context, lun, newKey uint64, o PROptions) error {
	return s.PersistentReserveOut(ctx, lun, PROutRegisterAndIgnore, 0, prParams(0, newKey, o))
}

// PRReserve creates a persistent reservation of type t held through key.
func (s *Session) PRReserve(ctx context.Context, lun, key uint64, t PRType) error {
	return s.PersistentReserveOut(ctx, lun, PROutReserve, t, prParams(key, 0, PROptions{}))
}

// PRRelease releases the reservation of type t held through key.
func (s *Session) PRRelease(ctx context.Context, lun, key uint64, t PRType) error {
	return s.PersistentReserveOut(ctx, lun, PROutRelease, t, prParams(key, 0, PROptions{}))
}

// PRClear removes every registration and the reservation.
func (s *Session) PRClear(ctx context.Context, lun, key uint64) error {
	return s.PersistentReserveOut(ctx, lun, PROutClear, 0, prParams(key, 0, PROptions{}))
}

// PRPreempt removes the registrations of victim (and takes over a
// reservation they hold, as type t).
func (s *Session) PRPreempt(ctx context.Context, lun, key, victim uint64, t PRType) error {
	return s.PersistentReserveOut(ctx, lun, PROutPreempt, t, prParams(key, victim, PROptions{}))
}

// PRPreemptAndAbort is PRPreempt that also aborts the victims' tasks:
// the fencing step of fence_scsi.
func (s *Session) PRPreemptAndAbort(ctx context.Context, lun, key, victim uint64, t PRType) error {
	return s.PersistentReserveOut(ctx, lun, PROutPreemptAndAbort, t, prParams(key, victim, PROptions{}))
}

// PRRegisterAndMove registers newKey for the nexus m names and moves the
// reservation (of type t, held through key) to it.
func (s *Session) PRRegisterAndMove(ctx context.Context, lun, key, newKey uint64, t PRType, m PRMove) error {
	p := make([]byte, 24, 24+len(m.TransportID))
	binary.BigEndian.PutUint64(p, key)
	binary.BigEndian.PutUint64(p[8:], newKey)
	if m.Unregister {
		p[17] |= 0x02
	}
	if m.APTPL {
		p[17] |= 0x01
	}
	binary.BigEndian.PutUint16(p[18:], m.RelativeTargetPort)
	binary.BigEndian.PutUint32(p[20:], uint32(len(m.TransportID)))
	p = append(p, m.TransportID...)
	return s.PersistentReserveOut(ctx, lun, PROutRegisterAndMove, t, p)
}
