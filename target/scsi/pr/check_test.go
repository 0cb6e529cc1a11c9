package pr

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// Expected conflicts, in the column order of SPC-4 table 67 and SBC-3
// table 13: WE, EA (non-holder), then WE-type and EA-type registrants
// only / all registrants from a registered nexus, then from an
// unregistered one. true means RESERVATION CONFLICT.
type columns [6]bool

var (
	allowedEverywhere = columns{}
	readLike          = columns{false, true, false, false, false, true}
	writeLike         = columns{true, true, false, false, true, true}
)

func cdb16(b ...byte) []byte {
	c := make([]byte, 16)
	copy(c, b)
	return c
}

var checkTable = []struct {
	desc string
	cdb  []byte
	want columns
}{
	{"TEST UNIT READY", cdb16(0x00), allowedEverywhere},
	{"INQUIRY", cdb16(0x12), allowedEverywhere},
	{"REQUEST SENSE", cdb16(0x03), allowedEverywhere},
	{"REPORT LUNS", cdb16(0xa0), allowedEverywhere},
	{"LOG SENSE", cdb16(0x4d), allowedEverywhere},
	{"READ CAPACITY(10)", cdb16(0x25), allowedEverywhere},
	{"READ CAPACITY(16)", cdb16(0x9e, 0x10), allowedEverywhere},
	{"REPORT TARGET PORT GROUPS", cdb16(0xa3, 0x0a), allowedEverywhere},
	{"START STOP UNIT start", cdb16(0x1b, 0, 0, 0, 0x01), allowedEverywhere},
	{"PREVENT ALLOW prevent=0", cdb16(0x1e), allowedEverywhere},
	{"PERSISTENT RESERVE IN", cdb16(0x5e), allowedEverywhere},
	{"PERSISTENT RESERVE OUT", cdb16(0x5f), allowedEverywhere},
	{"READ(6)", cdb16(0x08), readLike},
	{"READ(10)", cdb16(0x28), readLike},
	{"READ(12)", cdb16(0xa8), readLike},
	{"READ(16)", cdb16(0x88), readLike},
	{"READ(32)", cdb16(0x7f, 0, 0, 0, 0, 0, 0, 0x18, 0x00, 0x09), readLike},
	{"VERIFY(10)", cdb16(0x2f), readLike},
	{"VERIFY(16)", cdb16(0x8f), readLike},
	{"MODE SENSE(6)", cdb16(0x1a), readLike},
	{"MODE SENSE(10)", cdb16(0x5a), readLike},
	{"GET LBA STATUS", cdb16(0x9e, 0x12), readLike},
	{"READ BUFFER", cdb16(0x3c), readLike},
	{"PRE-FETCH(10)", cdb16(0x34), readLike},
	{"REPORT SUPPORTED OPCODES", cdb16(0xa3, 0x0c), readLike},
	{"SECURITY PROTOCOL IN", cdb16(0xa2), readLike},
	{"RECEIVE COPY RESULTS", cdb16(0x84), readLike},
	{"WRITE(6)", cdb16(0x0a), writeLike},
	{"WRITE(10)", cdb16(0x2a), writeLike},
	{"WRITE(12)", cdb16(0xaa), writeLike},
	{"WRITE(16)", cdb16(0x8a), writeLike},
	{"WRITE(32)", cdb16(0x7f, 0, 0, 0, 0, 0, 0, 0x18, 0x00, 0x0b), writeLike},
	{"WRITE AND VERIFY(10)", cdb16(0x2e), writeLike},
	{"WRITE SAME(10)", cdb16(0x41), writeLike},
	{"WRITE SAME(16)", cdb16(0x93), writeLike},
	{"UNMAP", cdb16(0x42), writeLike},
	{"COMPARE AND WRITE", cdb16(0x89), writeLike},
	{"ORWRITE", cdb16(0x8b), writeLike},
	{"SYNCHRONIZE CACHE(10)", cdb16(0x35), writeLike},
	{"SYNCHRONIZE CACHE(16)", cdb16(0x91), writeLike},
	{"MODE SELECT(6)", cdb16(0x15), writeLike},
	{"MODE SELECT(10)", cdb16(0x55), writeLike},
	{"LOG SELECT", cdb16(0x4c), writeLike},
	{"FORMAT UNIT", cdb16(0x04), writeLike},
	{"SANITIZE", cdb16(0x48), writeLike},
	{"WRITE BUFFER", cdb16(0x3b), writeLike},
	{"EXTENDED COPY", cdb16(0x83), writeLike},
	{"SEND DIAGNOSTIC", cdb16(0x1d), writeLike},
	{"SET TARGET PORT GROUPS", cdb16(0xa4, 0x0a), writeLike},
	{"START STOP UNIT stop", cdb16(0x1b, 0, 0, 0, 0x00), writeLike},
	{"PREVENT ALLOW prevent=1", cdb16(0x1e, 0, 0, 0, 0x01), writeLike},
	{"WRITE LONG(16)", cdb16(0x9f, 0x11), writeLike},
	{"unknown vendor opcode", cdb16(0xc0), writeLike},
}

