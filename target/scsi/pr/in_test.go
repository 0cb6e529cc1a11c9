package pr

import (
	"encoding/binary"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestInServiceActionRange is libiscsi PrinServiceactionRange.Range.
func TestInServiceActionRange(t *testing.T) {
	s := New()
	for sa := byte(0); sa < 0x20; sa++ {
		r := s.In(pA, prinCDB(sa, 16384))
		if sa < 4 {
			requireGood(t, r)
		} else {
			requireSense(t, r, ReasonInvalidFieldInCDB)
		}
	}
	requireSense(t, s.In(pA, []byte{0x5e, 0}), ReasonInvalidFieldInCDB)
}

// TestInTruncate is libiscsi PrinReadKeys.Truncate: the allocation length
// cuts the data, not the ADDITIONAL LENGTH.
func TestInTruncate(t *testing.T) {
	s := New()
	requireGood(t, out(s, pA, saRegister, 0, 0, 1))
	requireGood(t, out(s, pB, saRegister, 0, 0, 2))
	r := s.In(pA, prinCDB(saReadKeys, 8))
	requireGood(t, r)
	require.Len(t, r.Data, 8)
	assert.EqualValues(t, 16, binary.BigEndian.Uint32(r.Data[4:8]))
	r = s.In(pA, prinCDB(saReadKeys, 12))
	require.Len(t, r.Data, 12)
	r = s.In(pA, prinCDB(saReadKeys, 0))
	requireGood(t, r)
	assert.Empty(t, r.Data)
	r = s.In(pA, prinCDB(saReportCapabilities, 4))
	assert.Equal(t, []byte{0, 8, 0x1d, 0x90}, r.Data)
}

func TestReportCapabilities(t *testing.T) {
	s := New()
	r := s.In(pA, prinCDB(saReportCapabilities, 100))
	requireGood(t, r)
	require.Len(t, r.Data, 8)
	assert.EqualValues(t, 8, binary.BigEndian.Uint16(r.Data[0:2]))
	assert.Equal(t, byte(0x1d), r.Data[2], "CRH, SIP_C, ATP_C, PTPL_C")
	assert.Equal(t, byte(0x90), r.Data[3], "TMV, ALLOW COMMANDS 001b, PTPL_A off")
	// libiscsi's mask: WR_EX bit 9, EX_AC 11, WR_EX_RO 13, EX_AC_RO 14,
	// WR_EX_AR 15, EX_AC_AR 0.
	assert.Equal(t, uint16(1<<9|1<<11|1<<13|1<<14|1<<15|1), binary.BigEndian.Uint16(r.Data[4:6]))

	requireGood(t, s.Out(pA, proutCDB(saRegister, 0, 24), basicParams(0, 1, fAPTPL)))
	r = s.In(pA, prinCDB(saReportCapabilities, 100))
	assert.Equal(t, byte(0x91), r.Data[3], "PTPL_A")
	r = NewConfig(Config{NoPersistence: true}).In(pA, prinCDB(saReportCapabilities, 100))
	assert.Equal(t, byte(0x1c), r.Data[2], "no PTPL_C")
}

type fullStatus struct {
	key       uint64
	allTgPt   bool
	holder    bool
	scopeType byte
	rtpi      uint16
	tid       Selector
}

func parseFullStatus(t *testing.T, data []byte) (uint32, []fullStatus) {
	t.Helper()
	require.GreaterOrEqual(t, len(data), 8)
	require.EqualValues(t, len(data)-8, binary.BigEndian.Uint32(data[4:8]))
	var got []fullStatus
	for b := data[8:]; len(b) > 0; {
		require.GreaterOrEqual(t, len(b), 24)
		n := int(binary.BigEndian.Uint32(b[20:24]))
		require.GreaterOrEqual(t, len(b), 24+n)
		sel, used, ok := parseTransportID(b[24 : 24+n])
		require.True(t, ok)
		require.Equal(t, n, used)
		require.Zero(t, used%4)
		got = append(got, fullStatus{
			key:       binary.BigEndian.Uint64(b[0:8]),
			allTgPt:   b[12]&2 != 0,
			holder:    b[12]&1 != 0,
			scopeType: b[13],
			rtpi:      binary.BigEndian.Uint16(b[18:20]),
			tid:       sel,
		})
		b = b[24+n:]
	}
	return binary.BigEndian.Uint32(data[0:4]), got
}

func TestReadFullStatus(t *testing.T) {
	s := New()
	requireGood(t, out(s, pA, saRegister, 0, 0, 1))
	requireGood(t, s.Out(pB, proutCDB(saRegister, 0, 24), basicParams(0, 2, fAllTgPt)))
	requireGood(t, out(s, pA, saReserve, WriteExclusiveRegistrantsOnly, 1, 0))
	r := s.In(pC, prinCDB(saReadFullStatus, 4096))
	requireGood(t, r)
	gen, got := parseFullStatus(t, r.Data)
	assert.EqualValues(t, 2, gen)
	want := []fullStatus{
		{key: 1, holder: true, scopeType: 0x05, rtpi: 1, tid: Selector{Port: Port{Initiator: pA.Initiator, ISID: pA.ISID}}},
		{key: 2, allTgPt: true, rtpi: 1, tid: Selector{Port: Port{Initiator: pB.Initiator, ISID: pB.ISID}}},
	}
	assert.Equal(t, want, got)

	// All registrants: every registration is a holder.
	requireGood(t, out(s, pA, saRelease, WriteExclusiveRegistrantsOnly, 1, 0))
	requireGood(t, out(s, pB, saReserve, ExclusiveAccessAllRegistrants, 2, 0))
	_, got = parseFullStatus(t, s.In(pA, prinCDB(saReadFullStatus, 4096)).Data)
	for _, d := range got {
		assert.True(t, d.holder)
		assert.Equal(t, byte(0x08), d.scopeType)
	}
}

func TestTransportID(t *testing.T) {
	for _, sel := range []Selector{
		{Port: Port{Initiator: "iqn.a", ISID: [6]byte{0x80, 0x12, 0x34, 0x56, 0x78, 0x9a}}},
		{Port: Port{Initiator: "iqn.1994-05.com.example:a-rather-long-initiator-name"}, AnyISID: true},
		{Port: Port{Initiator: "x"}, AnyISID: true},
	} {
		b := appendTransportID(nil, sel)
		assert.Zero(t, len(b)%4)
		assert.GreaterOrEqual(t, len(b), 24)
		got, n, ok := parseTransportID(b)
		require.True(t, ok)
		assert.Equal(t, len(b), n)
		assert.Equal(t, sel, got)
	}
	b := append([]byte{0x45, 0, 0, 24}, "IQN.A,I,0X80123456789A\x00\x00"...)
	got, _, ok := parseTransportID(b)
	require.True(t, ok, "case-insensitive separator and hex")
	assert.Equal(t, "iqn.a", got.Initiator)
	assert.Equal(t, [6]byte{0x80, 0x12, 0x34, 0x56, 0x78, 0x9a}, got.ISID)
	for _, bad := range [][]byte{
		{0x45, 0, 0, 8, 'i', 'q', 'n', 0, 0, 0, 0, 0},           // no ISID
		append([]byte{0x45, 0, 0, 8}, "iqn.a,i,0x12\x00..."...), // short ISID
		append([]byte{0x05, 0, 0, 4}, "iqn."...),                // no NUL
		append([]byte{0x05, 0, 0, 4}, "\x00\x00\x00\x00"...),    // empty name
		append([]byte{0x85, 0, 0, 4}, "iqn\x00"...),             // format 10b
		append([]byte{0x01, 0, 0, 4}, "iqn\x00"...),             // SPI
		{0x05, 0, 0, 200, 'i', 0},                               // past the end
	} {
		_, _, ok := parseTransportID(bad)
		assert.False(t, ok, "%q", bad)
	}
}
