package itest

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/tandem-ha/tandem/initiator"
)

// TestTaskManagement sends each task management function the initiator
// has to tandem-target; after the resets the unit attentions they raise
// are absorbed by the initiator's retries, so plain I/O keeps working.
func TestTaskManagement(t *testing.T) {
	d, _ := startPRLab(t)
	s := dialNode(t, d.addr, nodeA, isidA)
	c := ctx(t)
	data := pattern(4096, 7)
	require.NoError(t, s.Write16(c, 0, 0, data, false))

	for _, tc := range []struct {
		desc string
		call func() (byte, error)
	}{
		{"abort task for no task", func() (byte, error) { return s.AbortTask(c, 0, 0x7777, 0) }},
		{"abort task set", func() (byte, error) { return s.AbortTaskSet(c, 0) }},
		{"clear task set", func() (byte, error) { return s.ClearTaskSet(c, 0) }},
		{"lun reset", func() (byte, error) { return s.LUNReset(c, 0) }},
		{"target warm reset", func() (byte, error) { return s.TargetWarmReset(c) }},
	} {
		resp, err := tc.call()
		require.NoError(t, err, tc.desc)
		want := byte(initiator.TMFFunctionComplete)
		if tc.desc == "abort task for no task" {
			// RFC 7143 11.6.1: function complete, or task does not exist.
			assert.Contains(t, []byte{initiator.TMFFunctionComplete, initiator.TMFTaskDoesNotExist}, resp, tc.desc)
			continue
		}
		assert.Equal(t, want, resp, tc.desc)
		got := make([]byte, len(data))
		require.NoError(t, s.ReadInto(c, 0, 0, got), "I/O after %s", tc.desc)
		assert.Equal(t, data, got)
	}

	// A cold reset ends the session (RFC 7143 section 11.5.1).
	resp, err := s.TargetColdReset(c)
	require.NoError(t, err)
	assert.Equal(t, byte(initiator.TMFFunctionComplete), resp)
	select {
	case <-s.Done():
	case <-c.Done():
		t.Fatal("the session outlived TARGET COLD RESET")
	}
	s2 := dialNode(t, d.addr, nodeA, isidA)
	require.NoError(t, s2.TestUnitReady(ctx(t), 0), "a new session after the cold reset")
}
