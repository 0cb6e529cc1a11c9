package negotiate_test

import (
	"math/rand/v2"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/tandem-ha/tandem/initiator/negotiate"
	"github.com/tandem-ha/tandem/target/login"
	"github.com/tandem-ha/tandem/wire/chap"
	"github.com/tandem-ha/tandem/wire/pdu"
	"github.com/tandem-ha/tandem/wire/text"
)

// These tests run the initiator's negotiator against target/login in
// memory: both ends of a login with no socket in between, over every key
// of RFC 7143 section 13, with the initiator proposing first and with the
// target proposing a key the initiator did not.

const (
	targetIQN    = "iqn.2026-11.io.tandem:disk"
	initiatorIQN = "iqn.2026-11.io.tandem:node-a"
	targetAlias  = "shared disk"
	portalGroup  = 7
)

var (
	initiatorCreds = login.Credentials{User: "node-a", Secret: []byte("initiator-secret")}
	targetCreds    = login.Credentials{User: "disk", Secret: []byte("target-secret-x")}
)

// run is one login. tamperReq and tamperResp, when set, edit a PDU in
// flight (a middlebox), so a test can put a key on the wire that neither
// implementation would send itself.
type run struct {
	spec       negotiate.Spec
	cfg        login.Config
	tamperReq  func(step int, req *pdu.PDU)
	tamperResp func(step int, resp *pdu.PDU)
}

type outcome struct {
	ini    negotiate.Result
	iniErr error
	tgt    login.Result
	tgtOut login.Outcome
	// sent is every key=value the initiator put on the wire, by stage;
	// recv what the target did.
	sent, recv [2]map[string]string
}

func (r run) do(t *testing.T) outcome {
	t.Helper()
	if r.spec.InitiatorName == "" {
		r.spec.InitiatorName = initiatorIQN
	}
	if r.spec.Type == negotiate.Normal && r.spec.TargetName == "" {
		r.spec.TargetName = targetIQN
	}
	if r.spec.Rand == nil {
		r.spec.Rand = rand.NewChaCha8([32]byte{1})
	}
	cfg := r.cfg
	cfg.PortalGroupTag = portalGroup
	if cfg.LookupTarget == nil {
		cfg.LookupTarget = func(name string) (login.TargetInfo, bool) {
			return login.TargetInfo{Name: targetIQN, Alias: targetAlias}, name == targetIQN
		}
	}
	cfg.Rand = rand.NewChaCha8([32]byte{2})
	n, err := negotiate.New(r.spec)
	require.NoError(t, err)
	tgt := login.New(&cfg, "memory")
	var o outcome
	o.sent = [2]map[string]string{{}, {}}
	o.recv = [2]map[string]string{{}, {}}
	var req, resp pdu.PDU
	n.Start(&req)
	for step := 0; step < 40; step++ {
		if r.tamperReq != nil {
			r.tamperReq(step, &req)
		}
		kvs, _, err := text.Parse(req.Data, false)
		require.NoError(t, err, "initiator built bad text")
		for _, kv := range kvs {
			if st := req.BHS.CSG(); st < 2 {
				o.sent[st][kv.Key] = kv.Value
			}
		}
		req.BHS.SetDataSegmentLength(len(req.Data))
		o.tgtOut = tgt.Step(&req, &resp)
		if r.tamperResp != nil {
			r.tamperResp(step, &resp)
		}
		if kvs, _, err := text.Parse(resp.Data, false); err == nil && resp.BHS.CSG() < 2 {
			for _, kv := range kvs {
				o.recv[resp.BHS.CSG()][kv.Key] = kv.Value
			}
		}
		done, err := n.Step(&resp, &req)
		if err != nil {
			o.iniErr = err
			return o
		}
		if done {
			require.Equal(t, login.Done, o.tgtOut, "the initiator finished, the target did not")
			o.ini, o.tgt = n.Result(), tgt.Result()
			return o
		}
		require.NotEqual(t, login.Failed, o.tgtOut, "the target failed without a status")
		require.NotEqual(t, login.Done, o.tgtOut, "the target finished, the initiator did not")
	}
	t.Fatal("login did not end")
	return o
}

