package pr

import (
	"encoding/binary"
	"testing"

	"github.com/stretchr/testify/require"
)

// Three nexuses: A and B are different initiators on target port 1, A2 is
// A's initiator port through target port 2.
var (
	pA  = Port{Initiator: "iqn.2024-01.test:a", ISID: [6]byte{0x80, 0, 0, 0, 0, 1}, TargetPort: "iqn.t,t,0x1", RelTgtPort: 1}
	pB  = Port{Initiator: "iqn.2024-01.test:b", ISID: [6]byte{0x80, 0, 0, 0, 0, 2}, TargetPort: "iqn.t,t,0x1", RelTgtPort: 1}
	pC  = Port{Initiator: "iqn.2024-01.test:c", ISID: [6]byte{0x80, 0, 0, 0, 0, 3}, TargetPort: "iqn.t,t,0x1", RelTgtPort: 1}
	pA2 = Port{Initiator: "iqn.2024-01.test:a", ISID: [6]byte{0x80, 0, 0, 0, 0, 1}, TargetPort: "iqn.t,t,0x2", RelTgtPort: 2}
)

var allTypes = []Type{WriteExclusive, ExclusiveAccess, WriteExclusiveRegistrantsOnly,
	ExclusiveAccessRegistrantsOnly, WriteExclusiveAllRegistrants, ExclusiveAccessAllRegistrants}

func proutCDB(sa byte, typ Type, plen int) []byte {
	cdb := make([]byte, 10)
	cdb[0] = 0x5f
	cdb[1] = sa
	cdb[2] = byte(typ)
	binary.BigEndian.PutUint32(cdb[5:9], uint32(plen))
	return cdb
}

const (
	fSpecIPT = 0x08
	fAllTgPt = 0x04
	fAPTPL   = 0x01
)

func basicParams(key, sark uint64, flags byte) []byte {
	b := make([]byte, 24)
	binary.BigEndian.PutUint64(b[0:], key)
	binary.BigEndian.PutUint64(b[8:], sark)
	b[20] = flags
	return b
}

func out(s *State, p Port, sa byte, typ Type, key, sark uint64) Result {
	return s.Out(p, proutCDB(sa, typ, 24), basicParams(key, sark, 0))
}

func prinCDB(sa byte, alloc int) []byte {
	cdb := make([]byte, 10)
	cdb[0] = 0x5e
	cdb[1] = sa
	binary.BigEndian.PutUint16(cdb[7:9], uint16(alloc))
	return cdb
}

func readKeys(t *testing.T, s *State, p Port) (uint32, []uint64) {
	t.Helper()
	r := s.In(p, prinCDB(saReadKeys, 16384))
	require.Equal(t, byte(StatusGood), r.Status)
	require.GreaterOrEqual(t, len(r.Data), 8)
	n := binary.BigEndian.Uint32(r.Data[4:8])
	require.Equal(t, int(n), len(r.Data)-8)
	var keys []uint64
	for b := r.Data[8:]; len(b) >= 8; b = b[8:] {
		keys = append(keys, binary.BigEndian.Uint64(b))
	}
	return binary.BigEndian.Uint32(r.Data[0:4]), keys
}

// readRes returns the READ RESERVATION key and type, ok false if none.
func readRes(t *testing.T, s *State, p Port) (uint64, Type, bool) {
	t.Helper()
	r := s.In(p, prinCDB(saReadReservation, 16384))
	require.Equal(t, byte(StatusGood), r.Status)
	n := binary.BigEndian.Uint32(r.Data[4:8])
	if n == 0 {
		require.Len(t, r.Data, 8)
		return 0, 0, false
	}
	require.EqualValues(t, 16, n)
	require.Len(t, r.Data, 24)
	return binary.BigEndian.Uint64(r.Data[8:16]), Type(r.Data[21] & 0xf), true
}

var (
	read16  = []byte{0x88, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0, 1, 0, 0}
	write16 = []byte{0x8a, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0, 1, 0, 0}
)

func requireGood(t *testing.T, r Result) {
	t.Helper()
	require.Equal(t, byte(StatusGood), r.Status, "sense %v", r.Sense)
}

func requireConflict(t *testing.T, r Result, msg ...any) {
	t.Helper()
	require.Equal(t, byte(StatusReservationConflict), r.Status, append([]any{"sense %v", r.Sense}, msg...)...)
}

func requireSense(t *testing.T, r Result, want Reason) {
	t.Helper()
	require.Equal(t, byte(StatusCheckCondition), r.Status)
	require.Equal(t, want, r.Sense)
}

// uasFor returns the (ASC, ASCQ) unit attentions a result queues for p.
func uasFor(r Result, p Port) [][2]byte {
	var got [][2]byte
	for _, u := range r.UAs {
		if u.AppliesTo(p) {
			got = append(got, [2]byte{u.ASC, u.ASCQ})
		}
	}
	return got
}

var (
	uaResPreempted = [2]byte{0x2a, 0x03}
	uaResReleased  = [2]byte{0x2a, 0x04}
	uaRegPreempted = [2]byte{0x2a, 0x05}
)
