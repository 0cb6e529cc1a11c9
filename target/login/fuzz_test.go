package login

import (
	"bytes"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/tandem-ha/tandem/wire/pdu"
)

// fuzzRecord encodes one request of FuzzStep: BHS byte 1 (T, C, CSG,
// NSG), an options byte, a 16-bit data length and the data.
func fuzzRecord(flags, opts byte, kvs ...string) []byte {
	d := encode(kvs...)
	return append([]byte{flags, opts, byte(len(d) >> 8), byte(len(d))}, d...)
}

func stages(transit, cont bool, csg, nsg int) byte {
	var b pdu.BHS
	b.SetLoginStages(transit, cont, csg, nsg)
	return b.Flags()
}

// FuzzStep feeds sequences of arbitrary Login Requests into Step: it must
// never panic, and every response must be a well-formed Login Response.
func FuzzStep(f *testing.F) {
	f.Add(fuzzRecord(stages(true, false, op, ff), 0, join(names(iqnTarget), libiscsiOpKeys)...))
	f.Add(bytes.Join([][]byte{
		fuzzRecord(stages(true, false, sec, op), 0, append(names(iqnSecure), "AuthMethod=CHAP,None")...),
		fuzzRecord(stages(false, false, sec, op), 0, "CHAP_A=5"),
		fuzzRecord(stages(true, false, sec, op), 0, "CHAP_N=alice", "CHAP_R=0x00112233445566778899aabbccddeeff"),
	}, nil))
	f.Add(bytes.Join([][]byte{
		fuzzRecord(stages(false, true, op, 0), 0, "InitiatorName=iqn.x"),
		fuzzRecord(stages(true, false, op, ff), 0, "SessionType=Discovery", "X-a=b", "FirstBurstLength=512"),
	}, nil))
	f.Add(fuzzRecord(stages(true, false, op, ff), 1, "InitiatorName=a", "TargetName="+iqnMutual))
	f.Add(fuzzRecord(0xff, 0xff))
	f.Fuzz(func(t *testing.T, in []byte) {
		h := newHarness(t)
		h.cfg.SessionExists = func(string, [6]byte, uint16) bool { return true }
		var resp pdu.PDU
		for steps := 0; len(in) >= 4 && steps < 16; steps++ {
			flags, opts := in[0], in[1]
			n := min(int(in[2])<<8|int(in[3]), len(in)-4)
			data := in[4 : 4+n]
			in = in[4+n:]

			var req pdu.PDU
			req.BHS.SetOpcode(pdu.OpLoginReq)
			if opts&0x80 != 0 {
				req.BHS.SetOpcode(pdu.Opcode(opts & 0x3f))
			}
			req.BHS.SetFlags(flags)
			req.BHS.SetVersions(opts&0x0c, opts&0x03>>1)
			req.BHS.SetISID(testISID)
			if opts&0x10 != 0 {
				req.BHS.SetTSIH(uint16(opts))
			}
			req.BHS.SetITT(uint32(steps))
			req.BHS.SetCmdSN(uint32(opts) << 8)
			req.Data = data
			out := h.l.Step(&req, &resp)
			checkResponse(t, &req, &resp, out)
			kvMap(t, resp.Data)
			if out != Continue {
				if out == Done {
					p := h.l.Result().Params
					require.LessOrEqual(t, p.FirstBurstLength, p.MaxBurstLength)
					require.GreaterOrEqual(t, p.MaxRecvDataSegmentLength, uint32(512))
				}
				return
			}
		}
	})
}
