package scsi

import (
	"testing"

	"github.com/stretchr/testify/assert"
)

func TestPRCDBs(t *testing.T) {
	assert.Equal(t, [10]byte{0x5e, 0x01, 0, 0, 0, 0, 0, 0x01, 0x08, 0}, PRInCDB(PRInReadReservation, 264))
	assert.Equal(t, [10]byte{0x5f, 0x05, 0x05, 0, 0, 0, 0, 0, 24, 0}, PROutCDB(5, 5, 24))
}

func TestPROutParams(t *testing.T) {
	p := PROutParams(0x0102030405060708, 0x1112131415161718, PROutAPTPL|PROutAllTgPt, nil)
	assert.Equal(t, []byte{1, 2, 3, 4, 5, 6, 7, 8, 0x11, 0x12, 0x13, 0x14, 0x15, 0x16, 0x17, 0x18,
		0, 0, 0, 0, 0x05, 0, 0, 0}, p)
	tid := []byte{0x05, 0, 0, 4, 'a', 0, 0, 0}
	p = PROutParams(1, 2, 0, [][]byte{tid})
	assert.Len(t, p, 28+8)
	assert.Equal(t, byte(PROutSpecIPT), p[20])
	assert.Equal(t, []byte{0, 0, 0, 8}, p[24:28])
	assert.Equal(t, tid, p[28:])
}
