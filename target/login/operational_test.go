package login

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/tandem-ha/tandem/wire/pdu"
	"github.com/tandem-ha/tandem/wire/text"
)

func boolp(b bool) *bool { return &b }

// TestKeyNegotiation drives one operational key per case through a full
// login (alongside the libiscsi keys it replaces) and checks the answer and
// the resulting Params.
func TestKeyNegotiation(t *testing.T) {
	tests := []struct {
		desc   string
		limits Limits
		kv     string
		answer string // "" = key absent from the response
		check  func(t *testing.T, p Params)
	}{
		{"header digest refused", Limits{}, "HeaderDigest=CRC32C,None", "None", func(t *testing.T, p Params) { assert.False(t, p.HeaderDigest) }},
		{"header digest", Limits{AllowDigests: true}, "HeaderDigest=CRC32C,None", "CRC32C", func(t *testing.T, p Params) { assert.True(t, p.HeaderDigest) }},
		{"header digest initiator order", Limits{AllowDigests: true}, "HeaderDigest=None,CRC32C", "None", func(t *testing.T, p Params) { assert.False(t, p.HeaderDigest) }},
		{"data digest", Limits{AllowDigests: true}, "DataDigest=CRC32C", "CRC32C", func(t *testing.T, p Params) { assert.True(t, p.DataDigest) }},
		{"data digest only CRC32C refused", Limits{}, "DataDigest=CRC32C", text.Reject, func(t *testing.T, p Params) { assert.False(t, p.DataDigest) }},
		{"max connections", Limits{}, "MaxConnections=8", "1", func(t *testing.T, p Params) { assert.Equal(t, uint32(1), p.MaxConnections) }},
		{"max connections zero", Limits{}, "MaxConnections=0", text.Reject, func(t *testing.T, p Params) { assert.Equal(t, uint32(1), p.MaxConnections) }},
		{"initial r2t OR yes", Limits{InitialR2T: boolp(false)}, "InitialR2T=Yes", "Yes", func(t *testing.T, p Params) { assert.True(t, p.InitialR2T) }},
		{"initial r2t OR no", Limits{InitialR2T: boolp(false)}, "InitialR2T=No", "No", func(t *testing.T, p Params) { assert.False(t, p.InitialR2T) }},
		{"initial r2t target yes", Limits{}, "InitialR2T=No", "Yes", func(t *testing.T, p Params) { assert.True(t, p.InitialR2T) }},
		{"immediate AND", Limits{ImmediateData: boolp(false)}, "ImmediateData=Yes", "No", func(t *testing.T, p Params) { assert.False(t, p.ImmediateData) }},
		{"immediate yes", Limits{}, "ImmediateData=Yes", "Yes", func(t *testing.T, p Params) { assert.True(t, p.ImmediateData) }},
		{"immediate bad", Limits{}, "ImmediateData=maybe", text.Reject, func(t *testing.T, p Params) { assert.True(t, p.ImmediateData) }},
		{"mrdsl declared", Limits{MaxRecvDataSegmentLength: 65536}, "MaxRecvDataSegmentLength=16384", "65536", func(t *testing.T, p Params) {
			assert.Equal(t, uint32(16384), p.MaxRecvDataSegmentLength)
			assert.Equal(t, uint32(65536), p.TargetMaxRecvDataSegmentLength)
		}},
		{"mrdsl hex", Limits{}, "MaxRecvDataSegmentLength=0x2000", "262144", func(t *testing.T, p Params) { assert.Equal(t, uint32(8192), p.MaxRecvDataSegmentLength) }},
		{"max burst min", Limits{MaxBurstLength: 65536}, "MaxBurstLength=262144", "65536", func(t *testing.T, p Params) { assert.Equal(t, uint32(65536), p.MaxBurstLength) }},
		{"max burst offer lower", Limits{}, "MaxBurstLength=16384", "16384", func(t *testing.T, p Params) {
			assert.Equal(t, uint32(16384), p.MaxBurstLength)
			assert.Equal(t, uint32(16384), p.FirstBurstLength, "FirstBurstLength never exceeds MaxBurstLength")
		}},
		{"max burst out of range", Limits{}, "MaxBurstLength=16777216", text.Reject, func(t *testing.T, p Params) { assert.Equal(t, uint32(262144), p.MaxBurstLength) }},
		{"first burst min", Limits{FirstBurstLength: 8192}, "FirstBurstLength=65536", "8192", func(t *testing.T, p Params) { assert.Equal(t, uint32(8192), p.FirstBurstLength) }},
		{"time2wait max", Limits{DefaultTime2Wait: 5}, "DefaultTime2Wait=1", "5", func(t *testing.T, p Params) { assert.Equal(t, uint32(5), p.DefaultTime2Wait) }},
		{"time2wait offer", Limits{}, "DefaultTime2Wait=30", "30", func(t *testing.T, p Params) { assert.Equal(t, uint32(30), p.DefaultTime2Wait) }},
		{"time2wait range", Limits{}, "DefaultTime2Wait=3601", text.Reject, func(t *testing.T, p Params) { assert.Equal(t, uint32(2), p.DefaultTime2Wait) }},
		{"time2retain min", Limits{}, "DefaultTime2Retain=60", "20", func(t *testing.T, p Params) { assert.Equal(t, uint32(20), p.DefaultTime2Retain) }},
		{"outstanding r2t", Limits{MaxOutstandingR2T: 4}, "MaxOutstandingR2T=16", "4", func(t *testing.T, p Params) { assert.Equal(t, uint32(4), p.MaxOutstandingR2T) }},
		{"data pdu in order", Limits{}, "DataPDUInOrder=No", "Yes", func(t *testing.T, p Params) { assert.True(t, p.DataPDUInOrder) }},
		{"data sequence in order", Limits{}, "DataSequenceInOrder=No", "Yes", func(t *testing.T, p Params) { assert.True(t, p.DataSequenceInOrder) }},
		{"error recovery", Limits{}, "ErrorRecoveryLevel=2", "0", func(t *testing.T, p Params) { assert.Equal(t, uint32(0), p.ErrorRecoveryLevel) }},
		{"error recovery range", Limits{}, "ErrorRecoveryLevel=3", text.Reject, nil},
		{"protocol level", Limits{}, "iSCSIProtocolLevel=2", "1", nil},
		{"task reporting", Limits{}, "TaskReporting=FastAbort,RFC3720", "RFC3720", nil},
		{"task reporting unsupported", Limits{}, "TaskReporting=FastAbort", text.Reject, nil},
		{"IFMarker", Limits{}, "IFMarker=Yes", "No", nil},
		{"OFMarker", Limits{}, "OFMarker=No", "No", nil},
		{"OFMarkInt", Limits{}, "OFMarkInt=1~65535", text.Irrelevant, nil},
		{"IFMarkInt", Limits{}, "IFMarkInt=2048", text.Irrelevant, nil},
		{"vendor key", Limits{}, "X-com.example.foo=bar", text.NotUnderstood, nil},
		{"public extension key", Limits{}, "X#ext=1", text.NotUnderstood, nil},
		{"unknown key", Limits{}, "FutureKey=1", text.NotUnderstood, nil},
	}
	for _, tc := range tests {
		t.Run(tc.desc, func(t *testing.T) {
			h := newHarness(t, func(c *Config) { c.Limits = tc.limits })
			key, _, _ := cut(tc.kv)
			kvs := names(iqnTarget)
			for _, k := range libiscsiOpKeys {
				if kk, _, _ := cut(k); kk != key {
					kvs = append(kvs, k)
				}
			}
			kvs = append(kvs, tc.kv)
			out, m := h.send(op, ff, true, false, kvs...)
			require.Equal(t, Done, out, h.logs.String())
			got, ok := m[key]
			if tc.answer == "" {
				assert.False(t, ok)
			} else {
				assert.Equal(t, tc.answer, got)
			}
			if tc.check != nil {
				tc.check(t, h.l.Result().Params)
			}
		})
	}
}

