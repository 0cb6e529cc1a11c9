package main

import (
	"testing"

	"github.com/stretchr/testify/assert"

	"github.com/tandem-ha/tandem/e2e/conformance"
	"github.com/tandem-ha/tandem/e2e/internal/lab"
)

func TestCHAPURL(t *testing.T) {
	base := "iscsi://127.0.0.1:3260/iqn.2024-01.io.tandem:c/1"
	for _, tc := range []struct {
		desc  string
		creds lab.CHAP
		want  string
	}{
		{"no CHAP", lab.CHAP{}, base},
		{"one-way", lab.CHAP{User: "ini", Secret: "s3cret-secret"},
			"iscsi://ini%s3cret-secret@127.0.0.1:3260/iqn.2024-01.io.tandem:c/1"},
		{"mutual", lab.CHAP{User: "ini", Secret: "s3cret-secret", MutualUser: "tgt", MutualSecret: "other secret"},
			"iscsi://ini%s3cret-secret@127.0.0.1:3260/iqn.2024-01.io.tandem:c/1?target_user=tgt&target_password=other+secret"},
	} {
		assert.Equal(t, tc.want, chapURL(base, tc.creds), tc.desc)
	}
	assert.Equal(t, "not-a-url", chapURL("not-a-url", chapModes[0].Creds), "left alone")
}

func TestCHAPModesDiffer(t *testing.T) {
	for _, m := range chapModes {
		assert.NotEqual(t, m.Creds.Secret, m.Creds.MutualSecret, "%s: RFC 7143 12.1.3 forbids one secret both ways", m.Prefix)
		assert.GreaterOrEqual(t, len(m.Creds.Secret), 12, "%s: tandem-target wants 96 bits", m.Prefix)
	}
}

func TestPrefixedAndInSuite(t *testing.T) {
	rs := prefixed("chap", []conformance.Result{{Name: "ALL.Read10.Simple", Status: conformance.Pass}})
	assert.Equal(t, "chap:ALL.Read10.Simple", rs[0].Name)
	all := []string{"ALL.Read10.Simple", "ALL.Read1.X", "ALL.Read12.Simple", "ALL.Read10.Async"}
	assert.Equal(t, []string{"ALL.Read10.Simple", "ALL.Read10.Async"}, inSuite(all, "ALL.Read10"))
}
