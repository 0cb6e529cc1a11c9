package rt

import (
	"errors"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"golang.org/x/sys/unix"
)

// TestThreadIsRealtimeOrRefusedWithEPERM: the thread gets SCHED_RR at
// Priority, or the kernel refuses for lack of privilege; the thread's
// policy is read back either way.
func TestThreadIsRealtimeOrRefusedWithEPERM(t *testing.T) {
	done := make(chan error, 1)
	var got *unix.SchedAttr
	go func() {
		err := Thread()
		a, gerr := unix.SchedGetAttr(0, 0)
		got = a
		if gerr != nil {
			err = gerr
		}
		done <- err
		// The goroutine ends locked: its thread ends with it.
	}()
	err := <-done
	if errors.Is(err, unix.EPERM) {
		require.NotNil(t, got)
		assert.NotEqual(t, uint32(unix.SCHED_RR), got.Policy, "refused: the thread kept its normal policy")
		return
	}
	require.NoError(t, err)
	assert.Equal(t, uint32(unix.SCHED_RR), got.Policy)
	assert.Equal(t, uint32(Priority), got.Priority)
}
