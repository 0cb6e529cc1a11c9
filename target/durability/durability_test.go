package durability

import (
	"testing"

	"github.com/stretchr/testify/assert"
)

func w(lba, n, tag uint64, fua bool, o Outcome) Op {
	return Op{Kind: Write, LBA: lba, Blocks: n, Tag: tag, FUA: fua, Outcome: o}
}

var syncOK = Op{Kind: Sync, Outcome: OK}

func TestCheck(t *testing.T) {
	history := []Op{
		w(0, 2, 1, true, OK),      // blocks 0-1 durable: 1
		w(1, 1, 2, false, OK),     // block 1 maybe 2
		w(2, 1, 3, false, OK),     // block 2 maybe 3
		syncOK,                    // block 1 durable 2, block 2 durable 3
		w(2, 1, 4, false, OK),     // block 2 maybe 4
		w(3, 1, 5, true, Unknown), // block 3 maybe 5
		w(4, 1, 6, true, Failed),  // nothing
		w(5, 1, 7, false, OK),
		w(5, 1, 8, true, OK), // block 5 durable 8; 7 is older
	}
	for _, tc := range []struct {
		desc       string
		back       map[uint64]uint64
		lost, unex []Finding
	}{
		{desc: "everything flushed", back: map[uint64]uint64{0: 1, 1: 2, 2: 4, 3: 5, 4: 0, 5: 8}},
		{desc: "unsynced and unknown writes lost", back: map[uint64]uint64{0: 1, 1: 2, 2: 3, 3: 0, 4: 0, 5: 8}},
		{desc: "FUA write lost", back: map[uint64]uint64{0: 0, 1: 2},
			lost: []Finding{{LBA: 0, Want: 1, Got: 0}}},
		{desc: "synced write lost, older one back", back: map[uint64]uint64{1: 1, 2: 0},
			lost: []Finding{{LBA: 1, Want: 2, Got: 1}, {LBA: 2, Want: 3, Got: 0}}},
		{desc: "older write came back over FUA", back: map[uint64]uint64{5: 7},
			lost: []Finding{{LBA: 5, Want: 8, Got: 7}}},
		{desc: "a failed write appeared", back: map[uint64]uint64{4: 6},
			unex: []Finding{{LBA: 4, Want: 0, Got: 6}}},
		{desc: "a tag from another block", back: map[uint64]uint64{0: 3},
			unex: []Finding{{LBA: 0, Want: 1, Got: 3}}},
	} {
		t.Run(tc.desc, func(t *testing.T) {
			r := Check(history, tc.back)
			assert.Equal(t, tc.lost, r.Lost)
			assert.Equal(t, tc.unex, r.Unexpected)
			assert.Equal(t, tc.lost == nil && tc.unex == nil, r.OK())
		})
	}
}

func TestSyncKeepsUnknownAfterLastAck(t *testing.T) {
	history := []Op{w(0, 1, 1, false, OK), w(0, 1, 2, false, Unknown), syncOK}
	assert.True(t, Check(history, map[uint64]uint64{0: 1}).OK())
	assert.True(t, Check(history, map[uint64]uint64{0: 2}).OK())
	assert.False(t, Check(history, map[uint64]uint64{0: 0}).OK())
}
