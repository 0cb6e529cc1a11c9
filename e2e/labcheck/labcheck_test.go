package labcheck

import (
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/tandem-ha/tandem/target/audit"
)

var t0 = time.Date(2026, 12, 1, 10, 0, 0, 0, time.UTC)

func at(ms int) time.Time { return t0.Add(time.Duration(ms) * time.Millisecond) }

func put(seq, start, end int, o Outcome) Put {
	return Put{Seq: seq, Start: at(start), End: at(end), Outcome: o}
}

// clean is a run with a failover: message 3 timed out (Info) and was put
// again, and both copies landed; message 4 was refused once.
func clean() History {
	return History{
		Puts: []Put{
			put(1, 0, 10, OK), put(2, 50, 60, OK),
			put(3, 100, 1100, Info), put(3, 1150, 1160, Fail), put(3, 1200, 1900, OK),
			put(4, 1950, 2000, Fail), put(4, 2050, 2060, OK),
		},
		Final: []int{1, 2, 3, 3, 4},
		Mounts: Intervals([]Event{
			{At: at(-5000), Node: "MQMaster", Kind: Mounted},
			{At: at(120), Node: "MQMaster", Kind: PoweredOff},
			{At: at(1500), Node: "MQSlave", Kind: Mounted},
		}),
		FsckClean: true,
	}
}

func TestCheckPasses(t *testing.T) {
	r := Check(clean())
	assert.True(t, r.OK(), "%v", r.Problems)
	assert.Equal(t, 4, r.Acked)
	assert.Equal(t, []int{3}, r.Duplicated, "the timed-out put explains the second copy")
	assert.Empty(t, r.BadDuplicates)
	assert.Empty(t, r.DualMounts)
}

// TestCheckNegativeControls breaks one rule at a time: each must fail.
func TestCheckNegativeControls(t *testing.T) {
	for _, tc := range []struct {
		desc   string
		mutate func(*History)
		want   string
	}{
		{"acknowledged message lost", func(h *History) { h.Final = []int{1, 3, 3, 4} }, "1 acknowledged messages lost: [2]"},
		{"duplicate without an unacknowledged put", func(h *History) { h.Final = append(h.Final, 1) }, "duplicated with no unacknowledged put"},
		{"a refused put does not explain a copy", func(h *History) { h.Final = append(h.Final, 4) }, "duplicated with no unacknowledged put"},
		{"phantom message", func(h *History) { h.Final = append(h.Final, 99) }, "never put"},
		{"dual mount", func(h *History) {
			h.Mounts = Intervals([]Event{
				{At: at(-5000), Node: "MQMaster", Kind: Mounted},
				{At: at(1500), Node: "MQSlave", Kind: Mounted},
				{At: at(1700), Node: "MQMaster", Kind: Unmounted},
			})
		}, "dual mount: MQMaster and MQSlave"},
		{"dual mount, both still mounted", func(h *History) {
			h.Mounts = Intervals([]Event{
				{At: at(-5000), Node: "MQMaster", Kind: Mounted},
				{At: at(1500), Node: "MQSlave", Kind: Mounted},
			})
		}, "dual mount"},
		{"fsck not clean", func(h *History) { h.FsckClean, h.FsckOutput = false, "Free blocks count wrong" }, "Free blocks count wrong"},
	} {
		t.Run(tc.desc, func(t *testing.T) {
			h := clean()
			tc.mutate(&h)
			r := Check(h)
			require.False(t, r.OK())
			assert.Contains(t, r.Problems[0], tc.want)
		})
	}
}

func TestIntervals(t *testing.T) {
	ms := Intervals([]Event{
		{At: at(30), Node: "a", Kind: Unmounted}, // unmount of nothing: ignored
		{At: at(10), Node: "a", Kind: Mounted},
		{At: at(15), Node: "a", Kind: Mounted}, // already mounted
		{At: at(20), Node: "a", Kind: Unmounted},
		{At: at(25), Node: "b", Kind: Mounted},
	})
	assert.Equal(t, []Mount{{Node: "a", From: at(10), To: at(20)}, {Node: "b", From: at(25)}}, ms)
	assert.Empty(t, Overlaps(ms), "back to back is not overlap")
}

