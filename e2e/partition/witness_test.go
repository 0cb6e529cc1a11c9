package partition

import (
	"testing"

	"github.com/stretchr/testify/assert"

	"github.com/tandem-ha/tandem/e2e/partition/stamp"
	"github.com/tandem-ha/tandem/ha/fence"
	"github.com/tandem-ha/tandem/target/audit"
)

var (
	isidA = [6]byte{0x80, 0, 0, 0, 0, 1}
	isidB = [6]byte{0x80, 0, 0, 0, 0, 2}
)

// scene builds the three sources of a row: writes are appended to the
// ack logs, the audit and (unless lost) the disk, in one order.
type scene struct {
	events []stamp.Event
	recs   []audit.Record
	disk   map[uint64]Block
	seq    uint64
	now    int64
	holder string // node whose fence holds the reservation ("" none)
	gen    uint32
}

func newScene() *scene {
	s := &scene{disk: map[uint64]Block{}, now: 1000, gen: 1}
	for lba := range uint64(4) {
		s.disk[lba] = Block{Err: stamp.ErrNotStamped}
	}
	s.recs = append(s.recs, audit.Record{Kind: audit.KindStart, Time: s.now})
	s.start("alpha", 1, isidA)
	return s
}

func (s *scene) tick() int64 { s.now += 10; return s.now }

func (s *scene) start(node string, gen uint64, isid [6]byte) {
	s.events = append(s.events, stamp.Event{Kind: stamp.KindStart, Node: node, Gen: gen, Time: s.tick(), Info: stamp.StartInfo(isid, 1, 1)})
}

type outcome int

const (
	acked    outcome = iota // accepted, acknowledged, on disk
	refused                 // RESERVATION CONFLICT
	unacked                 // accepted and on disk, the writer saw an error
	unlogged                // accepted and on disk, the writer was killed
	vanished                // acknowledged, then lost from the disk
)

func (s *scene) write(node string, gen, seq, lba uint64, isid [6]byte, o outcome) {
	sub := s.tick()
	s.seq++
	rec := audit.Record{Kind: audit.KindWrite, Time: s.tick(), Seq: s.seq, LBA: lba, Blocks: 1, Flags: audit.FlagFUA,
		Generation: s.gen, Initiator: stamp.WriterInitiator(node), ISID: isid}
	if s.holder != "" {
		rec.ResType, rec.HolderInitiator = 5, fence.InitiatorName(Cluster, s.holder)
	}
	e := stamp.Event{Kind: stamp.KindAck, Node: node, Gen: gen, Seq: seq, LBA: lba, Time: sub, Acked: s.tick(), FUA: true}
	switch o {
	case refused:
		rec.Status, rec.Seq = audit.StatusReservationConflict, 0
		e.Kind = stamp.KindConflict
	case unacked:
		e.Kind, e.Acked = stamp.KindError, 0
	}
	s.recs = append(s.recs, rec)
	if o != unlogged {
		s.events = append(s.events, e)
	}
	if o != refused && o != vanished {
		s.disk[lba] = Block{Stamp: stamp.Stamp{Node: node, Gen: gen, Seq: seq, LBA: lba, Time: sub}}
	}
}

func (s *scene) judge() Verdict { return Judge(s.events, s.recs, s.disk, Range{Blocks: 4}) }