// agree checks that both ends hold the same operational values.
func agree(t *testing.T, o outcome) {
	t.Helper()
	require.NoError(t, o.iniErr)
	assert.Equal(t, o.tgt.Params, targetView(o.ini.Params), "initiator and target disagree")
	assert.Equal(t, o.tgt.TSIH, o.ini.TSIH)
}

// targetView is the initiator's Params in target/login's shape.
func targetView(i negotiate.Params) login.Params {
	return login.Params{
		HeaderDigest: i.HeaderDigest, DataDigest: i.DataDigest,
		MaxRecvDataSegmentLength:       i.MaxRecvDataSegmentLength,
		TargetMaxRecvDataSegmentLength: i.TargetMaxRecvDataSegmentLength,
		MaxBurstLength:                 i.MaxBurstLength, FirstBurstLength: i.FirstBurstLength,
		MaxOutstandingR2T: i.MaxOutstandingR2T,
		InitialR2T:        i.InitialR2T, ImmediateData: i.ImmediateData,
		DataPDUInOrder: i.DataPDUInOrder, DataSequenceInOrder: i.DataSequenceInOrder,
		DefaultTime2Wait: i.DefaultTime2Wait, DefaultTime2Retain: i.DefaultTime2Retain,
		ErrorRecoveryLevel: i.ErrorRecoveryLevel, MaxConnections: i.MaxConnections,
	}
}

// TestAgreeCatchesDisagreement is the negative control of agree: a
// middlebox lowers the target's MaxBurstLength answer to a value the
// initiator must accept (min can lower an offer) but the target never
// chose, and the comparison must see the two ends differ.
func TestAgreeCatchesDisagreement(t *testing.T) {
	o := run{
		spec: negotiate.Spec{Values: map[string]string{"MaxBurstLength": "65536"}},
		tamperResp: func(_ int, p *pdu.PDU) {
			kvs, _, _ := text.Parse(p.Data, false)
			p.Data = p.Data[:0]
			for _, kv := range kvs {
				if kv.Key == "MaxBurstLength" {
					kv.Value = "4096"
				}
				p.Data = text.Append(p.Data, kv)
			}
		},
	}.do(t)
	require.NoError(t, o.iniErr)
	assert.Equal(t, uint32(4096), o.ini.Params.MaxBurstLength)
	assert.Equal(t, uint32(65536), o.tgt.Params.MaxBurstLength)
	assert.NotEqual(t, o.tgt.Params, targetView(o.ini.Params))
}

// paramOf reads one key's outcome from the target's Params in text form,
// so table rows can name keys: Params' fields carry the keys' names.
func paramOf(p login.Params, key string) string {
	f := reflect.ValueOf(p).FieldByName(key)
	switch {
	case !f.IsValid():
		return "?"
	case f.Kind() == reflect.Bool && strings.HasSuffix(key, "Digest"):
		if f.Bool() {
			return "CRC32C"
		}
		return text.None
	case f.Kind() == reflect.Bool:
		return text.FormatBool(f.Bool())
	}
	return strconv.FormatUint(f.Uint(), 10)
}

func without(keys []string, key string) []string {
	return slices.DeleteFunc(slices.Clone(keys), func(k string) bool { return k == key })
}

// injectProposal makes the target propose kv in its first operational
// response, as a target that wants an answer does: the initiator's first
// operational request reaches target/login with T=0 so that it does not
// finish yet, and the initiator's answer, which target/login never asked
// for, is taken out of the next request and lands in *got.
func injectProposal(kv text.KV, got *string) (func(int, *pdu.PDU), func(int, *pdu.PDU)) {
	held, injected, answered := false, false, false
	req := func(_ int, p *pdu.PDU) {
		switch {
		case !held && p.BHS.CSG() == pdu.StageOperational:
			held = true
			p.BHS.SetLoginStages(false, false, pdu.StageOperational, 0)
		case injected && !answered:
			answered = true
			kvs, _, _ := text.Parse(p.Data, false)
			p.Data = p.Data[:0]
			for _, x := range kvs {
				if x.Key == kv.Key {
					*got = x.Value
					continue
				}
				p.Data = text.Append(p.Data, x)
			}
		}
	}
	resp := func(_ int, p *pdu.PDU) {
		if held && !injected {
			injected = true
			p.Data = text.Append(p.Data, kv)
		}
	}
	return req, resp
}

