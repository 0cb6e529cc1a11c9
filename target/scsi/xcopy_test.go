package scsi

import (
	"bytes"
	"encoding/binary"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/tandem-ha/tandem/target/backstore"
	wscsi "github.com/tandem-ha/tandem/wire/scsi"
)

var (
	wantTooManyTgt   = senseWant{wscsi.SenseIllegalRequest, 0x26, 0x06}
	wantBadTgtType   = senseWant{wscsi.SenseIllegalRequest, 0x26, 0x07}
	wantTooManySeg   = senseWant{wscsi.SenseIllegalRequest, 0x26, 0x08}
	wantBadSegType   = senseWant{wscsi.SenseIllegalRequest, 0x26, 0x09}
	wantInProgress   = senseWant{wscsi.SenseIllegalRequest, 0x00, 0x16}
	wantCopyAborted  = senseWant{senseCopyAborted, 0x00, 0x00}
	wantUnreachable  = senseWant{senseCopyAborted, 0x08, 0x04}
	wantBadParamList = wantBadParam
)

// addLU maps a second (or further) LU of blocks blocks at lun.
func addLU(t *testing.T, tgt *Target, lun uint64, cfg LUConfig) *LU {
	t.Helper()
	be, err := backstore.Open(filepath.Join(t.TempDir(), "lu.img"), backstore.Options{Create: true, Size: testBlocks * 512})
	require.NoError(t, err)
	lu, err := NewLU(cfg, be)
	require.NoError(t, err)
	t.Cleanup(func() { lu.Close() })
	require.NoError(t, tgt.AddLU(lun, lu))
	return lu
}

// identDesc is an identification descriptor CSCD descriptor naming lu by
// its NAA designator, as an initiator copies it from VPD 0x83.
func identDesc(lu *LU) []byte {
	d := make([]byte, 32)
	d[0] = xcTgtIdent
	copy(d[4:], []byte{0x01, 0x03, 0, 8})
	copy(d[8:], lu.naa[:])
	d[29], d[30], d[31] = byte(lu.bs>>16), byte(lu.bs>>8), byte(lu.bs)
	return d
}

func b2b(src, dst, n uint16, srcLBA, dstLBA uint64) []byte {
	d := make([]byte, 28)
	d[0], d[3] = xcSegBlockToBlock, 0x18
	binary.BigEndian.PutUint16(d[4:], src)
	binary.BigEndian.PutUint16(d[6:], dst)
	binary.BigEndian.PutUint16(d[10:], n)
	binary.BigEndian.PutUint64(d[12:], srcLBA)
	binary.BigEndian.PutUint64(d[20:], dstLBA)
	return d
}

// xcParams is an EXTENDED COPY parameter list; b1 is byte 1 (LIST ID
// USAGE in bits 4-3).
func xcParams(id, b1 byte, tgts, segs [][]byte) []byte {
	tl, sl := bytes.Join(tgts, nil), bytes.Join(segs, nil)
	p := make([]byte, 16, 16+len(tl)+len(sl))
	p[0], p[1] = id, b1
	binary.BigEndian.PutUint16(p[2:], uint16(len(tl)))
	binary.BigEndian.PutUint32(p[8:], uint32(len(sl)))
	return append(append(p, tl...), sl...)
}

func xcopyCDB(n int) []byte {
	c := make([]byte, 16)
	c[0] = wscsi.OpExtendedCopy
	binary.BigEndian.PutUint32(c[10:], uint32(n))
	return c
}

func rcrCDB(sa, id byte, alloc uint32) []byte {
	c := make([]byte, 16)
	c[0], c[1], c[2] = wscsi.OpReceiveCopyResults, sa, id
	binary.BigEndian.PutUint32(c[10:], alloc)
	return c
}

func xcopy(tgt *Target, n *Nexus, p []byte) Result {
	return runAs(tgt, n, xcopyCDB(len(p)), p, 0)
}

func fill(t *testing.T, tgt *Target, lun uint64, lba uint32, n uint16, b byte) []byte {
	t.Helper()
	data := bytes.Repeat([]byte{b}, int(n)*512)
	for i := range data {
		data[i] += byte(i / 512) // each block differs
	}
	check(t, run(tgt, lun, cdb10(wscsi.OpWrite10, 0, lba, n), data, 0), wantGood)
	return data
}

func readBack(t *testing.T, tgt *Target, lun uint64, lba uint32, n uint16) []byte {
	t.Helper()
	r := run(tgt, lun, cdb10(wscsi.OpRead10, 0, lba, n), nil, uint32(n)*512)
	check(t, r, wantGood)
	return r.DataIn
}

