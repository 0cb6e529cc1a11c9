package scsi

import (
	"testing"

	"github.com/stretchr/testify/assert"
)

// TestNoTASSwitch: the test-only switch turns TASK ABORTED status off
// (the VM test's negative control) and nothing else; off by default.
func TestNoTASSwitch(t *testing.T) {
	tgt, _ := newTestTarget(t, LUConfig{})
	assert.False(t, testNoTAS, "TANDEM_TEST_NO_TAS must not be set for unit tests")
	assert.True(t, tgt.TaskAbortedStatus(0))
	testNoTAS = true
	t.Cleanup(func() { testNoTAS = false })
	assert.False(t, tgt.TaskAbortedStatus(0))
}