// TestNegotiatedKeys settles every negotiated key of RFC 7143 section 13
// both ways: the initiator proposes and target/login answers, and the
// target proposes and the initiator answers. Both orders must give the
// RFC's result, and both ends must hold it.
func TestNegotiatedKeys(t *testing.T) {
	yes, no := true, false
	tests := []struct {
		desc, key string
		ini       string // the initiator's value
		lim       login.Limits
		// want is the outcome when the initiator proposes; wantRev when
		// the target proposes (lists: the proposer's order wins).
		want, wantRev string
		// targetProposes: target/login proposes the key itself when the
		// initiator leaves it out; otherwise the proposal is injected.
		targetProposes bool
		// targetValue is what an injected proposal carries.
		targetValue string
	}{
		{desc: "header digest both", key: "HeaderDigest", ini: "CRC32C,None", lim: login.Limits{AllowDigests: true}, want: "CRC32C", wantRev: "CRC32C", targetValue: "CRC32C,None"},
		{desc: "header digest target off", key: "HeaderDigest", ini: "CRC32C,None", want: "None", wantRev: "None", targetValue: "None"},
		{desc: "header digest initiator prefers none", key: "HeaderDigest", ini: "None,CRC32C", lim: login.Limits{AllowDigests: true}, want: "None", wantRev: "CRC32C", targetValue: "CRC32C,None"},
		{desc: "data digest initiator off", key: "DataDigest", ini: "None", lim: login.Limits{AllowDigests: true}, want: "None", wantRev: "None", targetValue: "CRC32C,None"},
		{desc: "data digest both", key: "DataDigest", ini: "CRC32C", lim: login.Limits{AllowDigests: true}, want: "CRC32C", wantRev: "CRC32C", targetValue: "CRC32C"},
		{desc: "max connections min", key: "MaxConnections", ini: "4", want: "1", wantRev: "1", targetValue: "1"},
		{desc: "max connections min initiator", key: "MaxConnections", ini: "1", want: "1", wantRev: "1", targetValue: "8"},
		{desc: "initial r2t or yes", key: "InitialR2T", ini: "No", lim: login.Limits{InitialR2T: &yes}, want: "Yes", wantRev: "Yes", targetValue: "Yes"},
		{desc: "initial r2t or no", key: "InitialR2T", ini: "No", lim: login.Limits{InitialR2T: &no}, want: "No", wantRev: "No", targetProposes: true},
		{desc: "initial r2t initiator yes", key: "InitialR2T", ini: "Yes", lim: login.Limits{InitialR2T: &no}, want: "Yes", wantRev: "Yes", targetProposes: true},
		{desc: "immediate data and no", key: "ImmediateData", ini: "Yes", lim: login.Limits{ImmediateData: &no}, want: "No", wantRev: "No", targetProposes: true},
		{desc: "immediate data initiator no", key: "ImmediateData", ini: "No", lim: login.Limits{ImmediateData: &yes}, want: "No", wantRev: "No", targetValue: "Yes"},
		{desc: "immediate data and yes", key: "ImmediateData", ini: "Yes", want: "Yes", wantRev: "Yes", targetValue: "Yes"},
		{desc: "max burst min initiator", key: "MaxBurstLength", ini: "65536", lim: login.Limits{MaxBurstLength: 1 << 20}, want: "65536", wantRev: "65536", targetProposes: true},
		{desc: "max burst min target", key: "MaxBurstLength", ini: "16776192", lim: login.Limits{MaxBurstLength: 131072}, want: "131072", wantRev: "131072", targetProposes: true},
		{desc: "first burst min", key: "FirstBurstLength", ini: "8192", lim: login.Limits{FirstBurstLength: 131072}, want: "8192", wantRev: "8192", targetProposes: true},
		{desc: "first burst min target", key: "FirstBurstLength", ini: "262144", lim: login.Limits{FirstBurstLength: 16384}, want: "16384", wantRev: "16384", targetProposes: true},
		{desc: "time2wait max", key: "DefaultTime2Wait", ini: "1", lim: login.Limits{DefaultTime2Wait: 5}, want: "5", wantRev: "5", targetProposes: true},
		{desc: "time2wait max initiator", key: "DefaultTime2Wait", ini: "9", lim: login.Limits{DefaultTime2Wait: 5}, want: "9", wantRev: "9", targetProposes: true},
		{desc: "time2retain min", key: "DefaultTime2Retain", ini: "0", lim: login.Limits{DefaultTime2Retain: 30}, want: "0", wantRev: "0", targetProposes: true},
		{desc: "time2retain min target", key: "DefaultTime2Retain", ini: "60", lim: login.Limits{DefaultTime2Retain: 30}, want: "30", wantRev: "30", targetProposes: true},
		{desc: "outstanding r2t min", key: "MaxOutstandingR2T", ini: "1", lim: login.Limits{MaxOutstandingR2T: 8}, want: "1", wantRev: "1", targetProposes: true},
		{desc: "outstanding r2t min target", key: "MaxOutstandingR2T", ini: "16", lim: login.Limits{MaxOutstandingR2T: 4}, want: "4", wantRev: "4", targetProposes: true},
		{desc: "pdu in order or", key: "DataPDUInOrder", ini: "Yes", want: "Yes", wantRev: "Yes", targetValue: "No"},
		{desc: "sequence in order or", key: "DataSequenceInOrder", ini: "Yes", want: "Yes", wantRev: "Yes", targetValue: "No"},
		{desc: "error recovery level min", key: "ErrorRecoveryLevel", ini: "0", want: "0", wantRev: "0", targetValue: "2"},
	}
	for _, tc := range tests {
		t.Run(tc.desc+"/initiator proposes", func(t *testing.T) {
			o := run{
				spec: negotiate.Spec{Values: map[string]string{tc.key: tc.ini}},
				cfg:  login.Config{Limits: tc.lim},
			}.do(t)
			agree(t, o)
			assert.Equal(t, tc.ini, o.sent[pdu.StageOperational][tc.key], "the initiator offered its value")
			assert.Equal(t, tc.want, paramOf(o.tgt.Params, tc.key))
			assert.Equal(t, tc.want, o.ini.Keys[tc.key])
		})
		t.Run(tc.desc+"/target proposes", func(t *testing.T) {
			r := run{
				spec: negotiate.Spec{Values: map[string]string{tc.key: tc.ini}, Offer: without(negotiate.DefaultOffer(negotiate.Normal), tc.key)},
				cfg:  login.Config{Limits: tc.lim},
			}
			if tc.targetProposes {
				o := r.do(t)
				agree(t, o)
				assert.Contains(t, o.recv[pdu.StageOperational], tc.key, "target/login proposed it")
				if text.LookupKey(tc.key).AnswerRequired(o.recv[pdu.StageOperational][tc.key]) {
					assert.Equal(t, tc.wantRev, o.sent[pdu.StageOperational][tc.key], "the initiator's answer")
				} else {
					assert.NotContains(t, o.sent[pdu.StageOperational], tc.key, "an offer that settles itself gets no answer")
				}
				assert.Equal(t, tc.wantRev, paramOf(o.tgt.Params, tc.key))
				return
			}
			var answer string
			r.tamperReq, r.tamperResp = injectProposal(text.KV{Key: tc.key, Value: tc.targetValue}, &answer)
			o := r.do(t)
			require.NoError(t, o.iniErr)
			assert.Equal(t, tc.wantRev, o.ini.Keys[tc.key])
			d := text.LookupKey(tc.key)
			if d.AnswerRequired(tc.targetValue) {
				assert.Equal(t, tc.wantRev, answer, "the initiator's answer")
			} else {
				assert.Empty(t, answer, "an offer that settles itself gets no answer")
			}
		})
	}
}

