package login

import (
	"strconv"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/tandem-ha/tandem/wire/chap"
	"github.com/tandem-ha/tandem/wire/pdu"
	"github.com/tandem-ha/tandem/wire/text"
)

const (
	sec = pdu.StageSecurity
	op  = pdu.StageOperational
	ff  = pdu.StageFullFeature
)

func TestOperationalOnly(t *testing.T) {
	h := newHarness(t)
	out, m := h.send(op, ff, true, false, join(names(iqnTarget), libiscsiOpKeys)...)
	require.Equal(t, Done, out)
	assert.Equal(t, map[string]string{
		"TargetPortalGroupTag": "7", "TargetAlias": "disk0",
		"HeaderDigest": "None", "DataDigest": "None", "InitialR2T": "Yes", "ImmediateData": "Yes",
		"MaxBurstLength": "262144", "FirstBurstLength": "262144", "DefaultTime2Wait": "2",
		"DefaultTime2Retain": "0", "MaxOutstandingR2T": "1", "ErrorRecoveryLevel": "0",
		"IFMarker": "No", "OFMarker": "No", "MaxConnections": "1", "MaxRecvDataSegmentLength": "262144",
		"DataPDUInOrder": "Yes", "DataSequenceInOrder": "Yes",
	}, m)
	r := h.resp.BHS
	assert.Equal(t, uint32(77), r.StatSN())
	assert.Equal(t, uint32(1000), r.ExpCmdSN())
	assert.Equal(t, uint32(1031), r.MaxCmdSN())
	assert.Equal(t, uint16(0x101), r.TSIH())
	assert.Equal(t, op, r.CSG())

	res := h.l.Result()
	assert.Equal(t, Result{
		Type: Normal, InitiatorName: iqnInit, TargetName: iqnTarget, ISID: testISID, TSIH: 0x101, CID: 3,
		ExpCmdSN: 1000, StatSN: 78,
		Params: Params{
			MaxRecvDataSegmentLength: 262144, TargetMaxRecvDataSegmentLength: 262144,
			MaxBurstLength: 262144, FirstBurstLength: 262144, MaxOutstandingR2T: 1,
			InitialR2T: true, ImmediateData: true, DataPDUInOrder: true, DataSequenceInOrder: true,
			DefaultTime2Wait: 2, DefaultTime2Retain: 0, MaxConnections: 1,
		},
	}, res)

	// A request after Done is refused.
	out, _ = h.send(op, ff, true, false)
	assert.Equal(t, Failed, out)
}

func TestSecurityThenOperationalNoAuth(t *testing.T) {
	h := newHarness(t)
	out, m := h.send(sec, op, true, false, append(names(iqnTarget), "InitiatorAlias=host1", "AuthMethod=CHAP,None")...)
	require.Equal(t, Continue, out)
	assert.Equal(t, "None", m["AuthMethod"])
	assert.Equal(t, "7", m["TargetPortalGroupTag"])
	r := h.resp.BHS
	assert.True(t, r.Transit())
	assert.Equal(t, sec, r.CSG())
	assert.Equal(t, op, r.NSG())
	assert.Equal(t, uint16(0), r.TSIH(), "TSIH only in the final response")

	out, m = h.send(op, ff, true, false, "HeaderDigest=None", "MaxRecvDataSegmentLength=65536",
		"InitialR2T=No", "ImmediateData=Yes", "MaxBurstLength=262144", "FirstBurstLength=65536")
	require.Equal(t, Done, out)
	assert.Equal(t, "262144", m["MaxRecvDataSegmentLength"])
	res := h.l.Result()
	assert.Equal(t, "host1", res.InitiatorAlias)
	assert.Equal(t, uint32(65536), res.Params.MaxRecvDataSegmentLength)
	assert.Equal(t, uint32(79), res.StatSN)
	assert.True(t, res.Params.InitialR2T, "nil Limits.InitialR2T keeps the RFC default Yes")
}

func TestSecurityStraightToFullFeature(t *testing.T) {
	h := newHarness(t)
	out, m := h.send(sec, ff, true, false, append(names(iqnTarget), "AuthMethod=None")...)
	require.Equal(t, Done, out)
	assert.Equal(t, "None", m["AuthMethod"])
	assert.Equal(t, DefaultParams(), h.l.Result().Params)
}

