package scsi

import (
	"bytes"
	"sync"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/tandem-ha/tandem/target/audit"
	wscsi "github.com/tandem-ha/tandem/wire/scsi"
)

// recorder is an Auditor that keeps the records in memory.
type recorder struct {
	mu   sync.Mutex
	recs []audit.Record
}

func (r *recorder) Append(rec audit.Record) {
	r.mu.Lock()
	r.recs = append(r.recs, rec)
	r.mu.Unlock()
}

func (r *recorder) all() []audit.Record {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]audit.Record(nil), r.recs...)
}

func nexusOf(n *Nexus) audit.Nexus { return audit.Nexus{Initiator: n.Initiator, ISID: n.ISID} }

// TestAuditFence: the witness sees the fence as the target enforced it.
// Node A holds a Write Exclusive reservation, B preempts it; every write
// of A after that is recorded as a conflict with the new generation, and
// AcceptedAfterFence finds none accepted. Its negative control is the
// same history with the reservation never taken: A's writes go through
// and the checker reports them.
func TestAuditFence(t *testing.T) {
	for _, fenced := range []bool{true, false} {
		tgt, lu := newPRTarget(t, "")
		rec := &recorder{}
		lu.SetAuditor(rec)
		clearUA(t, tgt, nexA, nexB)
		block := bytes.Repeat([]byte{1}, 512)
		requireStatus(t, wscsi.StatusGood, prout(tgt, nexA, 0, 0, 0, 0xa, false))
		requireStatus(t, wscsi.StatusGood, prout(tgt, nexB, 0, 0, 0, 0xb, false))
		if fenced {
			requireStatus(t, wscsi.StatusGood, prout(tgt, nexA, 1, 1, 0xa, 0, false)) // RESERVE, WE
		}
		requireStatus(t, wscsi.StatusGood, runAs(tgt, nexA, cdb10(wscsi.OpWrite10, 0x08, 0, 1), block, 0))
		if fenced {
			requireStatus(t, wscsi.StatusGood, prout(tgt, nexB, 4, 1, 0xb, 0xa, false)) // PREEMPT A
		}
		lu.mu.RLock()
		fenceGen := lu.pr.Generation()
		lu.mu.RUnlock()
		clearUA(t, tgt, nexA)
		runAs(tgt, nexA, cdb10(wscsi.OpWrite10, 0, 1, 1), block, 0)
		runAs(tgt, nexB, cdb10(wscsi.OpWrite10, 0, 2, 1), block, 0)

		recs := rec.all()
		require.Len(t, recs, 3, "three writes, all recorded")
		first := recs[0]
		assert.Equal(t, uint8(audit.StatusGood), first.Status)
		assert.Equal(t, nexA.Initiator, first.Initiator)
		assert.Equal(t, nexA.ISID, first.ISID)
		assert.Equal(t, audit.FlagFUA, first.Flags)
		assert.Equal(t, byte(wscsi.OpWrite10), first.Op)
		assert.EqualValues(t, 0, first.LBA)
		assert.EqualValues(t, 1, first.Blocks)
		assert.NotZero(t, first.Seq)
		assert.Positive(t, first.Time)
		leaked := audit.AcceptedAfterFence(recs, nexusOf(nexA), fenceGen)
		if fenced {
			assert.Equal(t, byte(1), first.ResType)
			assert.Equal(t, portOf(nexA).Initiator, first.HolderInitiator)
			assert.Equal(t, uint8(audit.StatusReservationConflict), recs[1].Status)
			assert.Equal(t, fenceGen, recs[1].Generation)
			assert.Equal(t, uint8(audit.StatusGood), recs[2].Status)
			assert.Empty(t, leaked)
		} else {
			assert.Len(t, leaked, 2, "negative control: without the fence both writes of A are reported")
		}
	}
}

// TestAuditLastWriter: many nexuses write one block at once; the record
// the witness names as the last writer is the one whose data the block
// holds, whatever order the records were appended in.
func TestAuditLastWriter(t *testing.T) {
	tgt, lu := newPRTarget(t, "")
	rec := &recorder{}
	lu.SetAuditor(rec)
	const writers, rounds = 8, 50
	nexuses := make([]*Nexus, writers)
	for i := range nexuses {
		nexuses[i] = &Nexus{Initiator: "iqn.2025-01.test:w", ISID: [6]byte{0x80, 0, 0, 0, 1, byte(i)}, Target: prTarget, TPGT: 1}
		clearUA(t, tgt, nexuses[i])
	}
	var wg sync.WaitGroup
	for i, n := range nexuses {
		wg.Go(func() {
			block := bytes.Repeat([]byte{byte(i + 1)}, 1024)
			for range rounds {
				// Two blocks from 7 or from 8: overlapping, never equal.
				lba := uint32(7 + i%2)
				runAs(tgt, n, cdb10(wscsi.OpWrite10, 0, lba, 2), block, 0)
			}
		})
	}
	wg.Wait()
	recs := rec.all()
	require.Len(t, recs, writers*rounds)
	last := audit.LastWriters(recs, []uint64{7, 8, 9})
	for _, lba := range []uint32{7, 8, 9} {
		got := readBack(t, tgt, 0, lba, 1)[0]
		r := last[uint64(lba)]
		assert.Equal(t, byte(r.ISID[5]+1), got, "block %d", lba)
	}
}