// TestOtherOperationalKeys covers the keys of RFC 7143 section 13 beyond
// the session parameters and those of RFC 7144 and RFC 3720 the table
// carries: target/login answers them, and the initiator accepts the answer.
func TestOtherOperationalKeys(t *testing.T) {
	tests := []struct{ key, ini, want string }{
		{"TaskReporting", "FastAbort,RFC3720", "RFC3720"},
		{"iSCSIProtocolLevel", "2", "1"},
		{"IFMarker", "Yes", "No"},
		{"OFMarker", "No", "No"},
	}
	for _, tc := range tests {
		t.Run(tc.key, func(t *testing.T) {
			o := run{spec: negotiate.Spec{
				Values: map[string]string{tc.key: tc.ini},
				Offer:  append(negotiate.DefaultOffer(negotiate.Normal), tc.key),
			}}.do(t)
			agree(t, o)
			assert.Equal(t, tc.want, o.ini.Keys[tc.key])
		})
	}
	t.Run("marker interval is irrelevant", func(t *testing.T) {
		o := run{spec: negotiate.Spec{
			Values: map[string]string{"IFMarkInt": "2048~4096"},
			Offer:  append(negotiate.DefaultOffer(negotiate.Normal), "IFMarkInt"),
		}}.do(t)
		agree(t, o)
		assert.Equal(t, text.Irrelevant, o.ini.Keys["IFMarkInt"])
	})
}

