package negotiate

import (
	"testing"

	"github.com/tandem-ha/tandem/wire/pdu"
	"github.com/tandem-ha/tandem/wire/text"
)

// loginResp builds a Login Response BHS for the negotiator seeds.
func loginResp(csg, nsg int, transit bool, data string) []byte {
	var p pdu.PDU
	p.BHS.SetOpcode(pdu.OpLoginResp)
	p.BHS.SetLoginStages(transit, false, csg, nsg)
	return append(p.BHS[:], data...)
}

// FuzzNegotiatorStep feeds arbitrary Login Responses to the login state
// machine in every authentication mode: it must return errors, not panic.
func FuzzNegotiatorStep(f *testing.F) {
	f.Add(loginResp(0, 1, true, "AuthMethod=None\x00"), loginResp(1, 3, true, "MaxRecvDataSegmentLength=8192\x00HeaderDigest=None\x00"), uint8(0))
	f.Add(loginResp(0, 0, false, "AuthMethod=CHAP\x00"), loginResp(0, 0, false, "CHAP_A=5\x00CHAP_I=1\x00CHAP_C=0x0102\x00"), uint8(2))
	f.Add(loginResp(1, 3, true, "MaxBurstLength=0\x00"), loginResp(1, 3, true, "FirstBurstLength=0x10\x00"), uint8(1))
	f.Add(loginResp(1, 3, false, "X=1\x00ImmediateData=Maybe\x00"), loginResp(1, 3, true, "DataDigest=CRC32C\x00"), uint8(0))
	f.Fuzz(func(t *testing.T, a, b []byte, mode uint8) {
		spec := Spec{InitiatorName: "iqn.x", TargetName: "iqn.y", Values: map[string]string{"MaxRecvDataSegmentLength": "8192", "MaxBurstLength": "65536", "FirstBurstLength": "8192"}}
		switch mode % 3 {
		case 1:
			spec.CHAP = &CHAP{User: "u", Secret: []byte("s")}
		case 2:
			spec.CHAP = &CHAP{User: "u", Secret: []byte("s"), MutualSecret: []byte("m")}
		}
		n, err := New(spec)
		if err != nil {
			t.Fatal(err)
		}
		var req pdu.PDU
		n.Start(&req)
		if n.stage == pdu.StageSecurity && spec.CHAP == nil {
			// Also start from the operational stage sometimes.
			n.stage = int(mode>>2) & 1
		}
		for _, in := range [][]byte{a, b} {
			var resp pdu.PDU
			if len(in) < pdu.BHSLen {
				return
			}
			copy(resp.BHS[:], in)
			resp.Data = in[pdu.BHSLen:]
			done, err := n.Step(&resp, &req)
			if err != nil || done {
				if done && n.Result().Params.MaxRecvDataSegmentLength != 8192 {
					t.Fatal("params not filled")
				}
				return
			}
			if _, _, err := text.Parse(req.Data, false); err != nil {
				t.Fatalf("negotiator built bad text: %v", err)
			}
		}
	})
}