func TestExtendedCopyAcrossLUs(t *testing.T) {
	tgt, lu0 := newTestTarget(t, LUConfig{})
	lu1 := addLU(t, tgt, 1, LUConfig{Serial: "SER0002"})
	data := fill(t, tgt, 0, 0, 8, 'a')
	// Issued to LU 0, copying LU 0 -> LU 1 and LU 1 -> LU 1.
	p := xcParams(1, 0, [][]byte{identDesc(lu0), identDesc(lu1)},
		[][]byte{b2b(0, 1, 8, 0, 100), b2b(1, 1, 4, 100, 200)})
	check(t, xcopy(tgt, nil, p), wantGood)
	assert.Equal(t, data, readBack(t, tgt, 1, 100, 8))
	assert.Equal(t, data[:4*512], readBack(t, tgt, 1, 200, 4))
	assert.Equal(t, make([]byte, 8*512), readBack(t, tgt, 0, 100, 8), "source LU untouched elsewhere")

	// The status is held for RECEIVE COPY RESULTS (LIST ID USAGE 00b).
	r := run(tgt, 0, rcrCDB(wscsi.SACopyStatus, 1, 64), nil, 64)
	check(t, r, wantGood)
	require.Len(t, r.DataIn, 12)
	assert.Equal(t, uint32(8), binary.BigEndian.Uint32(r.DataIn))
	assert.Equal(t, byte(copyDone), r.DataIn[4])
	assert.Equal(t, uint16(2), binary.BigEndian.Uint16(r.DataIn[5:]))
	assert.Equal(t, byte(0), r.DataIn[7], "bytes")
	assert.Equal(t, uint32(12*512), binary.BigEndian.Uint32(r.DataIn[8:]))
}

func TestExtendedCopyOverlapping(t *testing.T) {
	tgt, lu := newTestTarget(t, LUConfig{})
	const n = 64
	data := fill(t, tgt, 0, 0, n, 'x')
	up := xcParams(0, 0x18, [][]byte{identDesc(lu)}, [][]byte{b2b(0, 0, n, 0, 7)})
	check(t, xcopy(tgt, nil, up), wantGood)
	assert.Equal(t, data, readBack(t, tgt, 0, 7, n))
	down := xcParams(0, 0x18, [][]byte{identDesc(lu)}, [][]byte{b2b(0, 0, n, 7, 3)})
	check(t, xcopy(tgt, nil, down), wantGood)
	assert.Equal(t, data, readBack(t, tgt, 0, 3, n))
	// A buffer of a few blocks makes many chunks, so their order matters.
	buf := make([]byte, 5*512)
	require.NoError(t, copyBlocks(xcStep{src: lu, dst: lu, srcLBA: 3, dstLBA: 20, blocks: n}, buf))
	assert.Equal(t, data, readBack(t, tgt, 0, 20, n))
	require.NoError(t, copyBlocks(xcStep{src: lu, dst: lu, srcLBA: 20, dstLBA: 11, blocks: n}, buf))
	assert.Equal(t, data, readBack(t, tgt, 0, 11, n))
}