// TestDeclarations checks the declarative keys: what one side states, the
// other holds.
func TestDeclarations(t *testing.T) {
	t.Run("identity and portal", func(t *testing.T) {
		o := run{spec: negotiate.Spec{InitiatorAlias: "node a"}}.do(t)
		agree(t, o)
		assert.Equal(t, initiatorIQN, o.tgt.InitiatorName)
		assert.Equal(t, "node a", o.tgt.InitiatorAlias)
		assert.Equal(t, targetIQN, o.tgt.TargetName)
		assert.Equal(t, login.Normal, o.tgt.Type)
		assert.Equal(t, targetAlias, o.ini.Params.TargetAlias)
		assert.Equal(t, uint16(portalGroup), o.ini.Params.TargetPortalGroupTag)
		assert.Equal(t, "Normal", o.sent[pdu.StageSecurity]["SessionType"])
	})
	t.Run("max recv data segment length both ways", func(t *testing.T) {
		o := run{
			spec: negotiate.Spec{Values: map[string]string{"MaxRecvDataSegmentLength": "65536"}},
			cfg:  login.Config{Limits: login.Limits{MaxRecvDataSegmentLength: 131072}},
		}.do(t)
		agree(t, o)
		assert.Equal(t, uint32(65536), o.tgt.Params.MaxRecvDataSegmentLength)
		assert.Equal(t, uint32(131072), o.ini.Params.TargetMaxRecvDataSegmentLength)
	})
	t.Run("max recv data segment length not declared", func(t *testing.T) {
		o := run{spec: negotiate.Spec{Offer: without(negotiate.DefaultOffer(negotiate.Normal), "MaxRecvDataSegmentLength")}}.do(t)
		agree(t, o)
		assert.Equal(t, uint32(8192), o.ini.Params.MaxRecvDataSegmentLength, "the RFC default")
	})
	t.Run("target address", func(t *testing.T) {
		r := run{tamperResp: func(step int, p *pdu.PDU) {
			if step == 0 {
				p.Data = text.Append(p.Data, text.KV{Key: "TargetAddress", Value: "[fd00::1]:3260,7"})
			}
		}}
		o := r.do(t)
		agree(t, o)
		assert.Equal(t, "[fd00::1]:3260,7", o.ini.TargetAddress)
	})
	t.Run("discovery", func(t *testing.T) {
		o := run{spec: negotiate.Spec{Type: negotiate.Discovery}}.do(t)
		agree(t, o)
		assert.Equal(t, login.Discovery, o.tgt.Type)
		assert.Equal(t, "Discovery", o.sent[pdu.StageSecurity]["SessionType"])
		assert.NotContains(t, o.sent[pdu.StageSecurity], "TargetName")
	})
}