func TestCheckTable(t *testing.T) {
	type column struct {
		typ        Type
		registered bool
		idx        int
	}
	var cols []column
	for _, reg := range []bool{true, false} {
		cols = append(cols, column{WriteExclusive, reg, 0}, column{ExclusiveAccess, reg, 1})
	}
	for _, typ := range []Type{WriteExclusiveRegistrantsOnly, WriteExclusiveAllRegistrants} {
		cols = append(cols, column{typ, true, 2}, column{typ, false, 4})
	}
	for _, typ := range []Type{ExclusiveAccessRegistrantsOnly, ExclusiveAccessAllRegistrants} {
		cols = append(cols, column{typ, true, 3}, column{typ, false, 5})
	}
	for _, c := range cols {
		s := New()
		requireGood(t, out(s, pA, saRegister, 0, 0, 1))
		requireGood(t, out(s, pA, saReserve, c.typ, 1, 0))
		if c.registered {
			requireGood(t, out(s, pB, saRegister, 0, 0, 2))
		}
		for _, tt := range checkTable {
			assert.False(t, s.Check(pA, tt.cdb), "holder: %s under %v", tt.desc, c.typ)
			assert.Equal(t, tt.want[c.idx], s.Check(pB, tt.cdb), "%s under %v, registered %v", tt.desc, c.typ, c.registered)
		}
	}
}

func TestCheckNoReservation(t *testing.T) {
	s := New()
	for _, tt := range checkTable {
		assert.False(t, s.Check(pB, tt.cdb), tt.desc)
	}
	requireGood(t, out(s, pA, saRegister, 0, 0, 1))
	for _, tt := range checkTable {
		assert.False(t, s.Check(pB, tt.cdb), "registrations alone: %s", tt.desc)
	}
	assert.False(t, s.Check(pB, nil))
}

func TestCheckAllocs(t *testing.T) {
	s := New()
	requireGood(t, out(s, pA, saRegister, 0, 0, 1))
	requireGood(t, out(s, pB, saRegister, 0, 0, 2))
	requireGood(t, out(s, pA, saReserve, WriteExclusiveRegistrantsOnly, 1, 0))
	allocs := testing.AllocsPerRun(100, func() {
		s.Check(pB, write16)
		s.Check(pC, read16)
	})
	assert.Zero(t, allocs)
}

var (
	reserve6  = []byte{0x16, 0, 0, 0, 0, 0}
	release6  = []byte{0x17, 0, 0, 0, 0, 0}
	reserve10 = []byte{0x56, 0, 0, 0, 0, 0, 0, 0, 0, 0}
	release10 = []byte{0x57, 0, 0, 0, 0, 0, 0, 0, 0, 0}
	modeSense = []byte{0x1a, 0, 0x3f, 0, 0xff, 0}
)

// TestReserve6TwoInitiators is libiscsi Reserve6.2Initiators.
func TestReserve6TwoInitiators(t *testing.T) {
	s := New()
	requireGood(t, s.Reserve6(pA, reserve6))
	requireGood(t, s.Reserve6(pA, reserve6))
	assert.True(t, s.Check(pB, reserve6))
	requireConflict(t, s.Reserve6(pB, reserve6))
	assert.False(t, s.Check(pB, release6))
	requireGood(t, s.Release6(pB, release6))
	assert.False(t, s.Check(pA, modeSense))
	assert.True(t, s.Check(pB, modeSense))
	assert.True(t, s.Check(pA2, modeSense), "another nexus of the same initiator")
	assert.False(t, s.Check(pB, cdb16(0x12)), "INQUIRY")
	assert.False(t, s.Check(pB, cdb16(0xa0)), "REPORT LUNS")
	assert.True(t, s.Check(pB, cdb16(0x00)), "TEST UNIT READY")
	requireConflict(t, s.Reserve6(pB, reserve10))
	requireGood(t, s.Release6(pA, release6))
	requireGood(t, s.Reserve6(pB, reserve10))
	assert.True(t, s.Check(pA, write16))
	requireGood(t, s.Release6(pB, release10))
	_, held := s.SPC2Holder()
	assert.False(t, held)
}