func TestExtendedCopyErrors(t *testing.T) {
	tgt, lu := newTestTarget(t, LUConfig{})
	ro := addLU(t, tgt, 1, LUConfig{Serial: "SER-RO", ReadOnly: true})
	big := addLU(t, tgt, 2, LUConfig{Serial: "SER-4K", BlockSize: 4096})
	me := identDesc(lu)
	seg := b2b(0, 0, 8, 0, 100)
	good := xcParams(0, 0, [][]byte{me}, [][]byte{seg})
	times := func(d []byte, n int) [][]byte {
		out := make([][]byte, n)
		for i := range out {
			out[i] = d
		}
		return out
	}
	tgts := func(n int) [][]byte { return times(me, n) }
	segs := func(n int) [][]byte { return times(seg, n) }
	mod := func(p []byte, at int, v byte) []byte {
		p = bytes.Clone(p)
		p[at] = v
		return p
	}
	unknown := identDesc(lu)
	unknown[8] ^= 0xff
	shortSeg := mod(good, 16+32+3, 0x14)
	tests := []struct {
		desc string
		cdb  []byte
		p    []byte
		want senseWant
	}{
		{"empty list", xcopyCDB(0), nil, wantGood},
		{"LID4 service action", mod(xcopyCDB(len(good)), 1, 0x01), good, wantBadCDB},
		{"short data-out", xcopyCDB(len(good) + 1), good, wantShortData},
		{"header only part", xcopyCDB(15), good[:15], wantParamLength},
		{"target descriptor cut", xcopyCDB(16 + 31), good[:16+31], wantParamLength},
		{"segment descriptor cut", xcopyCDB(len(good) - 1), good[:len(good)-1], wantParamLength},
		{"too many targets", nil, xcParams(0, 0, tgts(xcMaxTargetDescs+1), segs(1)), wantTooManyTgt},
		{"too many segments", nil, xcParams(0, 0, tgts(1), segs(xcMaxSegmentDescs+1)), wantTooManySeg},
		{"descriptor list too long", nil, xcParams(0, 0, tgts(xcMaxTargetDescs+1), segs(31)), wantParamLength},
		{"fibre channel target", nil, mod(good, 16, 0xe0), wantBadTgtType},
		{"unknown target type", nil, mod(good, 16, 0x42), wantBadTgtType},
		{"stream to stream segment", nil, mod(good, 16+32, 0x03), wantBadSegType},
		{"segment length", nil, shortSeg, wantBadParamList},
		{"reserved list id usage", nil, mod(good, 1, 0x08), wantBadParamList},
		{"no list id but an id", nil, xcParams(5, 0x18, [][]byte{me}, [][]byte{seg}), wantBadParamList},
		{"designator too long", nil, mod(good, 16+7, 21), wantBadParamList},
		{"bad destination index", nil, xcParams(0, 0, [][]byte{me}, [][]byte{b2b(0, 1, 8, 0, 0)}), wantUnreachable},
		{"bad source index", nil, xcParams(0, 0, [][]byte{me}, [][]byte{b2b(7, 0, 8, 0, 0)}), wantUnreachable},
		{"unknown LU", nil, xcParams(0, 0, [][]byte{unknown}, [][]byte{seg}), wantUnreachable},
		{"not a block device", nil, mod(good, 17, 0x01), wantUnreachable},
		{"block length", nil, mod(good, 16+30, 0x04), wantCopyAborted},
		{"source beyond end", nil, xcParams(0, 0, [][]byte{me}, [][]byte{b2b(0, 0, 8, testBlocks-1, 0)}), wantCopyAborted},
		{"destination beyond end", nil, xcParams(0, 0, [][]byte{me}, [][]byte{b2b(0, 0, 8, 0, testBlocks-7)}), wantCopyAborted},
		{"block sizes differ", nil, xcParams(0, 0, [][]byte{me, identDesc(big)}, [][]byte{b2b(0, 1, 8, 0, 0)}), wantCopyAborted},
		{"write protected destination", nil, xcParams(0, 0, [][]byte{me, identDesc(ro)}, [][]byte{b2b(0, 1, 8, 0, 0)}), wantProtected},
		{"read only source is fine", nil, xcParams(0, 0, [][]byte{identDesc(ro), me}, [][]byte{b2b(0, 1, 8, 0, 0)}), wantGood},
		{"no segments", nil, xcParams(0, 0, [][]byte{me}, nil), wantGood},
		{"zero blocks", nil, xcParams(0, 0, [][]byte{me}, [][]byte{b2b(0, 0, 0, 0, 1)}), wantGood},
	}
	for _, tc := range tests {
		t.Run(tc.desc, func(t *testing.T) {
			cdb := tc.cdb
			if cdb == nil {
				cdb = xcopyCDB(len(tc.p))
			}
			check(t, runAs(tgt, nil, cdb, tc.p, 0), tc.want)
		})
	}
}

func TestExtendedCopyReservation(t *testing.T) {
	tgt, lu0 := newPRTarget(t, "")
	lu1 := addLU(t, tgt, 1, LUConfig{Serial: "SER0002"})
	clearUA(t, tgt, nexA, nexB)
	for _, n := range []*Nexus{nexA, nexB} {
		for range maxPendingUAs + 1 {
			if runAs1(tgt, n, make([]byte, 6)).Status == wscsi.StatusGood {
				break
			}
		}
	}
	// B reserves LU 1 (SPC-2 RESERVE(6)): A may not copy into it through
	// LU 0, but may copy out of LU 0 into LU 0.
	require.Equal(t, byte(wscsi.StatusGood), runAs1(tgt, nexB, []byte{wscsi.OpReserve6, 0, 0, 0, 0, 0}).Status)
	into := xcParams(0, 0x18, [][]byte{identDesc(lu0), identDesc(lu1)}, [][]byte{b2b(0, 1, 1, 0, 0)})
	assert.Equal(t, byte(wscsi.StatusReservationConflict), xcopy(tgt, nexA, into).Status)
	outOf := xcParams(0, 0x18, [][]byte{identDesc(lu1), identDesc(lu0)}, [][]byte{b2b(0, 1, 1, 0, 0)})
	assert.Equal(t, byte(wscsi.StatusReservationConflict), xcopy(tgt, nexA, outOf).Status)
	check(t, xcopy(tgt, nexB, into), wantGood)
	within := xcParams(0, 0x18, [][]byte{identDesc(lu0)}, [][]byte{b2b(0, 0, 1, 0, 1)})
	check(t, xcopy(tgt, nexA, within), wantGood)
}

