package main

import (
	"bytes"
	"encoding/json"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/tandem-ha/tandem/tools/doctor"
)

func TestDoctorExitsNonZeroOnFailure(t *testing.T) {
	dir := t.TempDir()
	var out bytes.Buffer
	c := newRoot()
	c.SetOut(&out)
	c.SetArgs([]string{"doctor", "--json", "--config", filepath.Join(dir, "missing.yaml"), "--socket", filepath.Join(dir, "a.sock")})
	err := c.Execute()
	require.ErrorIs(t, err, errDoctorFailed)
	var rep struct {
		Role    string
		Failed  bool
		Results []doctor.Result
	}
	require.NoError(t, json.Unmarshal(out.Bytes(), &rep))
	assert.True(t, rep.Failed)
	assert.Equal(t, "node", rep.Role)
	assert.Equal(t, "config", rep.Results[1].Name)
	assert.Equal(t, doctor.Fail, rep.Results[1].Status)

	c = newRoot()
	c.SetOut(&bytes.Buffer{})
	c.SetArgs([]string{"doctor", "--role", "nas"})
	assert.ErrorContains(t, c.Execute(), `--role "nas": use node or storage`)
}
