package text

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestKeyTableConsistent(t *testing.T) {
	seen := map[string]bool{}
	for _, d := range KeyDefs() {
		require.False(t, seen[d.Name], "duplicate %s", d.Name)
		seen[d.Name] = true
		require.Same(t, LookupKey(d.Name), LookupKey(d.Name))
		require.NotZero(t, d.Phase, d.Name)
		require.NotZero(t, d.Sender, d.Name)
		if d.Default != "" && d.Kind != KindList && d.Kind != KindDeclarative {
			assert.NoError(t, d.Check(d.Default), "%s default %q", d.Name, d.Default)
		}
	}
	assert.Nil(t, LookupKey("X-com.example.foo"))
	assert.True(t, IsPrivateKey("X-com.example.foo"))
	assert.True(t, IsPrivateKey("X#ext"))
	assert.False(t, IsPrivateKey("MaxBurstLength"))
}

func TestAnswer(t *testing.T) {
	tests := []struct {
		desc, key, offer, local, want string
	}{
		{"digest first supported", "HeaderDigest", "CRC32C,None", "CRC32C,None", "CRC32C"},
		{"digest initiator order wins", "HeaderDigest", "None,CRC32C", "CRC32C,None", "None"},
		{"digest not allowed", "HeaderDigest", "CRC32C", "None", Reject},
		{"digest unknown item ignored", "DataDigest", "MD5,None", "CRC32C,None", "None"},
		{"digest empty item", "DataDigest", "CRC32C,,None", "CRC32C,None", Reject},
		{"AND yes yes", "ImmediateData", "Yes", "Yes", "Yes"},
		{"AND yes no", "ImmediateData", "Yes", "No", "No"},
		{"AND no yes", "ImmediateData", "No", "Yes", "No"},
		{"OR no no", "InitialR2T", "No", "No", "No"},
		{"OR no yes", "InitialR2T", "No", "Yes", "Yes"},
		{"OR yes no", "DataPDUInOrder", "Yes", "No", "Yes"},
		{"bool malformed", "InitialR2T", "yes", "No", Reject},
		{"min lower offer", "MaxBurstLength", "65536", "1048576", "65536"},
		{"min lower local", "MaxBurstLength", "16776192", "1048576", "1048576"},
		{"min hex", "FirstBurstLength", "0x10000", "262144", "65536"},
		{"min below range", "MaxBurstLength", "511", "1048576", Reject},
		{"min above range", "MaxBurstLength", "16777216", "1048576", Reject},
		{"min malformed", "MaxBurstLength", "abc", "1048576", Reject},
		{"min leading zero", "MaxBurstLength", "0100", "1048576", Reject},
		{"max", "DefaultTime2Wait", "0", "2", "2"},
		{"max offer", "DefaultTime2Wait", "10", "2", "10"},
		{"max range", "DefaultTime2Wait", "3601", "2", Reject},
		{"retain min", "DefaultTime2Retain", "0", "20", "0"},
		{"erl", "ErrorRecoveryLevel", "2", "0", "0"},
		{"erl range", "ErrorRecoveryLevel", "3", "0", Reject},
		{"r2t", "MaxOutstandingR2T", "8", "1", "1"},
		{"r2t zero", "MaxOutstandingR2T", "0", "1", Reject},
		{"maxconn", "MaxConnections", "4", "1", "1"},
		{"protocol level", "iSCSIProtocolLevel", "2", "1", "1"},
		{"task reporting", "TaskReporting", "FastAbort,RFC3720", "RFC3720", "RFC3720"},
		{"marker", "IFMarker", "Yes", "No", "No"},
		{"reserved offer", "MaxBurstLength", "Reject", "1048576", Reject},
		{"declarative", "MaxRecvDataSegmentLength", "65536", "262144", ""},
	}
	for _, tc := range tests {
		t.Run(tc.desc, func(t *testing.T) {
			d := LookupKey(tc.key)
			require.NotNil(t, d)
			assert.Equal(t, tc.want, d.Answer(tc.offer, tc.local))
		})
	}
}