func TestFirstAckAndGap(t *testing.T) {
	h := clean()
	assert.Equal(t, at(1900), FirstAckAfter(h.Puts, at(120)))
	assert.True(t, FirstAckAfter(h.Puts, at(5000)).IsZero())
	assert.Equal(t, 1840*time.Millisecond, LongestGap(h.Puts, at(0), at(2100)))
	assert.Equal(t, at(2060), LastEnd(h.Puts))
	assert.True(t, LastEnd(nil).IsZero())
}

const iqnM, iqnS = "iqn.2026-12.io.tandem:mqmaster", "iqn.2026-12.io.tandem:mqslave"

func write(ini, holder string, gen uint32, status byte) audit.Record {
	return audit.Record{Kind: audit.KindWrite, Status: status, LBA: 8, Blocks: 8, Generation: gen,
		Initiator: ini, ResType: 5, HolderInitiator: holder}
}

// fencedRun: the master's agent died with the filesystem mounted; the
// slave fenced it (generation 3 -> 4) and mounted; the master's later
// writes were refused with RESERVATION CONFLICT.
func fencedRun() History {
	h := clean()
	h.Mounts = Intervals([]Event{
		{At: at(-5000), Node: "MQMaster", Kind: Mounted},
		{At: at(1500), Node: "MQSlave", Kind: Mounted},
	})
	h.Fences = []Fence{{Node: "MQMaster", At: at(1400)}}
	h.Initiators = map[string]string{"MQMaster": iqnM, "MQSlave": iqnS}
	h.Audit = []audit.Record{
		{Kind: audit.KindStart},
		write(iqnM, iqnM, 3, audit.StatusGood),
		write(iqnS, iqnS, 4, audit.StatusGood),
		write(iqnM, iqnS, 4, audit.StatusReservationConflict),
		write(iqnS, iqnS, 4, audit.StatusGood),
	}
	return h
}

func TestFencedOverlapIsNotADualMount(t *testing.T) {
	r := Check(fencedRun())
	assert.True(t, r.OK(), "%v", r.Problems)
	assert.Empty(t, r.DualMounts)
	assert.Len(t, r.FencedOverlaps, 1)
	assert.Equal(t, []TargetFence{{Initiator: iqnM, Gen: 4, From: 2, To: 5}}, TargetFences(fencedRun().Audit))

	// A failback: the master holds the reservation again and writes.
	h := fencedRun()
	h.Audit = append(h.Audit, write(iqnM, iqnM, 6, audit.StatusGood), write(iqnM, iqnM, 6, audit.StatusGood))
	r = Check(h)
	assert.True(t, r.OK(), "%v", r.Problems)
}

// TestFenceNegativeControls: each breaks the fence evidence and must fail.
func TestFenceNegativeControls(t *testing.T) {
	for _, tc := range []struct {
		desc   string
		mutate func(*History)
		want   string
	}{
		{"fenced node's write accepted", func(h *History) {
			h.Audit = append(h.Audit, write(iqnM, iqnS, 4, audit.StatusGood))
		}, "accepted a write from " + iqnM + " after it was fenced"},
		{"fence not seen at the target", func(h *History) {
			h.Audit = []audit.Record{write(iqnM, iqnM, 3, audit.StatusGood), write(iqnM, iqnM, 3, audit.StatusGood)}
		}, "shows no reservation taken from it"},
		{"no fence reported: the overlap is a dual mount", func(h *History) { h.Fences = nil }, "dual mount: MQMaster and MQSlave"},
		{"fence after the overlap began", func(h *History) { h.Fences[0].At = at(1600) }, "dual mount"},
		{"no audit: nothing excuses the overlap", func(h *History) { h.Audit = nil }, "dual mount"},
		{"audit lost records", func(h *History) {
			h.Audit = append(h.Audit, audit.Record{Kind: audit.KindDropped, Dropped: 2})
		}, "audit lost 2 records"},
	} {
		t.Run(tc.desc, func(t *testing.T) {
			h := fencedRun()
			tc.mutate(&h)
			r := Check(h)
			require.False(t, r.OK())
			assert.Contains(t, strings.Join(r.Problems, "\n"), tc.want)
		})
	}
}