func cut(kv string) (string, string, bool) {
	for i := range len(kv) {
		if kv[i] == '=' {
			return kv[:i], kv[i+1:], true
		}
	}
	return kv, "", false
}

func TestFirstBurstIrrelevant(t *testing.T) {
	h := newHarness(t)
	out, m := h.send(op, ff, true, false, append(names(iqnTarget),
		"FirstBurstLength=65536", "InitialR2T=Yes", "ImmediateData=No", "MaxBurstLength=262144")...)
	require.Equal(t, Done, out)
	assert.Equal(t, text.Irrelevant, m["FirstBurstLength"])
	assert.NotContains(t, m, "FirstBurstLength=262144")
}

func TestTargetOffers(t *testing.T) {
	// The initiator leaves MaxBurstLength and FirstBurstLength at their
	// defaults; tandem's are larger, so it offers them and waits.
	h := newHarness(t, func(c *Config) { c.Limits.InitialR2T = boolp(false) })
	out, m := h.send(op, ff, true, false, append(names(iqnTarget), "MaxRecvDataSegmentLength=8192")...)
	require.Equal(t, Continue, out)
	assert.False(t, h.resp.BHS.Transit(), "answers pending")
	assert.Equal(t, "1048576", m["MaxBurstLength"])
	assert.Equal(t, "262144", m["FirstBurstLength"])
	assert.Equal(t, "No", m["InitialR2T"])
	assert.NotContains(t, m, "ImmediateData", "equal to the default")
	assert.Equal(t, "262144", m["MaxRecvDataSegmentLength"])

	out, m = h.send(op, ff, true, false, "MaxBurstLength=524288", "FirstBurstLength=65536", "InitialR2T=No")
	require.Equal(t, Done, out)
	assert.Empty(t, m)
	p := h.l.Result().Params
	assert.Equal(t, uint32(524288), p.MaxBurstLength)
	assert.Equal(t, uint32(65536), p.FirstBurstLength)
	assert.False(t, p.InitialR2T)

	t.Run("answer above the offer", func(t *testing.T) {
		h := newHarness(t)
		h.send(op, ff, true, false, names(iqnTarget)...)
		out, _ := h.send(op, ff, true, false, "MaxBurstLength=2097152")
		require.Equal(t, Failed, out)
		assert.Equal(t, uint16(pdu.LoginInitiatorError), h.status())
	})
	t.Run("ignored offers keep defaults", func(t *testing.T) {
		h := newHarness(t)
		h.send(op, ff, true, false, names(iqnTarget)...)
		out, _ := h.send(op, ff, true, false, "MaxBurstLength=NotUnderstood")
		require.Equal(t, Done, out)
		p := h.l.Result().Params
		assert.Equal(t, uint32(262144), p.MaxBurstLength)
		assert.Equal(t, uint32(65536), p.FirstBurstLength)
	})
	t.Run("discovery offers nothing", func(t *testing.T) {
		h := newHarness(t)
		out, m := h.send(op, ff, true, false, "InitiatorName="+iqnInit, "SessionType=Discovery")
		require.Equal(t, Done, out)
		assert.Equal(t, map[string]string{"MaxRecvDataSegmentLength": "262144"}, m)
	})
}

func TestOperationalAcrossPDUs(t *testing.T) {
	h := newHarness(t, func(c *Config) { c.Limits.AllowDigests = true })
	out, m := h.send(op, ff, false, false, append(names(iqnTarget), "HeaderDigest=CRC32C")...)
	require.Equal(t, Continue, out)
	assert.Equal(t, "CRC32C", m["HeaderDigest"])
	assert.False(t, h.resp.BHS.Transit())
	out, m = h.send(op, ff, true, false, "DataDigest=CRC32C,None", "MaxBurstLength=262144", "FirstBurstLength=65536")
	require.Equal(t, Done, out)
	assert.Equal(t, "CRC32C", m["DataDigest"])
	assert.NotContains(t, m, "MaxRecvDataSegmentLength", "declared once")
	p := h.l.Result().Params
	assert.True(t, p.HeaderDigest)
	assert.True(t, p.DataDigest)
}
