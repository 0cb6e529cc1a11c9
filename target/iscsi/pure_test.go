package iscsi

import (
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/tandem-ha/tandem/wire/pdu"
)

func TestClassifyCmdSN(t *testing.T) {
	tests := []struct {
		desc              string
		cmdSN, exp, depth uint32
		want              cmdVerdict
	}{
		{"in order", 5, 5, 8, cmdDeliver},
		{"ahead in window", 7, 5, 8, cmdQueue},
		{"window edge", 12, 5, 8, cmdQueue},
		{"beyond MaxCmdSN", 13, 5, 8, cmdDrop},
		{"too low", 4, 5, 8, cmdDrop},
		{"wraps", 2, 0xfffffffe, 8, cmdQueue},
		{"wrap in order", 0, 0, 1, cmdDeliver},
		{"depth 1 queue nothing", 1, 0, 1, cmdDrop},
	}
	for _, tc := range tests {
		assert.Equal(t, tc.want, classifyCmdSN(tc.cmdSN, tc.exp, tc.depth), tc.desc)
	}
	assert.Equal(t, uint32(132), maxCmdSN(5, 128))
	assert.Equal(t, uint32(5), maxCmdSN(5, 0))
}

func TestResidual(t *testing.T) {
	// The cases of libiscsi's READ10/WRITE10 residual tests, 512-byte blocks.
	tests := []struct {
		desc             string
		expected, actual uint32
		flags            byte
		count            uint32
	}{
		{"read 1 block, EDTL 0", 0, 512, pdu.FlagOverflow, 512},
		{"read 1 block, EDTL 10000", 10000, 512, pdu.FlagUnderflow, 10000 - 512},
		{"read 1 block, EDTL 200", 200, 512, pdu.FlagOverflow, 312},
		{"write 2 blocks, EDTL 1 block", 512, 1024, pdu.FlagOverflow, 512},
		{"exact", 512, 512, 0, 0},
	}
	for _, tc := range tests {
		f, n := residual(tc.expected, tc.actual)
		assert.Equal(t, tc.flags, f, tc.desc)
		assert.Equal(t, tc.count, n, tc.desc)
	}
	f, n := bidiResidual(100, 50)
	assert.Equal(t, byte(pdu.FlagBidiUnderflow), f)
	assert.Equal(t, uint32(50), n)
}

func TestDataInSegments(t *testing.T) {
	type seg struct {
		off, n uint32
		final  bool
	}
	split := func(total, maxSeg, burst uint32) []seg {
		var out []seg
		for off := uint32(0); off < total; {
			n, f := dataInSegment(off, total, maxSeg, burst)
			require.NotZero(t, n)
			out = append(out, seg{off, n, f})
			off += n
		}
		return out
	}
	assert.Equal(t, []seg{{0, 8192, false}, {8192, 8192, false}, {16384, 1000, true}}, split(17384, 8192, 1<<20))
	// A burst boundary inside a segment ends the sequence there.
	assert.Equal(t, []seg{{0, 6000, false}, {6000, 4000, true}, {10000, 6000, false}, {16000, 4000, true}, {20000, 1, true}},
		split(20001, 6000, 10000))
	assert.Empty(t, split(0, 8192, 1<<20))
}

func TestNextR2T(t *testing.T) {
	off, n, ok := nextR2T(1000, 5000, 3000)
	assert.True(t, ok)
	assert.Equal(t, [2]uint32{1000, 3000}, [2]uint32{off, n})
	off, n, ok = nextR2T(4000, 5000, 3000)
	assert.True(t, ok)
	assert.Equal(t, [2]uint32{4000, 1000}, [2]uint32{off, n})
	_, _, ok = nextR2T(5000, 5000, 3000)
	assert.False(t, ok)
	assert.Equal(t, uint32(100), unsolicitedLimit(100, 65536))
	assert.Equal(t, uint32(65536), unsolicitedLimit(1<<20, 65536))
}

func TestNopAction(t *testing.T) {
	s := int64(time.Second)
	iv, to := 5*time.Second, 15*time.Second
	assert.Equal(t, nopNothing, nopAction(4*s, 0, 0, iv, to), "busy enough")
	assert.Equal(t, nopPing, nopAction(5*s, 0, 0, iv, to), "idle: ping")
	assert.Equal(t, nopNothing, nopAction(10*s, 0, 5*s, iv, to), "waiting for the answer")
	assert.Equal(t, nopDrop, nopAction(20*s, 0, 5*s, iv, to), "no answer: drop")
	assert.Equal(t, nopNothing, nopAction(8*s, 6*s, 5*s, iv, to), "answered")
	assert.Equal(t, nopPing, nopAction(11*s, 6*s, 5*s, iv, to), "answered, idle again")
}

func TestBufPool(t *testing.T) {
	b := getBuf(5000)
	assert.Len(t, *b, 5000)
	assert.Equal(t, 8192, cap(*b))
	putBuf(b)
	b2 := getBuf(1)
	assert.Len(t, *b2, 1)
	putBuf(b2)
	big := getBuf(32 << 20)
	assert.Len(t, *big, 32<<20)
	putBuf(big)
}