func TestSecurityStageWithoutAuthMethod(t *testing.T) {
	h := newHarness(t)
	out, _ := h.send(sec, op, true, false, names(iqnTarget)...)
	require.Equal(t, Continue, out)
	assert.True(t, h.resp.BHS.Transit())
}

// chapLogin runs libiscsi's CHAP sequence up to the initiator's response.
func chapLogin(t *testing.T, h *harness, target, user, secret string, extra ...string) (Outcome, map[string]string) {
	t.Helper()
	out, m := h.send(sec, op, true, false, append(names(target), "AuthMethod=CHAP,None")...)
	require.Equal(t, Continue, out)
	require.Equal(t, "CHAP", m["AuthMethod"])
	require.False(t, h.resp.BHS.Transit(), "no transit before CHAP completes")

	out, m = h.send(sec, op, false, false, "CHAP_A=5")
	require.Equal(t, Continue, out)
	require.Equal(t, "5", m["CHAP_A"])
	require.Equal(t, "0", m["CHAP_I"], "deterministic Rand")
	c, err := chap.Decode(m["CHAP_C"])
	require.NoError(t, err)
	require.Len(t, c, chap.ChallengeLen)

	kvs := append([]string{"CHAP_N=" + user, "CHAP_R=" + chapResponse(t, m, secret)}, extra...)
	return h.send(sec, op, true, false, kvs...)
}

func TestCHAP(t *testing.T) {
	h := newHarness(t)
	out, m := chapLogin(t, h, iqnSecure, "bob", "bob-secret-1234")
	require.Equal(t, Continue, out)
	assert.Empty(t, m)
	assert.True(t, h.resp.BHS.Transit())
	// libiscsi declares its names again in the operational stage.
	out, _ = h.send(op, ff, true, false, join(names(iqnSecure), libiscsiOpKeys)...)
	require.Equal(t, Done, out)
	assert.Equal(t, iqnSecure, h.l.Result().TargetName)
}

func TestCHAPAlgorithmPreference(t *testing.T) {
	h := newHarness(t)
	_, m := h.send(sec, op, true, false, append(names(iqnSecure), "AuthMethod=CHAP")...)
	require.Equal(t, "CHAP", m["AuthMethod"])
	_, m = h.send(sec, op, false, false, "CHAP_A=5,7")
	assert.Equal(t, "7", m["CHAP_A"], "the target prefers SHA-256")
	out, _ := h.send(sec, op, true, false, "CHAP_N=alice", "CHAP_R="+chapResponse(t, m, "alice-secret-12"))
	require.Equal(t, Continue, out)
	assert.True(t, h.resp.BHS.Transit())

	h = newHarness(t, func(c *Config) { c.Algorithms = []chap.Algorithm{chap.MD5} })
	h.send(sec, op, true, false, append(names(iqnSecure), "AuthMethod=CHAP")...)
	out, _ = h.send(sec, op, false, false, "CHAP_A=7")
	assert.Equal(t, Failed, out)
	assert.Equal(t, uint16(pdu.LoginAuthFailed), h.status())
}

func TestMutualCHAP(t *testing.T) {
	h := newHarness(t)
	ic := strings.Repeat("ab", 20)
	out, m := chapLogin(t, h, iqnMutual, "alice", "alice-secret-12", "CHAP_I=9", "CHAP_C=0x"+ic)
	require.Equal(t, Continue, out)
	assert.True(t, h.resp.BHS.Transit())
	assert.Equal(t, "target", m["CHAP_N"])
	want := chapResponse(t, map[string]string{"CHAP_A": "5", "CHAP_I": "9", "CHAP_C": "0x" + ic}, "target-secret-1")
	assert.Equal(t, want, m["CHAP_R"])
	out, _ = h.send(op, ff, true, false, libiscsiOpKeys...)
	require.Equal(t, Done, out)
}

