package backstore

import (
	"bytes"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func newFaultyFile(t *testing.T) (*Faulty, *[]time.Duration) {
	t.Helper()
	be, err := Open(filepath.Join(t.TempDir(), "lun"), Options{Create: true, Size: 1 << 20})
	require.NoError(t, err)
	var slept []time.Duration
	f := NewFaulty(be, func(d time.Duration) { slept = append(slept, d) })
	t.Cleanup(func() { f.Close() })
	return f, &slept
}

func TestFaultyPassesThroughWithoutFaults(t *testing.T) {
	f, slept := newFaultyFile(t)
	data := bytes.Repeat([]byte{7}, 4096)
	n, err := f.WriteAt(data, 8192)
	require.NoError(t, err)
	assert.Equal(t, 4096, n)
	got := make([]byte, 4096)
	_, err = f.ReadAt(got, 8192)
	require.NoError(t, err)
	assert.Equal(t, data, got)
	assert.Empty(t, *slept)
	_, isMapper := f.Backend().(Mapper)
	assert.True(t, isMapper, "a file stays a Mapper under the wrapper")
}

func TestFaultyFailsAtTheFirstBadByte(t *testing.T) {
	f, _ := newFaultyFile(t)
	require.NoError(t, f.SetFaults([]Fault{{Op: FaultWrite, Off: 10240, Len: 1024, Err: FaultEIO}}))
	data := bytes.Repeat([]byte{9}, 4096)
	n, err := f.WriteAt(data, 8192)
	require.ErrorIs(t, err, syscall.EIO)
	assert.Equal(t, 2048, n, "the bytes before the bad range are written")
	got := make([]byte, 4096)
	_, err = f.ReadAt(got, 8192)
	require.NoError(t, err, "reads of a write-only fault pass")
	assert.Equal(t, data[:2048], got[:2048])
	assert.Equal(t, make([]byte, 2048), got[2048:], "nothing written from the bad byte on")

	// Outside the range everything works; healed, the range works too.
	_, err = f.WriteAt(data, 16384)
	require.NoError(t, err)
	require.NoError(t, f.SetFaults(nil))
	_, err = f.WriteAt(data, 8192)
	require.NoError(t, err)
}

func TestFaultyENOSPCAndDelay(t *testing.T) {
	f, slept := newFaultyFile(t)
	require.NoError(t, f.SetFaults([]Fault{
		{Op: FaultWrite, Err: FaultENOSPC},
		{Delay: 2 * time.Second},
	}))
	_, err := f.WriteAt(make([]byte, 512), 0)
	require.ErrorIs(t, err, syscall.ENOSPC)
	_, err = f.ReadAt(make([]byte, 512), 0)
	require.NoError(t, err)
	assert.Equal(t, []time.Duration{2 * time.Second, 2 * time.Second}, *slept)
}

func TestFaultValidate(t *testing.T) {
	for _, tc := range []struct {
		desc string
		f    Fault
		ok   bool
	}{
		{desc: "eio on reads", f: Fault{Op: FaultRead, Err: FaultEIO}, ok: true},
		{desc: "slow only", f: Fault{Delay: time.Second}, ok: true},
		{desc: "nothing to inject", f: Fault{Op: FaultRead}},
		{desc: "enospc on reads", f: Fault{Op: FaultRead, Err: FaultENOSPC}},
		{desc: "unknown op", f: Fault{Op: "trim", Err: FaultEIO}},
		{desc: "unknown err", f: Fault{Err: "ebusy"}},
		{desc: "negative range", f: Fault{Off: -1, Err: FaultEIO}},
	} {
		t.Run(tc.desc, func(t *testing.T) {
			f, _ := newFaultyFile(t)
			err := f.SetFaults([]Fault{tc.f})
			if tc.ok {
				assert.NoError(t, err)
			} else {
				assert.Error(t, err)
				assert.Empty(t, f.Faults(), "a refused set changes nothing")
			}
		})
	}
}
