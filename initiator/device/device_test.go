package device_test

import (
	"bytes"
	"context"
	"errors"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/tandem-ha/tandem/initiator"
	"github.com/tandem-ha/tandem/initiator/device"
	"github.com/tandem-ha/tandem/initiator/sgio"
	"github.com/tandem-ha/tandem/initiator/sgio/sgiotest"
	"github.com/tandem-ha/tandem/target/targettest"
)

const (
	keyA = 0xaaaa0001
	keyB = 0xbbbb0002
)

func ctx(t *testing.T) context.Context {
	c, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	return c
}

// registerReserveWrite is the unfence step every implementation must do
// the same way: register, reserve type 5, write with FUA, read it back.
func registerReserveWrite(t *testing.T, d device.Device, key uint64) {
	t.Helper()
	c := ctx(t)
	require.NoError(t, d.TestUnitReady(c))
	inq, err := d.Inquiry(c)
	require.NoError(t, err)
	assert.NotEmpty(t, inq.Vendor)
	cp, err := d.ReadCapacity(c)
	require.NoError(t, err)
	require.NotZero(t, cp.BlockSize)

	require.NoError(t, d.PRRegisterAndIgnore(c, key, initiator.PROptions{}))
	require.NoError(t, d.PRReserve(c, key, initiator.PRWriteExclusiveRegistrantsOnly))
	res, err := d.PRReadReservation(c)
	require.NoError(t, err)
	assert.True(t, res.Reserved)
	assert.Equal(t, key, res.Key)
	keys, err := d.PRReadKeys(c)
	require.NoError(t, err)
	assert.Contains(t, keys.Keys, key)

	w := bytes.Repeat([]byte{0x5a}, int(cp.BlockSize)*2)
	require.NoError(t, d.WriteAt(c, w, 2, true))
	r := make([]byte, len(w))
	require.NoError(t, d.ReadAt(c, r, 2, true))
	assert.Equal(t, w, r)
	require.NoError(t, d.ReadAt(c, r, 2, false))
	assert.Equal(t, w, r)
}

func TestKernelOnFakeDisk(t *testing.T) {
	disk := sgiotest.New(128)
	d := device.NewKernel(sgio.New("/dev/sdz", 7, disk.Ioctl, nil))
	assert.Equal(t, "/dev/sdz", d.String())
	registerReserveWrite(t, d, keyA)

	// The peer preempts us (fencing): writes conflict, errors.Is works.
	disk.Lock()
	disk.MyKey, disk.OtherKeys, disk.ResKey, disk.ResMine = 0, []uint64{keyB}, keyB, false
	disk.Unlock()
	err := d.WriteAt(ctx(t), make([]byte, 512), 0, true)
	assert.True(t, errors.Is(err, initiator.ErrReservationConflict), "%v", err)
	require.NoError(t, d.Close())
}

// targetBin returns a tandem-target binary: $TANDEM_ITEST_TARGET_BIN, or
// one built now. A tree whose target does not build (mid-change) skips.

const testIQN = "iqn.2026-11.io.tandem:device-test"

// startTarget runs tandem-target on loopback with one 4 MiB LUN.
func startTarget(t *testing.T) string {
	return targettest.Start(t, targettest.Options{IQN: testIQN})
}

func dial(t *testing.T, addr, name string, isid [6]byte) *initiator.Session {
	s, err := initiator.Dial(ctx(t), addr, initiator.Options{TargetName: testIQN, InitiatorName: name, ISID: isid})
	require.NoError(t, err)
	t.Cleanup(func() { s.Close(context.Background()) })
	return s
}

// TestNativeAgainstTarget runs the same steps as the kernel test on a real
// tandem-target, then fences node B with PREEMPT AND ABORT and checks that
// B's writes end in a conflict that errors.Is recognises.
func TestNativeAgainstTarget(t *testing.T) {
	addr := startTarget(t)
	a := device.NewNative(dial(t, addr, "iqn.2026-11.io.tandem:node-a", [6]byte{0x80, 0, 0, 0, 0, 0xa}), 0)
	b := device.NewNative(dial(t, addr, "iqn.2026-11.io.tandem:node-b", [6]byte{0x80, 0, 0, 0, 0, 0xb}), 0)
	assert.Equal(t, "lun 0", a.String())
	registerReserveWrite(t, a, keyA)
	c := ctx(t)
	require.NoError(t, b.PRRegisterAndIgnore(c, keyB, initiator.PROptions{}))
	require.NoError(t, b.WriteAt(c, make([]byte, 512), 10, false), "a registrant writes under type 5")

	require.NoError(t, a.PRPreemptAndAbort(c, keyA, keyB, initiator.PRWriteExclusiveRegistrantsOnly))
	keys, err := a.PRReadKeys(c)
	require.NoError(t, err)
	assert.Equal(t, []uint64{keyA}, keys.Keys)
	var werr error
	for range 3 { // B may first see the REGISTRATIONS PREEMPTED unit attention
		werr = b.WriteAt(c, make([]byte, 512), 10, false)
		if !initiator.IsReservationUnitAttention(werr) {
			break
		}
	}
	assert.ErrorIs(t, werr, initiator.ErrReservationConflict)
	require.NoError(t, a.PRClear(c, keyA))
	require.NoError(t, a.Close())
}