func TestAuthFailures(t *testing.T) {
	goodC := "0x" + strings.Repeat("5a", 16)
	tests := []struct {
		desc, target, user, secret string
		extra                      []string
		reason                     string
	}{
		{"wrong secret", iqnSecure, "alice", "wrong-secret", nil, "wrong CHAP response"},
		{"wrong user", iqnSecure, "mallory", "alice-secret-12", nil, "unknown CHAP user"},
		{"mutual without outgoing", iqnSecure, "alice", "alice-secret-12", []string{"CHAP_I=1", "CHAP_C=" + goodC}, "no outgoing credentials"},
		{"mutual short challenge", iqnMutual, "alice", "alice-secret-12", []string{"CHAP_I=1", "CHAP_C=0x" + strings.Repeat("5a", 15)}, "want 16..1024"},
		{"mutual missing CHAP_I", iqnMutual, "alice", "alice-secret-12", []string{"CHAP_C=" + goodC}, "both CHAP_I and CHAP_C"},
		{"mutual bad CHAP_I", iqnMutual, "alice", "alice-secret-12", []string{"CHAP_I=256", "CHAP_C=" + goodC}, "malformed CHAP_I"},
	}
	for _, tc := range tests {
		t.Run(tc.desc, func(t *testing.T) {
			h := newHarness(t)
			out, _ := chapLogin(t, h, tc.target, tc.user, tc.secret, tc.extra...)
			require.Equal(t, Failed, out)
			assert.Equal(t, uint16(pdu.LoginAuthFailed), h.status())
			assert.True(t, logHas(h, "level=WARN", "initiator="+iqnInit, "target="+tc.target,
				"remote=192.0.2.1:51000", tc.reason), h.logs.String())
			assert.NotContains(t, h.logs.String(), "secret-1")
		})
	}
}

func TestReflectedChallenge(t *testing.T) {
	h := newHarness(t)
	h.send(sec, op, true, false, append(names(iqnMutual), "AuthMethod=CHAP")...)
	_, m := h.send(sec, op, false, false, "CHAP_A=5")
	out, _ := h.send(sec, op, true, false, "CHAP_N=alice", "CHAP_R="+chapResponse(t, m, "alice-secret-12"),
		"CHAP_I=1", "CHAP_C="+m["CHAP_C"])
	require.Equal(t, Failed, out)
	assert.Equal(t, uint16(pdu.LoginAuthFailed), h.status())
	assert.True(t, logHas(h, "reflects"))
}

func TestNoCredentialsToCHAPTarget(t *testing.T) {
	t.Run("offers only None", func(t *testing.T) {
		h := newHarness(t)
		out, _ := h.send(sec, op, true, false, append(names(iqnSecure), "AuthMethod=None")...)
		require.Equal(t, Failed, out)
		assert.Equal(t, uint16(pdu.LoginAuthFailed), h.status())
		assert.True(t, logHas(h, "level=WARN", "does not offer CHAP"))
	})
	t.Run("skips security stage", func(t *testing.T) {
		h := newHarness(t)
		out, _ := h.send(op, ff, true, false, join(names(iqnSecure), libiscsiOpKeys)...)
		require.Equal(t, Failed, out)
		assert.Equal(t, uint16(pdu.LoginAuthFailed), h.status())
	})
	t.Run("transits without AuthMethod", func(t *testing.T) {
		h := newHarness(t)
		out, _ := h.send(sec, op, true, false, names(iqnSecure)...)
		require.Equal(t, Failed, out)
		assert.Equal(t, uint16(pdu.LoginAuthFailed), h.status())
	})
	t.Run("CHAP_R before CHAP_A", func(t *testing.T) {
		h := newHarness(t)
		h.send(sec, op, true, false, append(names(iqnSecure), "AuthMethod=CHAP")...)
		out, _ := h.send(sec, op, true, false, "CHAP_N=alice", "CHAP_R=0x00")
		require.Equal(t, Failed, out)
		assert.Equal(t, uint16(pdu.LoginAuthFailed), h.status())
	})
	t.Run("only CHAP to an open target", func(t *testing.T) {
		h := newHarness(t)
		out, _ := h.send(sec, op, true, false, append(names(iqnTarget), "AuthMethod=CHAP")...)
		require.Equal(t, Failed, out)
		assert.Equal(t, uint16(pdu.LoginAuthFailed), h.status())
	})
}

