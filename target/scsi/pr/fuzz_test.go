package pr

import (
	"bytes"
	"testing"
)

// fuzzState is a state with registrations and a reservation to fuzz
// against.
func fuzzState(t testing.TB) *State {
	s := New()
	s.Out(pA, proutCDB(saRegister, 0, 24), basicParams(0, 1, 0))
	s.Out(pB, proutCDB(saRegister, 0, 24), basicParams(0, 2, fAllTgPt))
	s.Out(pA, proutCDB(saReserve, WriteExclusiveRegistrantsOnly, 24), basicParams(1, 0, 0))
	if len(s.Registrations()) != 2 {
		t.Fatal("fuzz state setup failed")
	}
	return s
}

func FuzzOut(f *testing.F) {
	f.Add(proutCDB(saRegister, 0, 24), basicParams(0, 5, 0))
	f.Add(proutCDB(saPreemptAbort, ExclusiveAccess, 24), basicParams(2, 1, 0))
	f.Add(proutCDB(saClear, 0, 24), basicParams(1, 0, 0))
	p := specIPTParams(0, 5, 0, tid(pC.Initiator, &pC.ISID), tid("iqn.x", nil))
	f.Add(proutCDB(saRegister, 0, len(p)), p)
	p = moveParams(1, 9, true, 3, tid(pC.Initiator, &pC.ISID))
	f.Add(proutCDB(saRegisterMove, WriteExclusive, len(p)), p)
	// Past crashers: none yet. A TransportID length far past the list.
	f.Add(proutCDB(saRegisterMove, WriteExclusive, 24), append(basicParams(1, 9, 0)[:20], 0xff, 0xff, 0xff, 0xff))
	f.Fuzz(func(t *testing.T, cdb, param []byte) {
		s := fuzzState(t)
		if len(cdb) > 0 {
			cdb[0] = opPROut
		}
		r := s.Out(pA, cdb, param)
		if err := s.validate(); err != nil {
			t.Fatalf("invariant broken after %+v: %v", r, err)
		}
		b, _ := s.MarshalBinary()
		if err := New().UnmarshalBinary(b); err != nil {
			t.Fatal(err)
		}
	})
}

func FuzzIn(f *testing.F) {
	f.Add(prinCDB(saReadFullStatus, 4096))
	f.Add(prinCDB(saReadKeys, 3))
	f.Add([]byte{0x5e})
	f.Fuzz(func(t *testing.T, cdb []byte) {
		s := fuzzState(t)
		if len(cdb) > 0 {
			cdb[0] = opPRIn
		}
		r := s.In(pC, cdb)
		if len(cdb) >= 9 && len(r.Data) > int(cdb[7])<<8|int(cdb[8]) {
			t.Fatalf("data %d bytes beyond the allocation length", len(r.Data))
		}
	})
}

func FuzzCheck(f *testing.F) {
	f.Add(write16)
	f.Add([]byte{0x7f, 0, 0, 0, 0, 0, 0, 0x18, 0x00})
	f.Add([]byte{0x9e})
	f.Fuzz(func(t *testing.T, cdb []byte) {
		s := fuzzState(t)
		if s.Check(pA, cdb) {
			t.Fatal("the holder conflicted")
		}
		s.Check(pC, cdb)
	})
}

func FuzzUnmarshal(f *testing.F) {
	b, _ := New().MarshalBinary()
	f.Add(b)
	b, _ = fuzzState(f).MarshalBinary()
	f.Add(b)
	f.Add([]byte("TPRS\x00\x01\x00\x00\xff\xff\xff\xff"))
	f.Fuzz(func(t *testing.T, data []byte) {
		s := New()
		if err := s.UnmarshalBinary(data); err != nil {
			return
		}
		again, _ := s.MarshalBinary()
		if !bytes.Equal(again, data) {
			t.Fatalf("round trip differs:\n%x\n%x", data, again)
		}
	})
}

func FuzzTransportID(f *testing.F) {
	f.Add(tid("iqn.a", &[6]byte{1, 2, 3, 4, 5, 6}))
	f.Add(tid("iqn.b", nil))
	f.Fuzz(func(t *testing.T, b []byte) {
		sel, n, ok := parseTransportID(b)
		if !ok {
			return
		}
		if n > len(b) {
			t.Fatalf("length %d beyond %d", n, len(b))
		}
		back, _, ok := parseTransportID(appendTransportID(nil, sel))
		if !ok || back != sel {
			t.Fatalf("re-encoding %+v gave %+v", sel, back)
		}
	})
}
