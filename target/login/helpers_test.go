package login

import (
	"bytes"
	"log/slog"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/tandem-ha/tandem/wire/chap"
	"github.com/tandem-ha/tandem/wire/pdu"
	"github.com/tandem-ha/tandem/wire/text"
)

const (
	iqnInit   = "iqn.2024-01.test:init"
	iqnTarget = "iqn.2024-01.test:disk"
	iqnSecure = "iqn.2024-01.test:secure"
	iqnMutual = "iqn.2024-01.test:mutual"
)

var testISID = [6]byte{0x80, 1, 2, 3, 4, 5}

// counterRand is a deterministic Rand: bytes 0, 1, 2, ...
type counterRand struct{ n byte }

func (r *counterRand) Read(p []byte) (int, error) {
	for i := range p {
		p[i] = r.n
		r.n++
	}
	return len(p), nil
}

type harness struct {
	t      *testing.T
	cfg    *Config
	l      *Login
	logs   *bytes.Buffer
	cmdSN  uint32
	expSN  uint32
	tsih   uint16
	isid   [6]byte
	resp   pdu.PDU
	nextID uint16
}

func testConfig(logs *bytes.Buffer) *Config {
	targets := map[string]TargetInfo{
		iqnTarget: {Name: iqnTarget, Alias: "disk0"},
		iqnSecure: {Name: iqnSecure, Auth: Auth{Incoming: []Credentials{
			{User: "alice", Secret: []byte("alice-secret-12")},
			{User: "bob", Secret: []byte("bob-secret-1234")},
		}}, Initiators: []string{iqnInit, "iqn.2024-01.test:other"}},
		iqnMutual: {Name: iqnMutual, Auth: Auth{
			Incoming: []Credentials{{User: "alice", Secret: []byte("alice-secret-12")}},
			Outgoing: &Credentials{User: "target", Secret: []byte("target-secret-1")},
		}},
	}
	cfg := &Config{
		PortalGroupTag: 7,
		LookupTarget: func(name string) (TargetInfo, bool) {
			ti, ok := targets[name]
			return ti, ok
		},
		Rand:      &counterRand{},
		Logger:    slog.New(slog.NewTextHandler(logs, nil)),
		CmdWindow: 32,
	}
	next := uint16(0x100)
	cfg.NewTSIH = func() uint16 { next++; return next }
	return cfg
}

func newHarness(t *testing.T, mutate ...func(*Config)) *harness {
	logs := &bytes.Buffer{}
	cfg := testConfig(logs)
	for _, m := range mutate {
		m(cfg)
	}
	return &harness{t: t, cfg: cfg, l: New(cfg, "192.0.2.1:51000"), logs: logs, cmdSN: 1000, expSN: 77, isid: testISID}
}

// send builds a Login Request with the given stages and "k=v" pairs.
func (h *harness) send(csg, nsg int, transit, cont bool, kvs ...string) (Outcome, map[string]string) {
	return h.sendRaw(csg, nsg, transit, cont, encode(kvs...))
}

func encode(kvs ...string) []byte {
	var b []byte
	for _, s := range kvs {
		b = append(b, s...)
		b = append(b, 0)
	}
	return b
}

func (h *harness) sendRaw(csg, nsg int, transit, cont bool, data []byte) (Outcome, map[string]string) {
	h.t.Helper()
	var req pdu.PDU
	req.BHS.SetOpcode(pdu.OpLoginReq)
	req.BHS.SetImmediate(true)
	req.BHS.SetLoginStages(transit, cont, csg, nsg)
	req.BHS.SetVersions(0, 0)
	req.BHS.SetISID(h.isid)
	req.BHS.SetTSIH(h.tsih)
	req.BHS.SetITT(0x1234)
	req.BHS.SetCID(3)
	req.BHS.SetCmdSN(h.cmdSN)
	req.BHS.SetExpStatSN(h.expSN)
	req.Data = data
	out := h.l.Step(&req, &h.resp)
	checkResponse(h.t, &req, &h.resp, out)
	if out != Failed {
		h.expSN = h.resp.BHS.StatSN() + 1
	}
	return out, kvMap(h.t, h.resp.Data)
}

func kvMap(t *testing.T, data []byte) map[string]string {
	kvs, _, err := text.Parse(data, true)
	require.NoError(t, err)
	m := map[string]string{}
	for _, kv := range kvs {
		m[kv.Key] = kv.Value
	}
	return m
}

// checkResponse asserts the invariants of every Login Response.
func checkResponse(t *testing.T, req, resp *pdu.PDU, out Outcome) {
	t.Helper()
	r := &resp.BHS
	require.Equal(t, pdu.OpLoginResp, r.Opcode())
	require.Equal(t, req.BHS.ITT(), r.ITT())
	require.Equal(t, req.BHS.ISID(), r.ISID())
	require.Equal(t, byte(0), r.VersionMax())
	require.Equal(t, byte(0), r.VersionMinOrActive())
	require.Equal(t, len(resp.Data), r.DataSegmentLength())
	require.LessOrEqual(t, len(resp.Data), 8192)
	require.Empty(t, resp.AHS)
	require.False(t, r.Transit() && r.Continue(), "T and C both set")
	class, _ := r.LoginStatus()
	if out == Failed {
		require.NotZero(t, class)
		require.Empty(t, resp.Data)
		require.False(t, r.Transit())
	} else {
		require.Zero(t, class)
	}
	if out == Done {
		require.True(t, r.Transit())
		require.Equal(t, pdu.StageFullFeature, r.NSG())
		require.NotZero(t, r.TSIH())
	}
	if r.Transit() {
		require.Greater(t, r.NSG(), r.CSG())
	}
	if !r.Continue() && len(resp.Data) > 0 {
		require.Equal(t, byte(0), resp.Data[len(resp.Data)-1], "text not NUL terminated")
	}
}

func (h *harness) status() uint16 {
	c, d := h.resp.BHS.LoginStatus()
	return uint16(c)<<8 | uint16(d)
}

// chapResponse answers the challenge in m with secret.
func chapResponse(t *testing.T, m map[string]string, secret string) string {
	t.Helper()
	a, err := text.ParseNumber(m["CHAP_A"])
	require.NoError(t, err)
	id, err := text.ParseNumber(m["CHAP_I"])
	require.NoError(t, err)
	c, err := chap.Decode(m["CHAP_C"])
	require.NoError(t, err)
	r, err := chap.Response(chap.Algorithm(a), byte(id), []byte(secret), c)
	require.NoError(t, err)
	return chap.EncodeHex(r)
}

// libiscsiOpKeys are the operational keys libiscsi offers.
var libiscsiOpKeys = []string{
	"HeaderDigest=None,CRC32C", "DataDigest=None", "InitialR2T=No", "ImmediateData=Yes",
	"MaxBurstLength=262144", "FirstBurstLength=262144", "DefaultTime2Wait=2", "DefaultTime2Retain=0",
	"MaxOutstandingR2T=1", "ErrorRecoveryLevel=0", "IFMarker=No", "OFMarker=No", "MaxConnections=1",
	"MaxRecvDataSegmentLength=262144", "DataPDUInOrder=Yes", "DataSequenceInOrder=Yes",
}

func names(target string) []string {
	return []string{"InitiatorName=" + iqnInit, "TargetName=" + target, "SessionType=Normal"}
}

func join(a ...[]string) []string {
	var out []string
	for _, x := range a {
		out = append(out, x...)
	}
	return out
}

func logHas(h *harness, parts ...string) bool {
	s := h.logs.String()
	for _, p := range parts {
		if !strings.Contains(s, p) {
			return false
		}
	}
	return true
}