func TestDiscovery(t *testing.T) {
	disc := []string{"InitiatorName=" + iqnInit, "SessionType=Discovery"}
	t.Run("open", func(t *testing.T) {
		h := newHarness(t)
		out, m := h.send(op, ff, true, false, append(disc, libiscsiOpKeys...)...)
		require.Equal(t, Done, out)
		assert.NotContains(t, m, "TargetPortalGroupTag")
		assert.Equal(t, Discovery, h.l.Result().Type)
		assert.Equal(t, "", h.l.Result().TargetName)
	})
	t.Run("CHAP", func(t *testing.T) {
		h := newHarness(t, func(c *Config) {
			c.Discovery = Auth{Incoming: []Credentials{{User: "disc", Secret: []byte("discovery-secret")}}}
		})
		out, m := h.send(sec, op, true, false, append(disc, "AuthMethod=CHAP,None")...)
		require.Equal(t, Continue, out)
		require.Equal(t, "CHAP", m["AuthMethod"])
		_, m = h.send(sec, op, false, false, "CHAP_A=7,5")
		// Normal-session credentials do not open a discovery session.
		out, _ = h.send(sec, ff, true, false, "CHAP_N=alice", "CHAP_R="+chapResponse(t, m, "alice-secret-12"))
		require.Equal(t, Failed, out)

		h = newHarness(t, func(c *Config) {
			c.Discovery = Auth{Incoming: []Credentials{{User: "disc", Secret: []byte("discovery-secret")}}}
		})
		h.send(sec, op, true, false, append(disc, "AuthMethod=CHAP,None")...)
		_, m = h.send(sec, op, false, false, "CHAP_A=7,5")
		out, _ = h.send(sec, ff, true, false, "CHAP_N=disc", "CHAP_R="+chapResponse(t, m, "discovery-secret"))
		require.Equal(t, Done, out)
	})
	t.Run("CHAP not needed", func(t *testing.T) {
		// Discovery credentials are separate: a normal target without
		// CHAP stays open even when discovery is protected.
		h := newHarness(t, func(c *Config) {
			c.Discovery = Auth{Incoming: []Credentials{{User: "disc", Secret: []byte("discovery-secret")}}}
		})
		out, _ := h.send(op, ff, true, false, join(names(iqnTarget), libiscsiOpKeys)...)
		require.Equal(t, Done, out)
	})
}

func TestRefusals(t *testing.T) {
	tests := []struct {
		desc   string
		mutate func(h *harness)
		csg    int
		kvs    []string
		status uint16
	}{
		{"unknown target", nil, op, names("iqn.2024-01.test:nope"), pdu.LoginNotFound},
		{"ACL", func(h *harness) {
			h.l = New(h.cfg, "remote")
		}, op, []string{"InitiatorName=iqn.2024-01.test:intruder", "TargetName=" + iqnSecure}, pdu.LoginForbidden},
		{"no InitiatorName", nil, op, []string{"TargetName=" + iqnTarget}, pdu.LoginMissingParameter},
		{"no TargetName", nil, op, []string{"InitiatorName=" + iqnInit}, pdu.LoginMissingParameter},
		{"bad SessionType", nil, op, []string{"InitiatorName=" + iqnInit, "SessionType=Bogus"}, pdu.LoginSessionTypeNotSupport},
		{"TSIH of no session", func(h *harness) { h.tsih = 9 }, op, names(iqnTarget), pdu.LoginSessionDoesNotExist},
		{"operational key in security stage", nil, sec, append(names(iqnTarget), "MaxBurstLength=4096"), pdu.LoginInitiatorError},
		{"security key in operational stage", nil, op, append(names(iqnTarget), "AuthMethod=None"), pdu.LoginInitiatorError},
		{"target-only key", nil, op, append(names(iqnTarget), "TargetAlias=x"), pdu.LoginInitiatorError},
		{"SendTargets", nil, op, append(names(iqnTarget), "SendTargets=All"), pdu.LoginInitiatorError},
		{"duplicate in one PDU", nil, op, append(names(iqnTarget), "MaxBurstLength=4096", "MaxBurstLength=4096"), pdu.LoginInitiatorError},
		{"bad MaxRecvDataSegmentLength", nil, op, append(names(iqnTarget), "MaxRecvDataSegmentLength=100"), pdu.LoginInitiatorError},
		{"first stage full feature", nil, ff, names(iqnTarget), pdu.LoginInitiatorError},
		{"NSG back", nil, op, names(iqnTarget), pdu.LoginInitiatorError},
	}
	for _, tc := range tests {
		t.Run(tc.desc, func(t *testing.T) {
			h := newHarness(t)
			if tc.mutate != nil {
				tc.mutate(h)
			}
			nsg := ff
			if tc.desc == "NSG back" {
				nsg = sec
			}
			out, _ := h.send(tc.csg, nsg, true, false, tc.kvs...)
			require.Equal(t, Failed, out)
			assert.Equal(t, tc.status, h.status())
			assert.True(t, logHas(h, "level=INFO", "iscsi login refused"), h.logs.String())
		})
	}
}