// TestAuditCommandKinds: every WRITE-class command is recorded with its
// range; reads and other commands are not.
func TestAuditCommandKinds(t *testing.T) {
	tgt, lu := newTestTarget(t, LUConfig{Thin: true})
	lu1 := addLU(t, tgt, 1, LUConfig{Serial: "SER0002"})
	rec, rec1 := &recorder{}, &recorder{}
	lu.SetAuditor(rec)
	lu1.SetAuditor(rec1)
	block := bytes.Repeat([]byte{7}, 512)
	check(t, run(tgt, 0, cdb16(wscsi.OpWrite16, 0, 10, 2), bytes.Repeat(block, 2), 0), wantGood)
	check(t, run(tgt, 0, cdb10(wscsi.OpRead10, 0, 10, 2), nil, 1024), wantGood)
	check(t, run(tgt, 0, cdb16(wscsi.OpWriteSame16, 0x08, 20, 4), block, 0), wantGood)
	check(t, run(tgt, 0, caw(30, 1, 0x08), append(make([]byte, 512), block...), 0), wantGood)
	check(t, run(tgt, 0, make10(wscsi.OpUnmap), nil, 0), wantGood) // empty list
	u := unmapList(40, 3)
	ucdb := make10(wscsi.OpUnmap)
	ucdb[8] = byte(len(u))
	check(t, run(tgt, 0, ucdb, u, 0), wantGood)
	check(t, run(tgt, 0, cdb10(wscsi.OpWrite10, 0, testBlocks, 1), block, 0), wantOOB)
	p := xcParams(1, 0, [][]byte{identDesc(lu), identDesc(lu1)}, [][]byte{b2b(0, 1, 8, 0, 100)})
	check(t, xcopy(tgt, nil, p), wantGood)
	lu.SetAuditor(nil)
	check(t, run(tgt, 0, cdb16(wscsi.OpWrite16, 0, 10, 1), block, 0), wantGood)

	type row struct {
		op          byte
		lba, blocks uint64
		flags       byte
		status      byte
		key, asc    byte
	}
	var got []row
	for _, r := range rec.all() {
		got = append(got, row{r.Op, r.LBA, r.Blocks, r.Flags, r.Status, r.SenseKey, r.ASC})
	}
	assert.Equal(t, []row{
		{op: wscsi.OpWrite16, lba: 10, blocks: 2},
		{op: wscsi.OpWriteSame16, lba: 20, blocks: 4, flags: audit.FlagUnmap},
		{op: wscsi.OpCompareAndWrite, lba: 30, blocks: 1, flags: audit.FlagFUA},
		{op: wscsi.OpUnmap, flags: audit.FlagUnmap},
		{op: wscsi.OpUnmap, lba: 40, blocks: 3, flags: audit.FlagUnmap},
		{op: wscsi.OpWrite10, lba: testBlocks, blocks: 1, status: audit.StatusCheckCondition, key: wscsi.SenseIllegalRequest, asc: 0x21},
		{op: wscsi.OpExtendedCopy},
	}, got)
	segs := rec1.all()
	require.Len(t, segs, 1, "the copy's write is recorded on the LU it wrote")
	assert.Equal(t, audit.FlagCopy, segs[0].Flags)
	assert.EqualValues(t, 100, segs[0].LBA)
	assert.EqualValues(t, 8, segs[0].Blocks)
	assert.NotZero(t, segs[0].Seq)
}

func TestAuditAllocs(t *testing.T) {
	tgt, lu := newPRTarget(t, "")
	clearUA(t, tgt, nexA)
	lu.SetAuditor(&discard{})
	block := make([]byte, 512)
	task := &Task{Nexus: nexA, CDB: cdb10(wscsi.OpWrite10, 0, 3, 1), DataOut: block, ExpectedLength: 512}
	allocs := testing.AllocsPerRun(100, func() { tgt.Execute(task) })
	assert.Zero(t, allocs, "an audited write allocates nothing")
}

type discard struct{}

func (*discard) Append(audit.Record) {}