func TestJudge(t *testing.T) {
	tests := []struct {
		desc  string
		build func(s *scene)
		check func(t *testing.T, v Verdict)
	}{
		{
			desc: "clean fenced takeover on one range",
			build: func(s *scene) {
				s.holder = "alpha"
				s.write("alpha", 1, 1, 0, isidA, acked)
				s.write("alpha", 1, 2, 1, isidA, acked)
				s.holder, s.gen = "beta", 3 // beta preempts
				s.write("alpha", 1, 3, 2, isidA, refused)
				s.start("beta", 2, isidB)
				s.write("beta", 2, 1, 0, isidB, acked)
				s.write("alpha", 1, 4, 3, isidA, refused)
				s.write("beta", 2, 2, 1, isidB, unacked)
			},
			check: func(t *testing.T, v Verdict) {
				assert.True(t, v.OK(), v.Problems)
				assert.True(t, v.Fenced)
				assert.Equal(t, uint32(3), v.FenceGen)
				assert.Equal(t, []string{"alpha", "beta"}, v.Order)
				assert.Equal(t, NodeCounts{Accepted: 2, Refused: 2}, *v.Nodes["alpha"])
				assert.Equal(t, NodeCounts{Accepted: 2, Unacked: 1}, *v.Nodes["beta"])
				assert.Equal(t, 4, v.Blocks)
			},
		},
		{
			desc: "no fence: both nodes write in turn",
			build: func(s *scene) {
				s.write("alpha", 1, 1, 0, isidA, acked)
				s.start("beta", 2, isidB)
				s.write("beta", 2, 1, 0, isidB, acked)
				s.write("alpha", 1, 2, 1, isidA, acked)
				s.write("alpha", 1, 3, 2, isidA, unlogged)
			},
			check: func(t *testing.T, v Verdict) {
				assert.False(t, v.OK())
				assert.False(t, v.Fenced)
				assert.Equal(t, 2, v.Dual, v.Problems)
				assert.Equal(t, 2, v.Nodes["alpha"].AfterTakeover)
				assert.Equal(t, 1, v.Nodes["alpha"].Unacked)
			},
		},
		{
			desc: "fence broken: the fenced writer gets a write in",
			build: func(s *scene) {
				s.holder = "alpha"
				s.write("alpha", 1, 1, 0, isidA, acked)
				s.holder, s.gen = "beta", 3
				s.write("alpha", 1, 2, 1, isidA, unacked)
			},
			check: func(t *testing.T, v Verdict) {
				assert.Equal(t, 1, v.AfterFence, v.Problems)
				assert.Equal(t, 1, v.Nodes["alpha"].AfterFence)
			},
		},
		{
			desc: "an acknowledged FUA write is gone from the disk",
			build: func(s *scene) {
				s.write("alpha", 1, 1, 0, isidA, acked)
				s.write("alpha", 1, 2, 1, isidA, vanished)
			},
			check: func(t *testing.T, v Verdict) {
				assert.Equal(t, 1, v.Lost, v.Problems)
				assert.Equal(t, 1, v.DiskVsWitness, "the audit names a writer the disk does not hold")
			},
		},
		{
			desc: "a refused write is on the disk",
			build: func(s *scene) {
				s.write("alpha", 1, 1, 0, isidA, refused)
				s.disk[0] = Block{Stamp: stamp.Stamp{Node: "alpha", Gen: 1, Seq: 1, LBA: 0}}
			},
			check: func(t *testing.T, v Verdict) {
				assert.Equal(t, 1, v.Unexpected, v.Problems)
				assert.Equal(t, 1, v.DiskVsWitness)
			},
		},
		{
			desc: "acknowledged but not in the audit, and no kill to excuse it",
			build: func(s *scene) {
				s.write("alpha", 1, 1, 0, isidA, acked)
				s.write("alpha", 1, 2, 1, isidA, acked)
				s.recs = s.recs[:1+1] // the audit lost the second write
			},
			check: func(t *testing.T, v Verdict) {
				assert.Equal(t, 1, v.AckedUnaudited, v.Problems)
				assert.Equal(t, 0, v.LostWithKill)
			},
		},
		{
			desc: "the audit's tail went with a SIGKILL of the target",
			build: func(s *scene) {
				s.write("alpha", 1, 1, 0, isidA, acked)
				s.write("alpha", 1, 2, 1, isidA, acked)
				s.recs = s.recs[:1+1]
				s.recs = append(s.recs, audit.Record{Kind: audit.KindStart, Time: s.tick()})
				s.write("alpha", 1, 3, 2, isidA, acked)
			},
			check: func(t *testing.T, v Verdict) {
				assert.Equal(t, 0, v.AckedUnaudited, v.Problems)
				assert.Equal(t, 1, v.LostWithKill)
				assert.Equal(t, 1, v.DiskVsWitness, "LBA 1 holds a write the audit does not know")
			},
		},
		{
			desc: "an unflushed plain write lost in a power cut is allowed",
			build: func(s *scene) {
				s.write("alpha", 1, 1, 0, isidA, acked)
				s.write("alpha", 1, 2, 0, isidA, vanished)
				s.events[len(s.events)-1].FUA = false
				s.recs[len(s.recs)-1].Flags = 0
			},
			check: func(t *testing.T, v Verdict) {
				assert.True(t, v.OK(), v.Problems)
			},
		},
		{
			desc: "an incomplete audit proves nothing",
			build: func(s *scene) {
				s.write("alpha", 1, 1, 0, isidA, acked)
				s.recs = append(s.recs, audit.Record{Kind: audit.KindDropped, Time: s.tick(), Dropped: 7})
			},
			check: func(t *testing.T, v Verdict) {
				assert.False(t, v.OK())
				assert.Equal(t, uint64(7), v.Dropped)
			},
		},
	}
	for _, tc := range tests {
		t.Run(tc.desc, func(t *testing.T) {
			s := newScene()
			tc.build(s)
			tc.check(t, s.judge())
		})
	}
}