func TestSessionExists(t *testing.T) {
	h := newHarness(t, func(c *Config) {
		c.SessionExists = func(ini string, isid [6]byte, tsih uint16) bool {
			return ini == iqnInit && isid == testISID && tsih == 0x42
		}
	})
	h.tsih = 0x42
	out, _ := h.send(op, ff, true, false, join(names(iqnTarget), libiscsiOpKeys)...)
	require.Equal(t, Done, out)
	assert.Equal(t, uint16(0x42), h.resp.BHS.TSIH())
	assert.Equal(t, uint16(0x42), h.l.Result().TSIH)

	// Leading-only keys are not negotiated on a joining connection.
	h = newHarness(t, func(c *Config) { c.SessionExists = func(string, [6]byte, uint16) bool { return true } })
	h.tsih = 0x42
	out, m := h.send(op, ff, true, false, append(names(iqnTarget), "MaxBurstLength=4096", "HeaderDigest=None")...)
	require.Equal(t, Done, out)
	assert.Equal(t, text.Irrelevant, m["MaxBurstLength"])
	assert.Equal(t, "None", m["HeaderDigest"])
}

func TestNoTSIHAvailable(t *testing.T) {
	h := newHarness(t, func(c *Config) { c.NewTSIH = func() uint16 { return 0 } })
	out, _ := h.send(op, ff, true, false, join(names(iqnTarget), libiscsiOpKeys)...)
	require.Equal(t, Failed, out)
	assert.Equal(t, uint16(pdu.LoginOutOfResources), h.status())
}

func TestHeaderChecks(t *testing.T) {
	t.Run("version", func(t *testing.T) {
		h := newHarness(t)
		var req pdu.PDU
		req.BHS.SetOpcode(pdu.OpLoginReq)
		req.BHS.SetLoginStages(true, false, op, ff)
		req.BHS.SetVersions(2, 1)
		req.Data = encode(names(iqnTarget)...)
		out := h.l.Step(&req, &h.resp)
		checkResponse(t, &req, &h.resp, out)
		require.Equal(t, Failed, out)
		assert.Equal(t, uint16(pdu.LoginUnsupportedVersion), h.status())
	})
	t.Run("not a login PDU", func(t *testing.T) {
		h := newHarness(t)
		h.send(sec, op, false, false, names(iqnTarget)...)
		var req pdu.PDU
		req.BHS.SetOpcode(pdu.OpTextReq)
		out := h.l.Step(&req, &h.resp)
		require.Equal(t, Failed, out)
		assert.Equal(t, uint16(pdu.LoginInvalidDuringLogin), h.status())
	})
	t.Run("T and C", func(t *testing.T) {
		h := newHarness(t)
		out, _ := h.send(op, ff, true, true, names(iqnTarget)...)
		require.Equal(t, Failed, out)
		assert.Equal(t, uint16(pdu.LoginInitiatorError), h.status())
	})
	t.Run("wrong CSG", func(t *testing.T) {
		h := newHarness(t)
		h.send(sec, op, false, false, names(iqnTarget)...)
		out, _ := h.send(op, ff, true, false)
		require.Equal(t, Failed, out)
	})
	t.Run("ISID changes", func(t *testing.T) {
		h := newHarness(t)
		h.send(sec, op, false, false, names(iqnTarget)...)
		h.isid[5]++
		out, _ := h.send(sec, op, true, false)
		require.Equal(t, Failed, out)
	})
	t.Run("name changes", func(t *testing.T) {
		h := newHarness(t)
		h.send(sec, op, true, false, names(iqnTarget)...)
		out, _ := h.send(op, ff, true, false, "TargetName=iqn.other")
		require.Equal(t, Failed, out)
	})
	t.Run("key twice across PDUs", func(t *testing.T) {
		h := newHarness(t)
		out, _ := h.send(op, ff, false, false, append(names(iqnTarget), "MaxBurstLength=65536")...)
		require.Equal(t, Continue, out)
		out, _ = h.send(op, ff, true, false, "MaxBurstLength=65536")
		require.Equal(t, Failed, out)
		assert.Equal(t, uint16(pdu.LoginInitiatorError), h.status())
	})
	t.Run("malformed text", func(t *testing.T) {
		h := newHarness(t)
		out, _ := h.sendRaw(op, ff, true, false, []byte("InitiatorName"))
		require.Equal(t, Failed, out)
		assert.Equal(t, uint16(pdu.LoginInitiatorError), h.status())
	})
}

