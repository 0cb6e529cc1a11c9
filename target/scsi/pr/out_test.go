package pr

import (
	"encoding/binary"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestRegister(t *testing.T) {
	tests := []struct {
		desc       string
		setup      func(s *State)
		sa         byte
		key, sark  uint64
		wantStatus byte
		wantSense  Reason
		wantKeys   []uint64
		wantGen    uint32
	}{
		{desc: "register new", sa: saRegister, sark: 1, wantKeys: []uint64{1}, wantGen: 1},
		{desc: "register new with nonzero key conflicts", sa: saRegister, key: 5, sark: 1,
			wantStatus: StatusReservationConflict, wantGen: 0},
		{desc: "unregister unregistered is a no-op", sa: saRegister, wantGen: 0},
		{desc: "ignore existing registers", sa: saRegisterIgnore, key: 99, sark: 7, wantKeys: []uint64{7}, wantGen: 1},
		{desc: "re-register with wrong key conflicts",
			setup: func(s *State) { out(s, pA, saRegister, 0, 0, 1) },
			sa:    saRegister, key: 0, sark: 2, wantStatus: StatusReservationConflict, wantKeys: []uint64{1}, wantGen: 1},
		{desc: "change key",
			setup: func(s *State) { out(s, pA, saRegister, 0, 0, 1) },
			sa:    saRegister, key: 1, sark: 2, wantKeys: []uint64{2}, wantGen: 2},
		{desc: "unregister",
			setup: func(s *State) { out(s, pA, saRegister, 0, 0, 1) },
			sa:    saRegister, key: 1, sark: 0, wantGen: 2},
		{desc: "ignore existing replaces key",
			setup: func(s *State) { out(s, pA, saRegister, 0, 0, 1) },
			sa:    saRegisterIgnore, key: 42, sark: 3, wantKeys: []uint64{3}, wantGen: 2},
		{desc: "ignore existing unregisters",
			setup: func(s *State) { out(s, pA, saRegister, 0, 0, 1) },
			sa:    saRegisterIgnore, sark: 0, wantGen: 2},
		{desc: "other nexuses keep their registration",
			setup: func(s *State) { out(s, pB, saRegister, 0, 0, 9) },
			sa:    saRegister, sark: 1, wantKeys: []uint64{9, 1}, wantGen: 2},
		{desc: "same key on two nexuses",
			setup: func(s *State) { out(s, pB, saRegister, 0, 0, 1) },
			sa:    saRegister, sark: 1, wantKeys: []uint64{1, 1}, wantGen: 2},
	}
	for _, tt := range tests {
		t.Run(tt.desc, func(t *testing.T) {
			s := New()
			if tt.setup != nil {
				tt.setup(s)
			}
			r := out(s, pA, tt.sa, 0, tt.key, tt.sark)
			assert.Equal(t, tt.wantStatus, r.Status)
			assert.Equal(t, tt.wantSense, r.Sense)
			gen, keys := readKeys(t, s, pA)
			assert.Equal(t, tt.wantKeys, keys)
			assert.Equal(t, tt.wantGen, gen)
		})
	}
}

func TestOutParameterChecks(t *testing.T) {
	tests := []struct {
		desc  string
		cdb   []byte
		param []byte
		want  Reason
	}{
		{"service action 8", proutCDB(8, 0, 24), basicParams(0, 1, 0), ReasonInvalidFieldInCDB},
		{"short cdb", []byte{0x5f, 0, 0}, nil, ReasonInvalidFieldInCDB},
		{"list length 23", proutCDB(saRegister, 0, 23), basicParams(0, 1, 0)[:23], ReasonParameterListLengthError},
		{"list length 25", proutCDB(saRegister, 0, 25), append(basicParams(0, 1, 0), 0), ReasonParameterListLengthError},
		{"data shorter than cdb says", proutCDB(saRegister, 0, 24), basicParams(0, 1, 0)[:20], ReasonParameterListLengthError},
		{"spec_i_pt on register and ignore", proutCDB(saRegisterIgnore, 0, 24), basicParams(0, 1, fSpecIPT), ReasonInvalidFieldInParameterList},
		{"spec_i_pt on reserve", proutCDB(saReserve, WriteExclusive, 24), basicParams(1, 0, fSpecIPT), ReasonInvalidFieldInParameterList},
		{"spec_i_pt too short", proutCDB(saRegister, 0, 24), basicParams(0, 1, fSpecIPT), ReasonParameterListLengthError},
	}
	for _, tt := range tests {
		t.Run(tt.desc, func(t *testing.T) {
			requireSense(t, New().Out(pA, tt.cdb, tt.param), tt.want)
		})
	}

	s := NewConfig(Config{NoPersistence: true})
	requireSense(t, s.Out(pA, proutCDB(saRegister, 0, 24), basicParams(0, 1, fAPTPL)), ReasonInvalidFieldInParameterList)
	s = NewConfig(Config{MaxRegistrations: 1})
	requireGood(t, out(s, pA, saRegister, 0, 0, 1))
	requireSense(t, out(s, pB, saRegister, 0, 0, 2), ReasonInsufficientRegistrationResources)
}

func TestReserveEachType(t *testing.T) {
	// libiscsi ProutReserve.Simple: reserve, verify, release, per type.
	s := New()
	requireGood(t, out(s, pA, saRegisterIgnore, 0, 0, 0xabc))
	for _, typ := range allTypes {
		t.Run(typ.String(), func(t *testing.T) {
			requireGood(t, out(s, pA, saReserve, typ, 0xabc, 0))
			key, got, ok := readRes(t, s, pA)
			require.True(t, ok)
			assert.Equal(t, typ, got)
			if typ.AllRegistrants() {
				assert.Zero(t, key)
			} else {
				assert.EqualValues(t, 0xabc, key)
			}
			// Repeating is fine, changing the type is not.
			requireGood(t, out(s, pA, saReserve, typ, 0xabc, 0))
			other := WriteExclusive
			if typ == WriteExclusive {
				other = ExclusiveAccess
			}
			requireConflict(t, out(s, pA, saReserve, other, 0xabc, 0))
			requireSense(t, out(s, pA, saRelease, other, 0xabc, 0), ReasonInvalidRelease)
			requireGood(t, out(s, pA, saRelease, typ, 0xabc, 0))
			_, _, ok = readRes(t, s, pA)
			assert.False(t, ok)
		})
	}
	gen, _ := readKeys(t, s, pA)
	assert.EqualValues(t, 1, gen, "RESERVE and RELEASE do not bump PRgeneration")
}

func TestReserveChecks(t *testing.T) {
	s := New()
	requireConflict(t, out(s, pA, saReserve, WriteExclusive, 0, 0)) // unregistered
	requireGood(t, out(s, pA, saRegister, 0, 0, 1))
	requireConflict(t, out(s, pA, saReserve, WriteExclusive, 2, 0)) // wrong key
	requireSense(t, out(s, pA, saReserve, 0, 1, 0), ReasonInvalidFieldInCDB)
	requireSense(t, out(s, pA, saReserve, 2, 1, 0), ReasonInvalidFieldInCDB)
	cdb := proutCDB(saReserve, WriteExclusive, 24)
	cdb[2] |= 0x20 // element scope
	requireSense(t, s.Out(pA, cdb, basicParams(1, 0, 0)), ReasonInvalidFieldInCDB)
	requireGood(t, out(s, pB, saRegister, 0, 0, 2))
	requireGood(t, out(s, pA, saReserve, WriteExclusive, 1, 0))
	requireConflict(t, out(s, pB, saReserve, WriteExclusive, 2, 0))
	// RELEASE by a registered non-holder succeeds and does nothing.
	requireGood(t, out(s, pB, saRelease, WriteExclusive, 2, 0))
	_, _, ok := readRes(t, s, pA)
	assert.True(t, ok)
	requireConflict(t, out(s, pB, saRelease, WriteExclusive, 3, 0))
	requireConflict(t, out(s, pC, saRelease, WriteExclusive, 0, 0))
}

// TestOwnership is libiscsi ProutReserve.Ownership*: the holder
// unregisters; a single-holder reservation goes, an all registrants one
// stays and another registrant may release it.
func TestOwnership(t *testing.T) {
	for _, typ := range allTypes {
		t.Run(typ.String(), func(t *testing.T) {
			s := New()
			requireGood(t, out(s, pA, saRegisterIgnore, 0, 0, 1))
			requireGood(t, out(s, pB, saRegisterIgnore, 0, 0, 2))
			requireGood(t, out(s, pA, saReserve, typ, 1, 0))
			r := out(s, pA, saRegister, 0, 1, 0)
			requireGood(t, r)
			_, got, ok := readRes(t, s, pA)
			if typ.AllRegistrants() {
				require.True(t, ok)
				assert.Equal(t, typ, got)
				assert.Empty(t, r.UAs)
				r = out(s, pB, saRelease, typ, 2, 0)
				requireGood(t, r)
				_, _, ok = readRes(t, s, pA)
				assert.False(t, ok)
			} else {
				assert.False(t, ok)
				if typ.RegistrantsOnly() {
					assert.Equal(t, [][2]byte{uaResReleased}, uasFor(r, pB))
				} else {
					assert.Empty(t, r.UAs)
				}
			}
			requireGood(t, out(s, pB, saRegister, 0, 2, 0))
			_, keys := readKeys(t, s, pA)
			assert.Empty(t, keys)
		})
	}
}

// TestAccess is libiscsi ProutReserve.Access*: what a registered and an
// unregistered second initiator may read and write.
func TestAccess(t *testing.T) {
	tests := []struct {
		typ                                Type
		regRead, regWrite, unRead, unWrite bool
	}{
		{ExclusiveAccess, false, false, false, false},
		{WriteExclusive, true, false, true, false},
		{ExclusiveAccessRegistrantsOnly, true, true, false, false},
		{WriteExclusiveRegistrantsOnly, true, true, true, false},
		{ExclusiveAccessAllRegistrants, true, true, false, false},
		{WriteExclusiveAllRegistrants, true, true, true, false},
	}
	for _, tt := range tests {
		t.Run(tt.typ.String(), func(t *testing.T) {
			s := New()
			requireGood(t, out(s, pA, saRegisterIgnore, 0, 0, 1))
			requireGood(t, out(s, pB, saRegisterIgnore, 0, 0, 2))
			requireGood(t, out(s, pA, saReserve, tt.typ, 1, 0))
			assert.False(t, s.Check(pA, read16))
			assert.False(t, s.Check(pA, write16))
			assert.Equal(t, !tt.regRead, s.Check(pB, read16), "registered read")
			assert.Equal(t, !tt.regWrite, s.Check(pB, write16), "registered write")
			requireGood(t, out(s, pB, saRegister, 0, 2, 0))
			assert.Equal(t, !tt.unRead, s.Check(pB, read16), "unregistered read")
			assert.Equal(t, !tt.unWrite, s.Check(pB, write16), "unregistered write")
			requireGood(t, out(s, pA, saRelease, tt.typ, 1, 0))
			requireGood(t, out(s, pA, saRegister, 0, 1, 0))
		})
	}
}

func TestClear(t *testing.T) {
	// libiscsi ProutClear.Simple plus the unit attentions.
	s := New()
	requireGood(t, out(s, pA, saRegisterIgnore, 0, 0, 1))
	requireGood(t, out(s, pB, saRegisterIgnore, 0, 0, 2))
	gen, _ := readKeys(t, s, pA)
	requireGood(t, out(s, pA, saReserve, ExclusiveAccess, 1, 0))
	requireConflict(t, out(s, pC, saClear, 0, 0, 0))
	requireConflict(t, out(s, pA, saClear, 0, 2, 0))
	r := out(s, pA, saClear, 0, 1, 0)
	requireGood(t, r)
	assert.Equal(t, [][2]byte{uaResPreempted}, uasFor(r, pB))
	assert.Empty(t, uasFor(r, pA))
	_, _, ok := readRes(t, s, pA)
	assert.False(t, ok)
	gen2, keys := readKeys(t, s, pA)
	assert.Empty(t, keys)
	assert.Equal(t, gen+1, gen2)
}

func TestPreemptRemovesRegistration(t *testing.T) {
	// libiscsi ProutPreempt.RemoveRegistration: no reservation.
	s := New()
	requireGood(t, out(s, pA, saRegisterIgnore, 0, 0, 1))
	requireGood(t, out(s, pB, saRegisterIgnore, 0, 0, 2))
	gen, _ := readKeys(t, s, pA)
	r := out(s, pB, saPreempt, ExclusiveAccess, 2, 1)
	requireGood(t, r)
	assert.Equal(t, [][2]byte{uaRegPreempted}, uasFor(r, pA))
	assert.Empty(t, uasFor(r, pB))
	assert.Empty(t, r.Abort)
	gen2, keys := readKeys(t, s, pA)
	assert.Equal(t, []uint64{2}, keys)
	assert.Equal(t, gen+1, gen2)
	_, _, ok := readRes(t, s, pA)
	assert.False(t, ok, "PREEMPT without a reservation creates none")
	// A key nobody has conflicts; a zero key is invalid.
	requireConflict(t, out(s, pB, saPreempt, ExclusiveAccess, 2, 77))
	requireSense(t, out(s, pB, saPreempt, ExclusiveAccess, 2, 0), ReasonInvalidFieldInParameterList)
	requireConflict(t, out(s, pA, saPreempt, ExclusiveAccess, 1, 2), "A is no longer registered")
}

func TestPreemptReservation(t *testing.T) {
	s := New()
	requireGood(t, out(s, pA, saRegisterIgnore, 0, 0, 1))
	requireGood(t, out(s, pB, saRegisterIgnore, 0, 0, 2))
	requireGood(t, out(s, pC, saRegisterIgnore, 0, 0, 3))
	requireGood(t, out(s, pA, saReserve, WriteExclusive, 1, 0))
	// Invalid type matters only when the reservation is taken.
	requireSense(t, out(s, pB, saPreempt, 0, 2, 1), ReasonInvalidFieldInCDB)
	// Preempting a non-holder key removes it and leaves the reservation.
	r := out(s, pB, saPreempt, ExclusiveAccess, 2, 3)
	requireGood(t, r)
	assert.Equal(t, [][2]byte{uaRegPreempted}, uasFor(r, pC))
	key, typ, ok := readRes(t, s, pA)
	require.True(t, ok)
	assert.EqualValues(t, 1, key)
	assert.Equal(t, WriteExclusive, typ)
	// A zero key is invalid with a single-holder reservation.
	requireSense(t, out(s, pB, saPreempt, ExclusiveAccess, 2, 0), ReasonInvalidFieldInParameterList)
	// Preempting the holder moves the reservation with the new type.
	requireGood(t, out(s, pC, saRegisterIgnore, 0, 0, 3))
	r = out(s, pB, saPreempt, ExclusiveAccess, 2, 1)
	requireGood(t, r)
	assert.Equal(t, [][2]byte{uaRegPreempted}, uasFor(r, pA))
	assert.Equal(t, [][2]byte{uaResReleased}, uasFor(r, pC), "type changed")
	assert.Empty(t, uasFor(r, pB))
	key, typ, ok = readRes(t, s, pA)
	require.True(t, ok)
	assert.EqualValues(t, 2, key)
	assert.Equal(t, ExclusiveAccess, typ)
	// The holder may preempt itself to change the type.
	r = out(s, pB, saPreempt, WriteExclusive, 2, 2)
	requireGood(t, r)
	_, typ, _ = readRes(t, s, pA)
	assert.Equal(t, WriteExclusive, typ)
	assert.Equal(t, [][2]byte{uaResReleased}, uasFor(r, pC))
}

func TestPreemptAllRegistrants(t *testing.T) {
	s := New()
	requireGood(t, out(s, pA, saRegisterIgnore, 0, 0, 1))
	requireGood(t, out(s, pB, saRegisterIgnore, 0, 0, 2))
	requireGood(t, out(s, pC, saRegisterIgnore, 0, 0, 3))
	requireGood(t, out(s, pA, saReserve, WriteExclusiveAllRegistrants, 1, 0))
	// A nonzero key only removes registrations.
	r := out(s, pB, saPreempt, ExclusiveAccess, 2, 3)
	requireGood(t, r)
	_, typ, ok := readRes(t, s, pA)
	require.True(t, ok)
	assert.Equal(t, WriteExclusiveAllRegistrants, typ)
	// A zero key removes everybody else and takes the reservation.
	r = s.Out(pB, proutCDB(saPreemptAbort, WriteExclusiveRegistrantsOnly, 24), basicParams(2, 0, 0))
	requireGood(t, r)
	assert.Equal(t, [][2]byte{uaRegPreempted}, uasFor(r, pA))
	require.Len(t, r.Abort, 1)
	assert.True(t, r.Abort[0].Matches(pA))
	key, typ, ok := readRes(t, s, pA)
	require.True(t, ok)
	assert.EqualValues(t, 2, key)
	assert.Equal(t, WriteExclusiveRegistrantsOnly, typ)
	_, keys := readKeys(t, s, pA)
	assert.Equal(t, []uint64{2}, keys)
}

// TestFenceSCSI is the fence_scsi sequence: A and B register, A reserves
// WE-RO, B preempts and aborts A.
func TestFenceSCSI(t *testing.T) {
	s := New()
	requireGood(t, out(s, pA, saRegisterIgnore, 0, 0, 0xa))
	requireGood(t, out(s, pB, saRegisterIgnore, 0, 0, 0xb))
	requireGood(t, out(s, pA, saReserve, WriteExclusiveRegistrantsOnly, 0xa, 0))
	assert.False(t, s.Check(pB, write16), "registrants write under WE-RO")
	r := out(s, pB, saPreemptAbort, WriteExclusiveRegistrantsOnly, 0xb, 0xa)
	requireGood(t, r)
	require.Len(t, r.Abort, 1)
	assert.True(t, r.Abort[0].Matches(pA))
	assert.False(t, r.Abort[0].Matches(pB))
	assert.Equal(t, [][2]byte{uaRegPreempted}, uasFor(r, pA))
	assert.Empty(t, uasFor(r, pB))
	assert.True(t, s.Check(pA, write16), "fenced node cannot write")
	assert.False(t, s.Check(pA, read16), "fenced node can read")
	assert.False(t, s.Check(pB, write16))
	_, keys := readKeys(t, s, pA)
	assert.Equal(t, []uint64{0xb}, keys)
	key, typ, ok := readRes(t, s, pA)
	require.True(t, ok)
	assert.EqualValues(t, 0xb, key)
	assert.Equal(t, WriteExclusiveRegistrantsOnly, typ)
	// The fenced node cannot re-register with its old key.
	requireConflict(t, out(s, pA, saRegister, 0, 0xa, 0xa))
}

func tid(name string, isid *[6]byte) []byte {
	sel := Selector{Port: Port{Initiator: name}, AnyISID: isid == nil}
	if isid != nil {
		sel.ISID = *isid
	}
	return appendTransportID(nil, sel)
}

func specIPTParams(key, sark uint64, flags byte, tids ...[]byte) []byte {
	b := basicParams(key, sark, flags|fSpecIPT)
	var list []byte
	for _, t := range tids {
		list = append(list, t...)
	}
	b = binary.BigEndian.AppendUint32(b, uint32(len(list)))
	return append(b, list...)
}

func TestSpecIPT(t *testing.T) {
	s := New()
	param := specIPTParams(0, 5, 0, tid(pB.Initiator, &pB.ISID), tid(pA.Initiator, &pA.ISID), tid(pC.Initiator, nil))
	r := s.Out(pA, proutCDB(saRegister, 0, len(param)), param)
	requireGood(t, r)
	_, keys := readKeys(t, s, pA)
	assert.Equal(t, []uint64{5, 5, 5}, keys, "A, B and every C port; A's own TransportID merged")
	for _, p := range []Port{pA, pB, pC, {Initiator: pC.Initiator, ISID: [6]byte{1}, RelTgtPort: 1}} {
		assert.GreaterOrEqual(t, s.lookup(p), 0, p.Initiator)
	}
	assert.Less(t, s.lookup(pA2), 0, "registrations are for the receiving target port only")

	// Registered TransportID: refused, all or nothing.
	s2 := New()
	requireGood(t, out(s2, pB, saRegister, 0, 0, 9))
	param = specIPTParams(0, 5, 0, tid(pC.Initiator, &pC.ISID), tid(pB.Initiator, &pB.ISID))
	requireSense(t, s2.Out(pA, proutCDB(saRegister, 0, len(param)), param), ReasonInvalidFieldInParameterList)
	_, keys = readKeys(t, s2, pA)
	assert.Equal(t, []uint64{9}, keys)

	// Length mismatch and malformed TransportIDs.
	param = specIPTParams(0, 5, 0, tid(pB.Initiator, &pB.ISID))
	requireSense(t, s2.Out(pA, proutCDB(saRegister, 0, len(param)+4), append(param, 0, 0, 0, 0)), ReasonParameterListLengthError)
	bad := tid(pB.Initiator, &pB.ISID)
	bad[0] = 0x46 // SAS protocol identifier: only iSCSI is served
	param = specIPTParams(0, 5, 0, bad)
	requireSense(t, s2.Out(pA, proutCDB(saRegister, 0, len(param)), param), ReasonInvalidFieldInParameterList)
	// SPEC_I_PT with a zero service action key, and from a registered nexus.
	param = specIPTParams(0, 0, 0, tid(pC.Initiator, &pC.ISID))
	requireSense(t, s2.Out(pA, proutCDB(saRegister, 0, len(param)), param), ReasonInvalidFieldInParameterList)
	param = specIPTParams(9, 10, 0, tid(pC.Initiator, &pC.ISID))
	requireSense(t, s2.Out(pB, proutCDB(saRegister, 0, len(param)), param), ReasonInvalidFieldInParameterList)
}

func TestAllTgPt(t *testing.T) {
	s := New()
	r := s.Out(pA, proutCDB(saRegister, 0, 24), basicParams(0, 1, fAllTgPt))
	requireGood(t, r)
	assert.GreaterOrEqual(t, s.lookup(pA2), 0, "registered through every target port")
	requireConflict(t, s.Out(pA2, proutCDB(saRegister, 0, 24), basicParams(0, 2, 0)), "already registered")
	requireGood(t, out(s, pA, saReserve, WriteExclusive, 1, 0))
	assert.False(t, s.Check(pA, write16))
	assert.True(t, s.Check(pA2, write16), "the holder is one nexus, not the initiator port")
	// CLEAR from A: A2 is covered by A's registration but is not A.
	r = out(s, pB, saRegister, 0, 0, 2)
	requireGood(t, r)
	r = out(s, pA, saClear, 0, 1, 0)
	requireGood(t, r)
	assert.Empty(t, uasFor(r, pA))
	assert.Equal(t, [][2]byte{uaResPreempted}, uasFor(r, pA2))
	assert.Equal(t, [][2]byte{uaResPreempted}, uasFor(r, pB))
	// ALL_TG_PT cannot cover a nexus registered elsewhere.
	requireGood(t, out(s, pA2, saRegister, 0, 0, 3))
	requireSense(t, s.Out(pA, proutCDB(saRegister, 0, 24), basicParams(0, 1, fAllTgPt)), ReasonInvalidFieldInParameterList)
}

func moveParams(key, sark uint64, unreg bool, rtpi uint16, t []byte) []byte {
	b := make([]byte, 24)
	binary.BigEndian.PutUint64(b[0:], key)
	binary.BigEndian.PutUint64(b[8:], sark)
	if unreg {
		b[17] = 0x02
	}
	binary.BigEndian.PutUint16(b[18:], rtpi)
	binary.BigEndian.PutUint32(b[20:], uint32(len(t)))
	return append(b, t...)
}

func TestRegisterAndMove(t *testing.T) {
	s := New()
	requireGood(t, out(s, pA, saRegister, 0, 0, 1))
	move := func(p Port, typ Type, param []byte) Result {
		return s.Out(p, proutCDB(saRegisterMove, typ, len(param)), param)
	}
	// Not the holder: conflict.
	requireConflict(t, move(pA, WriteExclusive, moveParams(1, 2, false, 1, tid(pB.Initiator, &pB.ISID))))
	requireGood(t, out(s, pA, saReserve, WriteExclusive, 1, 0))
	gen := s.Generation()
	requireConflict(t, move(pA, WriteExclusive, moveParams(9, 2, false, 1, tid(pB.Initiator, &pB.ISID))))
	requireSense(t, move(pA, WriteExclusive, moveParams(1, 0, false, 1, tid(pB.Initiator, &pB.ISID))), ReasonInvalidFieldInParameterList)
	requireSense(t, move(pA, WriteExclusive, moveParams(1, 2, false, 1, tid(pA.Initiator, &pA.ISID))), ReasonInvalidFieldInParameterList)
	requireSense(t, move(pA, WriteExclusive, moveParams(1, 2, false, 1, tid(pB.Initiator, nil))), ReasonInvalidFieldInParameterList)
	requireSense(t, move(pA, 0, moveParams(1, 2, false, 1, tid(pB.Initiator, &pB.ISID))), ReasonInvalidFieldInCDB)
	p := moveParams(1, 2, false, 1, tid(pB.Initiator, &pB.ISID))
	requireSense(t, s.Out(pA, proutCDB(saRegisterMove, WriteExclusive, len(p)-4), p[:len(p)-4]), ReasonParameterListLengthError)
	assert.Equal(t, gen, s.Generation())

	requireGood(t, move(pA, ExclusiveAccess, moveParams(1, 2, true, 1, tid(pB.Initiator, &pB.ISID))))
	assert.Equal(t, gen+1, s.Generation())
	key, typ, ok := readRes(t, s, pA)
	require.True(t, ok)
	assert.EqualValues(t, 2, key)
	assert.Equal(t, ExclusiveAccess, typ)
	_, keys := readKeys(t, s, pA)
	assert.Equal(t, []uint64{2}, keys, "UNREG dropped A")
	assert.False(t, s.Check(pB, write16))
	assert.True(t, s.Check(pA, read16))

	// Moving to another target port, keeping the source registered.
	requireGood(t, s.Out(pB, proutCDB(saRegisterMove, ExclusiveAccess, len(moveParams(2, 7, false, 2, tid(pC.Initiator, &pC.ISID)))),
		moveParams(2, 7, false, 2, tid(pC.Initiator, &pC.ISID))))
	pC2 := Port{Initiator: pC.Initiator, ISID: pC.ISID, RelTgtPort: 2}
	assert.False(t, s.Check(pC2, write16))
	assert.True(t, s.Check(pC, write16), "C through port 1 is another nexus")
	_, keys = readKeys(t, s, pA)
	assert.Equal(t, []uint64{2, 7}, keys)
	// All registrants reservations cannot move.
	s2 := New()
	requireGood(t, out(s2, pA, saRegister, 0, 0, 1))
	requireGood(t, out(s2, pA, saReserve, ExclusiveAccessAllRegistrants, 1, 0))
	p = moveParams(1, 2, false, 1, tid(pB.Initiator, &pB.ISID))
	requireConflict(t, s2.Out(pA, proutCDB(saRegisterMove, ExclusiveAccessAllRegistrants, len(p)), p))
}

func TestPersistFlag(t *testing.T) {
	s := New()
	r := out(s, pA, saRegister, 0, 0, 1)
	assert.False(t, r.Persist, "APTPL off")
	r = s.Out(pA, proutCDB(saRegister, 0, 24), basicParams(1, 1, fAPTPL))
	assert.True(t, r.Persist)
	assert.True(t, s.APTPL())
	r = out(s, pA, saReserve, WriteExclusive, 1, 0)
	assert.True(t, r.Persist, "reservation changes persist with APTPL")
	r = out(s, pA, saReserve, WriteExclusive, 1, 0)
	assert.False(t, r.Persist, "nothing changed")
	r = out(s, pB, saReserve, WriteExclusive, 0, 0)
	assert.False(t, r.Persist, "failed")
	r = out(s, pA, saRegister, 0, 1, 2) // APTPL=0 now: the file must learn it
	assert.True(t, r.Persist)
	assert.False(t, s.APTPL())
	r = out(s, pA, saRegister, 0, 2, 3)
	assert.False(t, r.Persist)
}

func TestReasonCodes(t *testing.T) {
	for r := ReasonInvalidFieldInCDB; r <= ReasonInvalidRelease; r++ {
		assert.EqualValues(t, SenseKeyIllegalRequest, r.SenseKey(), r.String())
		assert.NotZero(t, r.ASC(), r.String())
	}
	assert.Zero(t, ReasonNone.SenseKey())
	assert.Equal(t, [2]byte{0x55, 0x04}, [2]byte{ReasonInsufficientRegistrationResources.ASC(), ReasonInsufficientRegistrationResources.ASCQ()})
	assert.Equal(t, [2]byte{0x26, 0x04}, [2]byte{ReasonInvalidRelease.ASC(), ReasonInvalidRelease.ASCQ()})
	assert.Equal(t, [2]byte{0x1a, 0x00}, [2]byte{ReasonParameterListLengthError.ASC(), ReasonParameterListLengthError.ASCQ()})
}
