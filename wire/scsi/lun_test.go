package scsi

import (
	"testing"

	"github.com/stretchr/testify/assert"
)

func TestLUNRoundTrip(t *testing.T) {
	for _, n := range []uint64{0, 1, 255, 256, 1000, 16383} {
		got, ok := DecodeLUN(EncodeLUN(n))
		assert.True(t, ok, n)
		assert.Equal(t, n, got)
	}
	assert.Equal(t, uint64(0x0001000000000000), EncodeLUN(1))
	assert.Equal(t, uint64(0x4100000000000000), EncodeLUN(256))
	_, ok := DecodeLUN(0x0001000000000001) // second level
	assert.False(t, ok)
	_, ok = DecodeLUN(0x8001000000000000) // logical unit addressing
	assert.False(t, ok)
}