func TestStatSNSequence(t *testing.T) {
	h := newHarness(t)
	h.expSN = 5
	h.send(sec, op, false, false, names(iqnTarget)...)
	assert.Equal(t, uint32(5), h.resp.BHS.StatSN())
	h.send(sec, op, true, false)
	assert.Equal(t, uint32(6), h.resp.BHS.StatSN())
	out, _ := h.send(op, ff, true, false, libiscsiOpKeys...)
	require.Equal(t, Done, out)
	assert.Equal(t, uint32(7), h.resp.BHS.StatSN())
	assert.Equal(t, uint32(8), h.l.Result().StatSN)
}

func TestContinuedRequest(t *testing.T) {
	h := newHarness(t)
	data := encode(join(names(iqnTarget), libiscsiOpKeys)...)
	// Split in the middle of a key and of a value.
	cuts := []int{10, 100, len(data)}
	prev := 0
	for i, c := range cuts {
		last := i == len(cuts)-1
		out, m := h.sendRaw(op, ff, last, !last, data[prev:c])
		prev = c
		if !last {
			require.Equal(t, Continue, out)
			assert.Empty(t, m)
			assert.False(t, h.resp.BHS.Transit())
			assert.False(t, h.resp.BHS.Continue())
			continue
		}
		require.Equal(t, Done, out)
		assert.Equal(t, "262144", m["MaxRecvDataSegmentLength"])
	}
	assert.Equal(t, uint32(262144), h.l.Result().Params.MaxRecvDataSegmentLength)
}

func TestContinuedResponse(t *testing.T) {
	h := newHarness(t)
	kvs := join(names(iqnTarget), libiscsiOpKeys)
	for i := range 400 {
		kvs = append(kvs, "X-com.example.key"+strings.Repeat("x", 20)+itoa(i)+"=1")
	}
	out, m := h.send(op, ff, true, false, kvs...)
	require.Equal(t, Continue, out)
	require.True(t, h.resp.BHS.Continue())
	require.Len(t, h.resp.Data, 8192)
	got := append([]byte(nil), h.resp.Data...)
	_ = m
	for range 10 {
		out, _ = h.send(op, ff, false, false)
		got = append(got, h.resp.Data...)
		if !h.resp.BHS.Continue() {
			break
		}
		require.Equal(t, Continue, out)
	}
	require.Equal(t, Done, out)
	all := kvMap(t, got)
	assert.Equal(t, text.NotUnderstood, all["X-com.example.key"+strings.Repeat("x", 20)+"399"])
	assert.Equal(t, "262144", all["MaxRecvDataSegmentLength"])

	// Data while the response continues is an error.
	h = newHarness(t)
	h.send(op, ff, true, false, kvs...)
	out, _ = h.send(op, ff, false, false, "X-a=b")
	assert.Equal(t, Failed, out)
}

func itoa(i int) string { return strconv.Itoa(i) }