// TestKeysInTheWrongPlace: a key one side may not send is refused by the
// other, whichever side breaks the rule.
func TestKeysInTheWrongPlace(t *testing.T) {
	t.Run("initiator refuses to offer", func(t *testing.T) {
		for _, key := range []string{"TargetAlias", "TargetAddress", "TargetPortalGroupTag", "SendTargets",
			"AuthMethod", "CHAP_A", "CHAP_I", "CHAP_C", "CHAP_N", "CHAP_R",
			"InitiatorName", "InitiatorAlias", "TargetName", "SessionType"} {
			_, err := negotiate.New(negotiate.Spec{InitiatorName: initiatorIQN, TargetName: targetIQN,
				Values: map[string]string{key: "x"}, Offer: []string{key}})
			assert.Error(t, err, key)
		}
		_, err := negotiate.New(negotiate.Spec{InitiatorName: initiatorIQN, TargetName: targetIQN,
			Values: map[string]string{"MaxBurstLength": "100"}})
		assert.Error(t, err, "out of range")
	})
	t.Run("target refuses", func(t *testing.T) {
		for _, kv := range []text.KV{{Key: "TargetAlias", Value: "x"}, {Key: "TargetAddress", Value: "127.0.0.1"},
			{Key: "TargetPortalGroupTag", Value: "1"}, {Key: "SendTargets", Value: "All"},
			{Key: "AuthMethod", Value: "None"}, {Key: "CHAP_A", Value: "5"}} {
			o := run{tamperReq: func(_ int, p *pdu.PDU) {
				if p.BHS.CSG() == pdu.StageOperational && p.BHS.NSG() == pdu.StageFullFeature && len(p.Data) > 0 {
					p.Data = text.Append(p.Data, kv)
				}
			}}.do(t)
			assert.Equal(t, login.Failed, o.tgtOut, kv.Key)
			var le *negotiate.LoginError
			assert.ErrorAs(t, o.iniErr, &le, kv.Key)
		}
	})
	t.Run("initiator refuses", func(t *testing.T) {
		for _, kv := range []text.KV{{Key: "InitiatorName", Value: "iqn.x"}, {Key: "InitiatorAlias", Value: "x"},
			{Key: "SendTargets", Value: "All"}, {Key: "SessionType", Value: "Normal"}, {Key: "AuthMethod", Value: "None"},
			{Key: "MaxBurstLength", Value: "1"}, {Key: "ImmediateData", Value: "Maybe"}} {
			o := run{tamperResp: func(_ int, p *pdu.PDU) {
				if p.BHS.CSG() == pdu.StageOperational {
					p.Data = text.Append(p.Data, kv)
				}
			}}.do(t)
			var pe *negotiate.ProtocolError
			assert.ErrorAs(t, o.iniErr, &pe, kv.Key)
		}
	})
	t.Run("answer outside the offer", func(t *testing.T) {
		o := run{
			spec: negotiate.Spec{Values: map[string]string{"MaxBurstLength": "65536"}},
			tamperResp: func(_ int, p *pdu.PDU) {
				if p.BHS.CSG() == pdu.StageOperational {
					kvs, _, _ := text.Parse(p.Data, false)
					p.Data = p.Data[:0]
					for _, kv := range kvs {
						if kv.Key == "MaxBurstLength" {
							kv.Value = "131072" // min() can never raise an offer
						}
						p.Data = text.Append(p.Data, kv)
					}
				}
			}}.do(t)
		var pe *negotiate.ProtocolError
		assert.ErrorAs(t, o.iniErr, &pe)
	})
}