func TestReserve6BlocksPR(t *testing.T) {
	s := New()
	requireGood(t, s.Reserve6(pA, reserve6))
	for _, p := range []Port{pA, pB} {
		assert.True(t, s.Check(p, cdb16(0x5e)))
		assert.True(t, s.Check(p, cdb16(0x5f)))
		requireConflict(t, out(s, p, saRegister, 0, 0, 1))
		requireConflict(t, s.In(p, prinCDB(saReadKeys, 100)))
	}
}

func TestReserve6Loss(t *testing.T) {
	s := New()
	requireGood(t, s.Reserve6(pA, reserve6))
	s.NexusLoss(pB)
	requireConflict(t, s.Reserve6(pB, reserve6))
	s.NexusLoss(pA)
	requireGood(t, s.Reserve6(pB, reserve6))
	s.Reset()
	requireGood(t, s.Reserve6(pA, reserve6))
	// Persistent reservations survive both.
	s.Reset()
	requireGood(t, out(s, pA, saRegister, 0, 0, 1))
	requireGood(t, out(s, pA, saReserve, WriteExclusive, 1, 0))
	s.NexusLoss(pA)
	s.Reset()
	_, _, ok := readRes(t, s, pB)
	assert.True(t, ok)
}

// TestReserve6WithPR covers the CRH=1 exceptions of SPC-4 5.12.3.
func TestReserve6WithPR(t *testing.T) {
	s := New()
	requireGood(t, out(s, pA, saRegister, 0, 0, 1))
	// Registrations without a reservation: everybody conflicts.
	requireConflict(t, s.Reserve6(pA, reserve6))
	requireConflict(t, s.Reserve6(pB, reserve6))
	requireConflict(t, s.Release6(pB, release6))
	requireGood(t, out(s, pB, saRegister, 0, 0, 2))
	requireGood(t, out(s, pA, saReserve, WriteExclusive, 1, 0))
	// The holder: GOOD, nothing changes.
	requireGood(t, s.Reserve6(pA, reserve6))
	requireGood(t, s.Release6(pA, release6))
	_, held := s.SPC2Holder()
	assert.False(t, held)
	_, _, ok := readRes(t, s, pA)
	assert.True(t, ok)
	// A registered non-holder under WE conflicts; under WE-RO it does not.
	requireConflict(t, s.Reserve6(pB, reserve6))
	assert.True(t, s.Check(pB, reserve6))
	requireGood(t, out(s, pA, saRelease, WriteExclusive, 1, 0))
	requireGood(t, out(s, pA, saReserve, WriteExclusiveRegistrantsOnly, 1, 0))
	requireGood(t, s.Reserve6(pB, reserve6))
	requireGood(t, s.Release6(pB, release6))
	requireConflict(t, s.Reserve6(pC, reserve6))
	// Once every registration is gone RESERVE works again.
	requireGood(t, out(s, pA, saClear, 0, 1, 0))
	requireGood(t, s.Reserve6(pC, reserve6))
}

func TestReserve6CDB(t *testing.T) {
	s := New()
	requireSense(t, s.Reserve6(pA, []byte{0x16, 0x01, 0, 0, 0, 0}), ReasonInvalidFieldInCDB)
	requireSense(t, s.Reserve6(pA, []byte{0x56, 0x10, 0, 0, 0, 0, 0, 0, 0, 0}), ReasonInvalidFieldInCDB)
	requireSense(t, s.Reserve6(pA, []byte{0x16}), ReasonInvalidFieldInCDB)
	requireSense(t, s.Release6(pA, reserve6), ReasonInvalidFieldInCDB)
	_, held := s.SPC2Holder()
	require.False(t, held)
}
