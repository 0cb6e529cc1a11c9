package fence

import (
	"context"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/tandem-ha/tandem/ha/resource"
	"github.com/tandem-ha/tandem/initiator"
	"github.com/tandem-ha/tandem/initiator/device"
	"github.com/tandem-ha/tandem/target/targettest"
)

const testIQN = "iqn.2026-11.io.tandem:fence-test"

// startTarget runs tandem-target on loopback with one 4 MiB LUN.
func startTarget(t *testing.T) string {
	return targettest.Start(t, targettest.Options{IQN: testIQN})
}

// writer is an application's own nexus: it registers the node key on it,
// as the package doc requires of every process that writes.
func writer(t *testing.T, addr, node string, isid byte) *device.Native {
	c := ctx(t)
	s, err := initiator.Dial(c, addr, initiator.Options{TargetName: testIQN,
		InitiatorName: "iqn.2026-11.io.tandem:app-" + node, ISID: [6]byte{0x80, 0, 0, 0, 0, isid}})
	require.NoError(t, err)
	t.Cleanup(func() { s.Close(context.Background()) })
	d := device.NewNative(s, 0)
	require.NoError(t, d.PRRegisterAndIgnore(c, Key("lab", node), initiator.PROptions{}))
	return d
}

func TestTakeOverOnTandemTarget(t *testing.T) {
	addr := startTarget(t)
	c := ctx(t)
	fa := NewFence("fence", Config{Cluster: "lab", Node: "a", Portal: addr, Target: testIQN, LUNs: []uint64{0}}, nil)
	fb := NewFence("fence", Config{Cluster: "lab", Node: "b", Portal: addr, Target: testIQN, LUNs: []uint64{0}}, nil)
	t.Cleanup(func() { fa.Stop(c); fb.Stop(c) })

	require.NoError(t, fa.Start(c))
	st, err := fa.Monitor(c)
	require.NoError(t, err)
	assert.Equal(t, resource.StatusRunning, st)
	wa := writer(t, addr, "a", 0xa)
	blk := make([]byte, 512)
	require.NoError(t, wa.WriteAt(c, blk, 8, true), "a registrant writes under type 5")

	// b takes over: a's key is preempted (with abort) everywhere.
	require.NoError(t, fb.Start(c))
	hb, err := fb.Holder(c)
	require.NoError(t, err)
	assert.Equal(t, Key("lab", "b"), hb)
	wb := writer(t, addr, "b", 0xb)
	require.NoError(t, wb.WriteAt(c, blk, 8, true))

	// a's application: writes conflict, reads still work (type 5).
	var werr error
	for range 3 { // first the REGISTRATIONS PREEMPTED unit attention
		werr = wa.WriteAt(c, blk, 9, true)
		if !initiator.IsReservationUnitAttention(werr) {
			break
		}
	}
	require.ErrorIs(t, werr, initiator.ErrReservationConflict)
	var rerr error
	for range 3 {
		rerr = wa.ReadAt(c, blk, 8, false)
		if !initiator.IsReservationUnitAttention(rerr) {
			break
		}
	}
	require.NoError(t, rerr)

	// a's monitor sees it is fenced.
	_, err = fa.Monitor(c)
	require.ErrorIs(t, err, resource.ErrFenced)
	st, err = fb.Monitor(c)
	require.NoError(t, err)
	assert.Equal(t, resource.StatusRunning, st)
}
