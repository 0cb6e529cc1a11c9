package pr

import (
	"encoding/binary"
	"errors"
	"hash/crc32"
	"io"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// view is everything observable about a State, for comparisons.
type view struct {
	Gen     uint32
	Regs    []Registration
	Res     Reservation
	HasRes  bool
	APTPL   bool
	SPC2    Port
	HasSPC2 bool
}

func viewOf(s *State) view {
	v := view{Gen: s.Generation(), Regs: s.Registrations(), APTPL: s.APTPL()}
	v.Res, v.HasRes = s.Reservation()
	v.SPC2, v.HasSPC2 = s.SPC2Holder()
	return v
}

func sampleState(t *testing.T) *State {
	s := New()
	requireGood(t, s.Out(pA, proutCDB(saRegister, 0, 24), basicParams(0, 1, fAPTPL)))
	requireGood(t, s.Out(pB, proutCDB(saRegister, 0, 24), basicParams(0, 2, fAllTgPt|fAPTPL)))
	param := specIPTParams(0, 3, fAPTPL, tid(pC.Initiator, nil))
	requireGood(t, s.Out(pA2, proutCDB(saRegister, 0, len(param)), param))
	requireGood(t, out(s, pA, saReserve, ExclusiveAccessRegistrantsOnly, 1, 0))
	return s
}

func TestMarshalRoundTrip(t *testing.T) {
	for _, s := range []*State{New(), sampleState(t)} {
		b, err := s.MarshalBinary()
		require.NoError(t, err)
		got := New()
		require.NoError(t, got.UnmarshalBinary(b))
		assert.Equal(t, viewOf(s), viewOf(got))
		b2, _ := got.MarshalBinary()
		assert.Equal(t, b, b2)
	}
	// The SPC-2 reservation is carried too (replication), PowerOn drops it.
	s := New()
	requireGood(t, s.Reserve6(pA, reserve6))
	b, _ := s.MarshalBinary()
	got := New()
	require.NoError(t, got.UnmarshalBinary(b))
	assert.Equal(t, viewOf(s), viewOf(got))
	got.PowerOn()
	_, held := got.SPC2Holder()
	assert.False(t, held)
}

func TestUnmarshalRefusesDamage(t *testing.T) {
	s := sampleState(t)
	good, _ := s.MarshalBinary()
	target := New()
	requireGood(t, out(target, pC, saRegister, 0, 0, 77))
	before := viewOf(target)

	for n := 0; n < len(good); n++ {
		err := target.UnmarshalBinary(good[:n])
		require.ErrorIs(t, err, ErrCorrupt, "truncated to %d", n)
		require.ErrorIs(t, err, io.ErrUnexpectedEOF, "truncated to %d", n)
	}
	for i := range good {
		bad := append([]byte(nil), good...)
		bad[i] ^= 0x40
		require.ErrorIs(t, target.UnmarshalBinary(bad), ErrCorrupt, "bit flip at %d", i)
	}
	require.ErrorIs(t, target.UnmarshalBinary(append(append([]byte(nil), good...), 0)), ErrCorrupt)
	assert.Equal(t, before, viewOf(target), "a refused state leaves the old one")
	err := target.UnmarshalBinary(good[:len(good)-1])
	assert.Contains(t, err.Error(), "restore the file")
}

// reseal fixes the length and checksum of a hand-edited state.
func reseal(b []byte) []byte {
	b = b[:len(b)-4]
	binary.BigEndian.PutUint32(b[8:12], uint32(len(b)-headerLen))
	return binary.BigEndian.AppendUint32(b, crcOf(b))
}

func TestUnmarshalRefusesInconsistent(t *testing.T) {
	s := New()
	requireGood(t, out(s, pA, saRegister, 0, 0, 1))
	requireGood(t, out(s, pA, saReserve, WriteExclusive, 1, 0))
	b, _ := s.MarshalBinary()
	// The reservation type byte sits after generation and flags.
	bad := append([]byte(nil), b...)
	bad[headerLen+5] = 0x02
	require.ErrorIs(t, New().UnmarshalBinary(reseal(bad)), ErrCorrupt)
	// Holder no longer registered: the key's registration becomes B's.
	s2 := New()
	requireGood(t, out(s2, pA, saRegister, 0, 0, 1))
	requireGood(t, out(s2, pA, saReserve, WriteExclusive, 1, 0))
	s2.regs[0].Port = pB
	b, _ = s2.MarshalBinary()
	err := New().UnmarshalBinary(b)
	require.ErrorIs(t, err, ErrCorrupt)
	assert.Contains(t, err.Error(), "holder")
	// Version from the future.
	bad = append([]byte(nil), b...)
	bad[5] = 9
	require.ErrorIs(t, New().UnmarshalBinary(reseal(bad)), ErrCorrupt)
	assert.False(t, errors.Is(New().UnmarshalBinary(reseal(bad)), io.ErrUnexpectedEOF))
}

func TestPowerOn(t *testing.T) {
	s := sampleState(t)
	b, _ := s.MarshalBinary()
	got := New()
	require.NoError(t, got.UnmarshalBinary(b))
	got.PowerOn()
	assert.Zero(t, got.Generation())
	assert.Len(t, got.Registrations(), 4, "APTPL keeps registrations")
	_, ok := got.Reservation()
	assert.True(t, ok)

	s = New()
	requireGood(t, out(s, pA, saRegister, 0, 0, 1))
	requireGood(t, out(s, pA, saReserve, WriteExclusive, 1, 0))
	s.PowerOn()
	assert.Empty(t, s.Registrations(), "without APTPL power loss drops everything")
	_, ok = s.Reservation()
	assert.False(t, ok)
}

func crcOf(b []byte) uint32 { return crc32.Checksum(b, castagnoli) }