// runAs1 is runAs on LUN 1.
func runAs1(tgt *Target, n *Nexus, cdb []byte) Result {
	return tgt.Execute(&Task{Nexus: n, LUN: 1, CDB: cdb, DataIn: make([]byte, 0, 64), ExpectedLength: 64})
}

func TestReceiveCopyResults(t *testing.T) {
	tgt, lu := newPRTarget(t, "")
	clearUA(t, tgt, nexA, nexB)
	status := func(n *Nexus, id byte) Result { return runAs(tgt, n, rcrCDB(wscsi.SACopyStatus, id, 1024), nil, 1024) }

	// Nothing held yet: INVALID FIELD IN CDB.
	check(t, status(nexA, 1), wantBadCDB)

	ok := xcParams(1, 0x10, [][]byte{identDesc(lu)}, [][]byte{b2b(0, 0, 8, 0, 100)}) // hold status only
	check(t, xcopy(tgt, nexA, ok), wantGood)
	r := status(nexA, 1)
	check(t, r, wantGood)
	assert.Equal(t, byte(copyDone), r.DataIn[4])
	check(t, status(nexB, 1), wantBadCDB) // per nexus

	bad := xcParams(2, 0, [][]byte{identDesc(lu)}, [][]byte{b2b(0, 0, 8, 0, testBlocks)})
	check(t, xcopy(tgt, nexA, bad), wantCopyAborted)
	r = status(nexA, 2)
	check(t, r, wantGood)
	assert.Equal(t, byte(copyFailed), r.DataIn[4])
	assert.Equal(t, uint16(0), binary.BigEndian.Uint16(r.DataIn[5:]))

	// A list error is not a copy: nothing is held for it.
	check(t, xcopy(tgt, nexA, mod1(bad, 16, 0xe0, 3)), wantBadTgtType)
	check(t, status(nexA, 3), wantBadCDB)

	// LIST ID USAGE 11b holds nothing.
	none := xcParams(0, 0x18, [][]byte{identDesc(lu)}, [][]byte{b2b(0, 0, 8, 0, 100)})
	check(t, xcopy(tgt, nexA, none), wantGood)
	check(t, status(nexA, 0), wantBadCDB)

	// A copy with the list identifier of a running one is refused.
	key := keyOf(nexA)
	require.False(t, lu.copies.begin(key, 9).failed())
	check(t, xcopy(tgt, nexA, mod1(ok, 1, 0x10, 9)), wantInProgress)
	r = status(nexA, 9)
	check(t, r, wantGood)
	assert.Equal(t, byte(copyInProgress), r.DataIn[4])

	// Nexus loss discards what was held.
	tgt.NexusLoss(nexA)
	clearUA(t, tgt, nexA)
	check(t, status(nexA, 1), wantBadCDB)

	// Allocation length truncates.
	r = runAs(tgt, nexB, rcrCDB(wscsi.SAOperatingParameters, 0, 10), nil, 10)
	check(t, r, wantGood)
	assert.Len(t, r.DataIn, 10)
	// Other service actions are not offered.
	check(t, runAs(tgt, nexB, rcrCDB(0x01, 0, 64), nil, 64), wantBadCDB)
}

// mod1 sets byte at of a copy of p to v, and byte 0 (the list
// identifier) to id.
func mod1(p []byte, at int, v, id byte) []byte {
	p = bytes.Clone(p)
	p[at], p[0] = v, id
	return p
}

