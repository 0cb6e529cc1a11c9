package sgio_test

import (
	"bytes"
	"context"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/tandem-ha/tandem/initiator"
	"github.com/tandem-ha/tandem/initiator/sgio"
	"github.com/tandem-ha/tandem/initiator/sgio/sgiotest"
)

func TestCommandsOnFakeDisk(t *testing.T) {
	ctx := context.Background()
	disk := sgiotest.New(64)
	d := sgio.New("/dev/fake", 3, disk.Ioctl, nil)

	inq, err := d.Inquiry(ctx)
	require.NoError(t, err)
	assert.Equal(t, "TANDEM", inq.Vendor)
	require.NoError(t, d.TestUnitReady(ctx))
	c, err := d.ReadCapacity16(ctx)
	require.NoError(t, err)
	assert.Equal(t, uint64(64), c.Blocks)

	w := bytes.Repeat([]byte{0xab}, 1024)
	require.NoError(t, d.WriteAt(ctx, w, 4, true))
	assert.Equal(t, []byte{0x8a, 0x08, 0, 0, 0, 0, 0, 0, 0, 4, 0, 0, 0, 2, 0, 0}, disk.CDBs[len(disk.CDBs)-1], "WRITE (16) with FUA")
	r := make([]byte, 1024)
	require.NoError(t, d.ReadAt(ctx, r, 4, false))
	assert.Equal(t, w, r)
	assert.ErrorContains(t, d.ReadAt(ctx, make([]byte, 100), 0, false), "multiple of the block size")

	require.NoError(t, d.PRRegisterAndIgnore(ctx, 0xa1, initiator.PROptions{}))
	require.NoError(t, d.PRReserve(ctx, 0xa1, initiator.PRWriteExclusiveRegistrantsOnly))
	keys, err := d.PRReadKeys(ctx)
	require.NoError(t, err)
	assert.Equal(t, []uint64{0xa1}, keys.Keys)
	res, err := d.PRReadReservation(ctx)
	require.NoError(t, err)
	assert.True(t, res.Reserved)
	assert.Equal(t, initiator.PRWriteExclusiveRegistrantsOnly, res.Type)
	assert.Equal(t, uint64(0xa1), res.Key)

	// Another node preempts us: our writes now end in RESERVATION CONFLICT.
	disk.Lock()
	disk.MyKey, disk.OtherKeys, disk.ResKey, disk.ResMine = 0, []uint64{0xb2}, 0xb2, false
	disk.Unlock()
	err = d.WriteAt(ctx, w, 4, true)
	assert.ErrorIs(t, err, initiator.ErrReservationConflict)
	assert.ErrorIs(t, d.PRReserve(ctx, 0xa1, initiator.PRWriteExclusiveRegistrantsOnly), initiator.ErrReservationConflict)

	disk.Lock()
	disk.Host = 0x0e
	disk.Unlock()
	assert.ErrorContains(t, d.TestUnitReady(ctx), "DID_TRANSPORT_DISRUPTED")
}