// TestUnknownKeys: extension and unknown keys are answered NotUnderstood,
// and the login goes on.
func TestUnknownKeys(t *testing.T) {
	t.Run("initiator offers", func(t *testing.T) {
		o := run{spec: negotiate.Spec{
			Values: map[string]string{"X-com.example.fast": "Yes", "X#tandem": "1", "FutureKey": "7"},
			Offer:  append(negotiate.DefaultOffer(negotiate.Normal), "X-com.example.fast", "X#tandem", "FutureKey"),
		}}.do(t)
		agree(t, o)
		for _, k := range []string{"X-com.example.fast", "X#tandem", "FutureKey"} {
			assert.Equal(t, text.NotUnderstood, o.ini.Keys[k], k)
		}
	})
	for _, key := range []string{"X-com.example.fast", "X#tandem", "FutureKey"} {
		t.Run("target proposes "+key, func(t *testing.T) {
			var answer string
			r := run{}
			r.tamperReq, r.tamperResp = injectProposal(text.KV{Key: key, Value: "Yes"}, &answer)
			o := r.do(t)
			require.NoError(t, o.iniErr)
			assert.Equal(t, text.NotUnderstood, answer)
		})
	}
	t.Run("discovery answers session keys irrelevant", func(t *testing.T) {
		var answer string
		r := run{spec: negotiate.Spec{Type: negotiate.Discovery}}
		r.tamperReq, r.tamperResp = injectProposal(text.KV{Key: "MaxBurstLength", Value: "65536"}, &answer)
		o := r.do(t)
		require.NoError(t, o.iniErr)
		assert.Equal(t, text.Irrelevant, answer)
	})
}

// TestAuthentication covers AuthMethod and the CHAP keys.
func TestAuthentication(t *testing.T) {
	protected := func(out *login.Credentials) login.Config {
		return login.Config{LookupTarget: func(name string) (login.TargetInfo, bool) {
			return login.TargetInfo{Name: targetIQN, Alias: targetAlias,
				Auth: login.Auth{Incoming: []login.Credentials{initiatorCreds}, Outgoing: out}}, name == targetIQN
		}}
	}
	mine := &negotiate.CHAP{User: initiatorCreds.User, Secret: initiatorCreds.Secret}
	mutual := &negotiate.CHAP{User: initiatorCreds.User, Secret: initiatorCreds.Secret, MutualUser: targetCreds.User, MutualSecret: targetCreds.Secret}
	tests := []struct {
		desc   string
		chap   *negotiate.CHAP
		cfg    login.Config
		method string // AuthMethod the initiator offered
		alg    string // CHAP_A it offered, "" for none
		fails  bool
	}{
		{desc: "none", method: "None"},
		{desc: "chap offered, target wants none", chap: mine, method: "CHAP,None"},
		{desc: "chap", chap: mine, cfg: protected(nil), method: "CHAP,None", alg: "7,5"},
		{desc: "chap md5 only", chap: &negotiate.CHAP{User: initiatorCreds.User, Secret: initiatorCreds.Secret, Algorithms: []chap.Algorithm{chap.MD5}}, cfg: protected(nil), method: "CHAP,None", alg: "5"},
		{desc: "mutual chap", chap: mutual, cfg: protected(&targetCreds), method: "CHAP", alg: "7,5"},
		{desc: "wrong secret", chap: &negotiate.CHAP{User: initiatorCreds.User, Secret: []byte("guess-guess-guess")}, cfg: protected(nil), fails: true},
		{desc: "no credentials", cfg: protected(nil), fails: true},
		{desc: "mutual refused by target", chap: mutual, cfg: protected(nil), fails: true},
		{desc: "mutual none offered by target", chap: mutual, fails: true},
	}
	for _, tc := range tests {
		t.Run(tc.desc, func(t *testing.T) {
			o := run{spec: negotiate.Spec{CHAP: tc.chap}, cfg: tc.cfg}.do(t)
			if tc.fails {
				require.Error(t, o.iniErr)
				return
			}
			agree(t, o)
			assert.Equal(t, tc.method, o.sent[pdu.StageSecurity]["AuthMethod"])
			assert.Equal(t, tc.alg, o.sent[pdu.StageSecurity]["CHAP_A"])
		})
	}
}