func TestOperatingParameters(t *testing.T) {
	tgt, _ := newTestTarget(t, LUConfig{})
	r := run(tgt, 0, rcrCDB(wscsi.SAOperatingParameters, 0, 1024), nil, 1024)
	check(t, r, wantGood)
	b := r.DataIn
	require.Len(t, b, 46)
	assert.Equal(t, uint32(42), binary.BigEndian.Uint32(b))
	assert.Equal(t, uint16(xcMaxTargetDescs), binary.BigEndian.Uint16(b[8:]))
	assert.Equal(t, uint16(xcMaxSegmentDescs), binary.BigEndian.Uint16(b[10:]))
	assert.Equal(t, uint32(xcMaxDescListLen), binary.BigEndian.Uint32(b[12:]))
	assert.Equal(t, []byte{xcSegBlockToBlock, xcTgtIdent}, b[44:])
	// Everything the limits allow fits the descriptor list length.
	assert.LessOrEqual(t, xcMaxTargetDescs*xcTgtDescLen+xcMaxSegmentDescs*xcSegB2BLen, xcMaxDescListLen)
}

func TestCopyStatusUnits(t *testing.T) {
	b := copyStatusData(copyRecord{status: copyDone, segments: 3, bytes: 5 << 40})
	assert.Equal(t, byte(2), b[7]) // MiB: the smallest unit that fits
	assert.Equal(t, uint32(5<<20), binary.BigEndian.Uint32(b[8:]))
}

func TestThirdPartyCopyReporting(t *testing.T) {
	tgt, _ := newTestTarget(t, LUConfig{})
	r := run(tgt, 0, []byte{wscsi.OpInquiry, 0, 0, 0, 96, 0}, nil, 96)
	check(t, r, wantGood)
	assert.Equal(t, byte(0x08), r.DataIn[5]&0x08, "3PC")

	r = run(tgt, 0, []byte{wscsi.OpInquiry, 1, 0, 0, 255, 0}, nil, 255)
	check(t, r, wantGood)
	assert.Contains(t, string(r.DataIn[4:]), "\x8f")

	r = run(tgt, 0, []byte{wscsi.OpInquiry, 1, 0x8f, 0, 255, 0}, nil, 255)
	check(t, r, wantGood)
	page := r.DataIn
	require.Equal(t, byte(0x8f), page[1])
	require.Equal(t, int(binary.BigEndian.Uint16(page[2:]))+4, len(page))
	var types []uint16
	for b := page[4:]; len(b) > 0; {
		require.GreaterOrEqual(t, len(b), 4)
		n := 4 + int(binary.BigEndian.Uint16(b[2:]))
		require.LessOrEqual(t, n, len(b))
		assert.Zero(t, (n-4)%4, "descriptor length is a multiple of 4")
		types = append(types, binary.BigEndian.Uint16(b))
		b = b[n:]
	}
	assert.Equal(t, []uint16{0x0001, 0x0004, 0x0008}, types)

	for _, c := range [][]byte{rsoc(2, wscsi.OpExtendedCopy, 0, 0), rsoc(2, wscsi.OpReceiveCopyResults, 3, 0)} {
		r = run(tgt, 0, c, nil, 64)
		check(t, r, wantGood)
		assert.Equal(t, byte(0x03), r.DataIn[1]&0x07, "supported")
		assert.Equal(t, c[3], r.DataIn[4])
	}
}

func FuzzParseXCopy(f *testing.F) {
	lu := &LU{bs: 512, blocks: testBlocks}
	copy(lu.naa[:], "\x30abcdefg")
	f.Add(xcParams(1, 0, [][]byte{identDesc(lu)}, [][]byte{b2b(0, 0, 8, 0, 100)}))
	f.Add(xcParams(1, 0x18, [][]byte{identDesc(lu), identDesc(lu)}, [][]byte{b2b(0, 1, 8, 0, 100), b2b(1, 0, 1, 2, 3)}))
	f.Add(xcParams(0, 0, [][]byte{make([]byte, 64)}, nil))
	f.Add([]byte{0, 0, 0xff, 0xff, 0, 0, 0, 0, 0xff, 0xff, 0xff, 0xff, 0, 0, 0, 0})
	f.Fuzz(func(t *testing.T, p []byte) {
		l, fl := parseXCopy(p)
		if fl.failed() {
			_, err := wscsi.ParseSense(senseData(fl, false))
			require.NoError(t, err)
			return
		}
		assert.LessOrEqual(t, len(l.targets), xcMaxTargetDescs)
		assert.LessOrEqual(t, len(l.segments), xcMaxSegmentDescs)
		for _, d := range l.targets {
			assert.LessOrEqual(t, len(d.designator), 24)
		}
	})
}
