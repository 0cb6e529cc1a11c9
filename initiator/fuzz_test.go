package initiator

import (
	"encoding/binary"
	"net"
	"testing"

	"github.com/tandem-ha/tandem/wire/pdu"
)

func FuzzParseSendTargets(f *testing.F) {
	f.Add([]byte("TargetName=iqn.a\x00TargetAddress=127.0.0.1:3260,1\x00TargetAddress=[::1]:3260,1\x00"))
	f.Add([]byte("TargetAddress=1.2.3.4\x00"))
	f.Add([]byte("TargetName=x\x00TargetAddress=h,99999\x00"))
	f.Add([]byte("TargetName=x"))
	f.Fuzz(func(t *testing.T, b []byte) {
		ts, err := ParseSendTargets(b)
		if err != nil {
			return
		}
		for _, tg := range ts {
			if tg.Name == "" {
				t.Fatal("empty target name accepted")
			}
		}
	})
}

// FuzzDispatch feeds arbitrary target PDUs to a session's reader side
// with a read and a write in flight.
func FuzzDispatch(f *testing.F) {
	seed := func(op pdu.Opcode, flags byte, itt uint32, data string) []byte {
		var b pdu.BHS
		b.SetOpcode(op)
		b.SetFlags(flags)
		b.SetITT(itt)
		b.SetMaxCmdSN(10)
		return append(b[:], data...)
	}
	f.Add(seed(pdu.OpDataIn, pdu.FlagFinal|pdu.FlagStatus, 1<<16, "abcd"))
	f.Add(seed(pdu.OpSCSIResp, pdu.FlagFinal, 1<<16|1, "\x00\x12\x70\x00\x05"))
	f.Add(seed(pdu.OpR2T, pdu.FlagFinal, 1<<16|1, ""))
	f.Add(seed(pdu.OpReject, 0, pdu.ReservedTag, string(seed(pdu.OpSCSICmd, 0, 1<<16, ""))))
	f.Add(seed(pdu.OpNOPIn, pdu.FlagFinal, pdu.ReservedTag, "ping"))
	f.Add(seed(pdu.OpAsyncMsg, 0, pdu.ReservedTag, ""))
	f.Fuzz(func(t *testing.T, in []byte) {
		if len(in) < pdu.BHSLen {
			return
		}
		a, b := net.Pipe()
		defer a.Close()
		defer b.Close()
		s := &Session{
			conn: a, w: pdu.NewWriter(a), log: discard(nil), ctrl: map[uint32]chan ctrlResp{},
			pings: make(chan ping, 1), dead: make(chan struct{}), bgDone: make(chan struct{}),
			windowCh: make(chan struct{}), readerDone: make(chan struct{}),
		}
		s.params.MaxBurstLength = 65536
		s.free = make(chan *task, 2)
		for i := range 2 {
			t := &task{slot: uint16(i), r2t: make(chan r2t, 2), done: make(chan struct{}, 1)}
			t.gen = 1
			t.itt = 1<<16 | uint32(i)
			t.state = stateActive
			t.edtl = 4096
			s.slots = append(s.slots, t)
		}
		s.slots[0].read, s.slots[0].buf = true, make([]byte, 4096)
		s.slots[1].write = true
		var p pdu.PDU
		copy(p.BHS[:], in)
		p.Data = in[pdu.BHSLen:]
		_ = s.dispatch(&p)
		s.fail(nil)
		s.failAll()
	})
}

func FuzzDecodePR(f *testing.F) {
	isid := [6]byte{0x80, 1, 2, 3, 4, 5}
	tid := ISCSITransportID("iqn.2025-01.io.tandem:a", &isid)
	desc := binary.BigEndian.AppendUint64(nil, 7)
	desc = append(desc, 0, 0, 0, 0, 1, 5, 0, 0, 0, 0, 0, 1)
	desc = binary.BigEndian.AppendUint32(desc, uint32(len(tid)))
	desc = append(desc, tid...)
	f.Add(prInDataFuzz(1, desc))
	f.Add(prInDataFuzz(2, []byte{0, 0, 0, 0, 0, 0, 0, 9}))
	f.Add([]byte{0, 8, 0x1d, 0x91, 0xea, 0x01, 0, 0})
	f.Add(tid)
	f.Add([]byte{0, 0, 0, 1, 0xff, 0xff, 0xff, 0xf0, 1})
	f.Fuzz(func(t *testing.T, d []byte) {
		_, _ = DecodePRKeys(d)
		_, _ = DecodePRReservation(d)
		_, _ = DecodePRCapabilities(d)
		if fs, err := DecodePRFullStatus(d); err == nil {
			for _, r := range fs.Registrants {
				if r.HasISID {
					again := ISCSITransportID(r.Initiator, &r.ISID)
					name, id, has, err := ParseISCSITransportID(again)
					if err != nil || !has || id != r.ISID || name != r.Initiator {
						t.Fatalf("transport id round trip: %q %x -> %q %x %v %v", r.Initiator, r.ISID, name, id, has, err)
					}
				}
			}
		}
		_, _, _, _ = ParseISCSITransportID(d)
	})
}

func prInDataFuzz(gen uint32, body []byte) []byte {
	d := binary.BigEndian.AppendUint32(nil, gen)
	d = binary.BigEndian.AppendUint32(d, uint32(len(body)))
	return append(d, body...)
}
