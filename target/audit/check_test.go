package audit

import (
	"testing"

	"github.com/stretchr/testify/assert"
)

var (
	nodeA = Nexus{Initiator: "iqn.2026-12.io.tandem:a", ISID: [6]byte{0x80, 0, 0, 0, 0, 1}}
	nodeB = Nexus{Initiator: "iqn.2026-12.io.tandem:b", ISID: [6]byte{0x80, 0, 0, 0, 0, 2}}
)

func w(n Nexus, seq, lba, blocks uint64, gen uint32, status byte) Record {
	return Record{Kind: KindWrite, Seq: seq, LBA: lba, Blocks: blocks, Generation: gen, Status: status,
		Initiator: n.Initiator, ISID: n.ISID}
}

func TestAcceptedAfterFence(t *testing.T) {
	clean := []Record{
		w(nodeA, 1, 0, 8, 3, StatusGood),                // before the fence
		w(nodeB, 2, 0, 8, 4, StatusGood),                // the new owner
		w(nodeA, 0, 0, 8, 4, StatusReservationConflict), // refused: fine
		w(nodeA, 0, 16, 8, 5, StatusCheckCondition),     // refused: fine
	}
	assert.Empty(t, AcceptedAfterFence(clean, nodeA, 4))

	// Negative control: a fenced write the target let through is found,
	// whatever case the initiator name comes in.
	leaky := append(clean, w(Nexus{Initiator: "IQN.2026-12.IO.TANDEM:A", ISID: nodeA.ISID}, 3, 4, 1, 4, StatusGood))
	got := AcceptedAfterFence(leaky, nodeA, 4)
	assert.Len(t, got, 1)
	assert.EqualValues(t, 4, got[0].LBA)
	assert.Len(t, AcceptedAfterFence(leaky, Nexus{Initiator: nodeA.Initiator}, 4), 1, "zero ISID matches every session")
	assert.Empty(t, AcceptedAfterFence(leaky, Nexus{Initiator: nodeA.Initiator, ISID: [6]byte{9}}, 4))
}

func TestLastWriters(t *testing.T) {
	// Completion order differs from medium order: B's write to block 5
	// reached the medium after A's (Seq) though its record came first.
	recs := []Record{
		w(nodeB, 7, 0, 10, 1, StatusGood),
		w(nodeA, 3, 5, 1, 1, StatusGood),
		w(nodeA, 9, 8, 4, 1, StatusReservationConflict), // refused: never on the medium
		w(nodeA, 8, 9, 1, 1, StatusGood),
	}
	got := LastWriters(recs, []uint64{0, 5, 8, 9, 11, 40})
	assert.Equal(t, nodeB.Initiator, got[0].Initiator)
	assert.Equal(t, nodeB.Initiator, got[5].Initiator)
	assert.Equal(t, nodeB.Initiator, got[8].Initiator)
	assert.Equal(t, nodeA.Initiator, got[9].Initiator)
	assert.NotContains(t, got, uint64(11))
	assert.NotContains(t, got, uint64(40))

	assert.Equal(t, []Nexus{nodeB, nodeA}, Writers(recs, 5, 1))
	assert.Equal(t, []Nexus{nodeB}, Writers(recs, 0, 5))
	assert.Empty(t, Writers(recs, 12, 100))
}

func TestSummarize(t *testing.T) {
	recs := []Record{w(nodeA, 1, 0, 1, 1, StatusGood), w(nodeA, 0, 0, 1, 1, StatusReservationConflict),
		{Kind: KindDropped, Dropped: 5}}
	assert.Equal(t, Summary{Accepted: 1, Refused: 1, Dropped: 5}, Summarize(recs))
}

// TestLastWritersAcrossRuns: Seq counts from 1 again after a restart;
// the later run's writes are later whatever their Seq.
func TestLastWritersAcrossRuns(t *testing.T) {
	recs := []Record{{Kind: KindStart}, w(nodeA, 9, 0, 1, 1, StatusGood), {Kind: KindStart}, w(nodeB, 1, 0, 1, 1, StatusGood)}
	assert.Equal(t, nodeB.Initiator, LastWriters(recs, []uint64{0})[0].Initiator)
}