func TestAnswerRequired(t *testing.T) {
	assert.False(t, LookupKey("ImmediateData").AnswerRequired("No"))
	assert.True(t, LookupKey("ImmediateData").AnswerRequired("Yes"))
	assert.False(t, LookupKey("InitialR2T").AnswerRequired("Yes"))
	assert.True(t, LookupKey("InitialR2T").AnswerRequired("No"))
	assert.False(t, LookupKey("MaxRecvDataSegmentLength").AnswerRequired("8192"))
	assert.True(t, LookupKey("MaxBurstLength").AnswerRequired("8192"))
}

func TestOutcome(t *testing.T) {
	tests := []struct {
		desc, key, offer, answer, want string
		err                            error
	}{
		{"list chosen", "HeaderDigest", "CRC32C,None", "None", "None", nil},
		{"list not offered", "HeaderDigest", "None", "CRC32C", "", ErrNotAdmissible},
		{"list two values", "HeaderDigest", "CRC32C,None", "CRC32C,None", "", ErrNotAdmissible},
		{"rejected", "HeaderDigest", "CRC32C", Reject, "", ErrRejected},
		{"not understood", "X-foo", "", NotUnderstood, "", ErrNotUnderstood},
		{"irrelevant", "FirstBurstLength", "65536", Irrelevant, "65536", nil},
		{"min ok", "MaxBurstLength", "262144", "65536", "65536", nil},
		{"min raised", "MaxBurstLength", "65536", "262144", "", ErrNotAdmissible},
		{"max ok", "DefaultTime2Wait", "2", "5", "5", nil},
		{"max lowered", "DefaultTime2Wait", "5", "2", "", ErrNotAdmissible},
		{"and lowered", "ImmediateData", "Yes", "No", "No", nil},
		{"and raised", "ImmediateData", "No", "Yes", "", ErrNotAdmissible},
		{"and no answer", "ImmediateData", "No", "", "No", nil},
		{"or raised", "InitialR2T", "No", "Yes", "Yes", nil},
		{"or lowered", "InitialR2T", "Yes", "No", "", ErrNotAdmissible},
		{"or missing answer", "InitialR2T", "No", "", "", ErrNotAdmissible},
		{"bad answer", "MaxBurstLength", "65536", "x", "", ErrNotAdmissible},
		{"declarative", "MaxRecvDataSegmentLength", "8192", "65536", "65536", nil},
	}
	for _, tc := range tests {
		t.Run(tc.desc, func(t *testing.T) {
			d := LookupKey(tc.key)
			if d == nil {
				d = &KeyDef{Name: tc.key}
			}
			got, err := d.Outcome(tc.offer, tc.answer)
			if tc.err != nil {
				require.ErrorIs(t, err, tc.err)
				return
			}
			require.NoError(t, err)
			assert.Equal(t, tc.want, got)
		})
	}
}

func TestCheckDeclarative(t *testing.T) {
	st := LookupKey("SessionType")
	assert.NoError(t, st.Check("Discovery"))
	assert.NoError(t, st.Check("Normal"))
	assert.ErrorIs(t, st.Check("normal"), ErrBadValue)
	mr := LookupKey("MaxRecvDataSegmentLength")
	assert.NoError(t, mr.Check("512"))
	assert.NoError(t, mr.Check("16777215"))
	assert.ErrorIs(t, mr.Check("511"), ErrBadValue)
	assert.ErrorIs(t, mr.Check("16777216"), ErrBadValue)
}

// FuzzAnswerOutcome checks that whatever a responder answers is admissible
// for the originator, and that nothing panics.
func FuzzAnswerOutcome(f *testing.F) {
	f.Add("MaxBurstLength", "65536", "262144")
	f.Add("HeaderDigest", "CRC32C,None", "None")
	f.Add("ImmediateData", "No", "Yes")
	f.Add("DefaultTime2Wait", "0x10", "2")
	f.Add("X-foo", "bar", "baz")
	f.Fuzz(func(t *testing.T, key, offer, local string) {
		d := LookupKey(key)
		if d == nil {
			return
		}
		a := d.Answer(offer, local)
		if a == "" || a == Reject {
			return
		}
		if d.Check(local) != nil {
			return
		}
		_, err := d.Outcome(offer, a)
		require.NoError(t, err, "offer %q local %q answer %q", offer, local, a)
	})
}
