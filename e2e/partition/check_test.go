package partition

import (
	"testing"

	"github.com/stretchr/testify/assert"

	"github.com/tandem-ha/tandem/e2e/partition/stamp"
)

func ack(node string, gen, seq uint64, submit, acked int64) stamp.Event {
	return stamp.Event{Kind: stamp.KindAck, Node: node, Gen: gen, Seq: seq, LBA: (seq - 1) % RangeBlocks, Time: submit, Acked: acked}
}

func TestAnalyze(t *testing.T) {
	tests := []struct {
		desc                string
		events              []stamp.Event
		dual, afterConflict int
		fencePoint          int64
		writersAt20         []string
	}{
		{
			desc: "clean takeover: alpha's last write completes before beta's first",
			events: []stamp.Event{
				{Kind: stamp.KindStart, Node: "alpha", Gen: 1, Time: 1},
				ack("alpha", 1, 1, 2, 3), ack("alpha", 1, 2, 4, 5),
				{Kind: stamp.KindConflict, Node: "alpha", Gen: 1, Seq: 3, Time: 6, Acked: 7},
				{Kind: stamp.KindStart, Node: "beta", Gen: 2, Time: 8},
				ack("beta", 2, 1, 9, 10), ack("beta", 2, 2, 19, 21),
			},
			fencePoint: 10, writersAt20: []string{"beta"},
		},
		{
			desc: "dual writer: alpha submitted and got an ack after beta's first ack",
			events: []stamp.Event{
				ack("alpha", 1, 1, 2, 3), ack("beta", 2, 1, 4, 5), ack("alpha", 1, 2, 6, 7), ack("alpha", 1, 3, 20, 21),
				ack("beta", 2, 2, 20, 22),
			},
			dual: 2, fencePoint: 5, writersAt20: []string{"alpha", "beta"},
		},
		{
			desc: "in flight at the fence point: submitted before beta's ack, not provably dual",
			events: []stamp.Event{
				ack("alpha", 1, 1, 2, 3), ack("alpha", 1, 2, 4, 6), ack("beta", 2, 1, 4, 5),
			},
			fencePoint: 5,
		},
		{
			desc: "accepted after its own conflict",
			events: []stamp.Event{
				ack("alpha", 1, 1, 2, 3),
				{Kind: stamp.KindConflict, Node: "alpha", Gen: 1, Seq: 2, Time: 4, Acked: 5},
				ack("alpha", 1, 3, 6, 7),
			},
			afterConflict: 1,
		},
		{
			desc: "same node, new generation: not a second writer",
			events: []stamp.Event{
				ack("alpha", 1, 1, 2, 3), ack("alpha", 3, 1, 4, 5), ack("alpha", 1, 2, 6, 7),
			},
		},
	}
	for _, tc := range tests {
		t.Run(tc.desc, func(t *testing.T) {
			a := Analyze(tc.events)
			assert.Equal(t, tc.dual, a.DualAcks, a.Problems)
			assert.Equal(t, tc.afterConflict, a.AfterConflict, a.Problems)
			assert.Equal(t, tc.dual > 0 || tc.afterConflict > 0, len(a.Problems) > 0)
			if tc.fencePoint == 0 {
				assert.True(t, a.FencePoint.IsZero())
			} else {
				assert.Equal(t, tc.fencePoint, a.FencePoint.UnixNano())
			}
			if tc.writersAt20 != nil {
				assert.Equal(t, tc.writersAt20, a.Writers(timeNS(20)))
			}
		})
	}
}
