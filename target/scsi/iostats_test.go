package scsi

import (
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/tandem-ha/tandem/target/backstore"
	wscsi "github.com/tandem-ha/tandem/wire/scsi"
)

func TestIOStats(t *testing.T) {
	tgt, lu, fb, _, _ := newFaultyTarget(t)
	require.NoError(t, fb.SetFaults([]backstore.Fault{{Op: backstore.FaultRead, Off: 100 * 512, Len: 512, Delay: 3 * time.Millisecond}}))
	assert.Equal(t, byte(wscsi.StatusGood), run(tgt, 3, cdb10(0x28, 0, 0, 2), nil, 1024).Status)
	assert.Equal(t, byte(wscsi.StatusGood), run(tgt, 3, cdb10(0x28, 0, 100, 1), nil, 512).Status, "slow, not failing")
	assert.Equal(t, byte(wscsi.StatusGood), run(tgt, 3, cdb10(0x2a, 0, 8, 1), make([]byte, 512), 0).Status)
	assert.Equal(t, byte(wscsi.StatusCheckCondition), run(tgt, 3, cdb10(0x28, 0, testBlocks-1, 2), nil, 1024).Status)
	assert.Equal(t, byte(wscsi.StatusGood), run(tgt, 3, []byte{0, 0, 0, 0, 0, 0}, nil, 0).Status)

	st := lu.IOStats()
	r := st.Class[ClassRead]
	assert.Equal(t, uint64(3), r.Commands)
	assert.Equal(t, uint64(1536), r.Bytes)
	assert.Equal(t, uint64(1), r.Errors)
	// The fake clock moves only in the faulty backend's sleep: the slow
	// read falls in the 5 ms bucket, the others in the first.
	assert.Equal(t, uint64(2), r.Latency[0])
	assert.Equal(t, uint64(1), r.Latency[7], "3 ms is above 2.5 ms and up to 5 ms")
	assert.Equal(t, 3*time.Millisecond, r.LatencySum)
	w := st.Class[ClassWrite]
	assert.Equal(t, ClassStats{Commands: 1, Bytes: 512, Latency: w.Latency}, w)
	assert.Equal(t, uint64(1), st.Class[ClassOther].Commands)
	assert.Equal(t, "write", ClassWrite.String())
}
