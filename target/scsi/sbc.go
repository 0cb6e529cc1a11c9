package scsi

import (
	"bytes"

	wscsi "github.com/tandem-ha/tandem/wire/scsi"
)

// rwFields decodes LBA, transfer length and the flags byte of the
// READ/WRITE/VERIFY/PRE-FETCH/SYNCHRONIZE CACHE families (SBC-3 5.x), and
// the CDB byte where the length starts (for field pointers).
func rwFields(cdb []byte) (lba uint64, n uint32, flags byte, lenAt uint16) {
	switch len(cdbFor(cdb[0])) {
	case 6:
		lba = uint64(cdb[1]&0x1f)<<16 | uint64(get16(cdb[2:]))
		n = uint32(cdb[4])
		if n == 0 && (cdb[0] == wscsi.OpRead6 || cdb[0] == wscsi.OpWrite6) {
			n = 256 // SBC-3 5.8: zero means 256 blocks
		}
		return lba, n, 0, 4
	case 10:
		return uint64(get32(cdb[2:])), uint32(get16(cdb[7:])), cdb[1], 7
	case 12:
		return uint64(get32(cdb[2:])), get32(cdb[6:]), cdb[1], 6
	}
	return get64(cdb[2:]), get32(cdb[10:]), cdb[1], 10
}

func cdbFor(op byte) []byte {
	if c := byOpcode[op]; c != nil {
		return c.usage
	}
	return nil
}

// inRange reports whether [lba, lba+n) lies on the medium.
func (lu *LU) inRange(lba, n uint64) bool { return lba <= lu.blocks && n <= lu.blocks-lba }

var lbaOutOfRange = fail(reasonLBAOutOfRange)

func read(_ *Target, lu *LU, task *Task) outcome {
	lba, n, flags, lenAt := rwFields(task.CDB)
	if flags&0xe0 != 0 { // RDPROTECT without protection information
		return outcome{fail: badCDB(1, 7)}
	}
	if n > lu.maxXfer {
		return outcome{fail: badCDB(lenAt, -1)}
	}
	if !lu.inRange(lba, uint64(n)) {
		return outcome{fail: lbaOutOfRange}
	}
	size := int(n) << lu.shift
	buf := task.DataIn
	if cap(buf) < size {
		buf = make([]byte, size) // the initiator asked for less; the fabric reports overflow
	}
	buf = buf[:size]
	if size > 0 {
		if done, err := lu.readAt(buf, lba, uint64(n)); err != nil {
			return outcome{fail: lu.ioFailure(reasonReadError, err, lba, done), err: err}
		}
	}
	return outcome{data: buf}
}

// readAt reads blocks [lba, lba+n) into buf. While a WRITE ATOMIC is in
// progress it takes the range lock, so that it sees all or none of the
// atomic write (SBC-4 4.29); otherwise it runs unlocked. The two counters
// are a Dekker handshake: writeAtomic raises atomics and then waits for
// plainReads to drain, so every read either saw the raise or is waited
// for.
func (lu *LU) readAt(buf []byte, lba, n uint64) (int, error) {
	if lu.atomics.Load() == 0 {
		lu.plainReads.Add(1)
		if lu.atomics.Load() == 0 {
			done, err := lu.be.ReadAt(buf, int64(lba)<<lu.shift)
			lu.plainReads.Add(-1)
			return done, err
		}
		lu.plainReads.Add(-1)
	}
	id := lu.writers.lock(lba, n)
	done, err := lu.be.ReadAt(buf, int64(lba)<<lu.shift)
	lu.writers.unlock(id)
	return done, err
}

// write serves WRITE(6/10/12/16) and WRITE AND VERIFY(10/12/16).
func write(_ *Target, lu *LU, task *Task) outcome {
	cdb := task.CDB
	lba, n, flags, lenAt := rwFields(cdb)
	size := uint64(n) << lu.shift
	o := outcome{wanted: uint32(min(size, 1<<32-1))}
	verify := cdb[0] == wscsi.OpWriteVerify10 || cdb[0] == wscsi.OpWriteVerify12 || cdb[0] == wscsi.OpWriteVerify16
	switch {
	case flags&0xe0 != 0: // WRPROTECT without protection information
		o.fail = badCDB(1, 7)
	case n > lu.maxXfer:
		o.fail = badCDB(lenAt, -1)
	case !lu.inRange(lba, uint64(n)):
		o.fail = lbaOutOfRange
	case lu.writeProtected():
		o.fail = fail(reasonWriteProtected)
	case uint64(task.ExpectedLength) < size:
		// The initiator announced less data than the CDB needs (an
		// iSCSI residual overflow, RFC 7143 11.4.5.1): write the whole
		// blocks that arrived and let the fabric report the overflow,
		// as tgt and LIO do and libiscsi's residual tests expect.
		n = uint32(uint64(len(task.DataOut)) >> lu.shift)
		size = uint64(n) << lu.shift
	case uint64(len(task.DataOut)) < size:
		o.fail = fail(reasonInvalidFieldInIU)
	}
	if o.fail.failed() || n == 0 {
		return o
	}
	id := lu.lockWrite(task, lba, uint64(n))
	done, err := lu.be.WriteAt(task.DataOut[:size], int64(lba)<<lu.shift)
	lu.writers.unlock(id)
	if err != nil {
		o.fail, o.err = lu.ioFailure(reasonWriteError, err, lba, done), err
		return o
	}
	// WRITE AND VERIFY must reach the medium to be verified.
	if err := lu.durable(flags&0x08 != 0 || verify); err != nil {
		o.fail, o.err = syncFailure(err), err
	}
	return o
}

// verify serves VERIFY(10/12/16): BYTCHK 0 checks the range only, 1
// compares the data-out with the medium, 3 compares one block with each
// block (SBC-3 5.33, SBC-4).
func verify(_ *Target, lu *LU, task *Task) outcome {
	lba, n, flags, lenAt := rwFields(task.CDB)
	var o outcome
	bytchk := (flags >> 1) & 3
	switch bytchk {
	case 1:
		o.wanted = uint32(min(uint64(n)<<lu.shift, 1<<32-1))
	case 3:
		o.wanted = lu.bs
	}
	switch {
	case flags&0xe0 != 0:
		o.fail = badCDB(1, 7)
	case bytchk == 2:
		o.fail = badCDB(1, 2)
	case n > lu.maxXfer:
		o.fail = badCDB(lenAt, -1)
	case !lu.inRange(lba, uint64(n)):
		o.fail = lbaOutOfRange
	case bytchk != 0 && n != 0 && uint32(len(task.DataOut)) < o.wanted:
		o.fail = fail(reasonInvalidFieldInIU)
	}
	if o.fail.failed() || bytchk == 0 || n == 0 {
		return o
	}
	cur := make([]byte, int(n)<<lu.shift)
	if done, err := lu.be.ReadAt(cur, int64(lba)<<lu.shift); err != nil {
		o.fail, o.err = lu.ioFailure(reasonReadError, err, lba, done), err
		return o
	}
	want := task.DataOut[:o.wanted]
	for off := 0; off < len(cur); off += len(want) {
		if i := firstDiff(cur[off:off+len(want)], want); i >= 0 {
			o.fail = miscompare(uint64(off + i))
			return o
		}
	}
	return o
}

// firstDiff is the index of the first differing byte, or -1.
func firstDiff(a, b []byte) int {
	if bytes.Equal(a, b) {
		return -1
	}
	for i := range a {
		if a[i] != b[i] {
			return i
		}
	}
	return len(a)
}

func preFetch(_ *Target, lu *LU, task *Task) outcome {
	lba, n, _, _ := rwFields(task.CDB)
	if !lu.inRange(lba, uint64(n)) {
		return outcome{fail: lbaOutOfRange}
	}
	// The page cache does the prefetching; GOOD rather than CONDITION
	// MET since nothing is pinned (SBC-3 5.9).
	return outcome{}
}

func syncCache(_ *Target, lu *LU, task *Task) outcome {
	lba, n, _, _ := rwFields(task.CDB)
	if !lu.inRange(lba, uint64(n)) {
		return outcome{fail: lbaOutOfRange}
	}
	if err := lu.be.Sync(); err != nil {
		return outcome{fail: syncFailure(err), err: err}
	}
	return outcome{}
}

// readDefectData returns an empty defect list in the requested format
// (SBC-3 5.14, 5.15).
func readDefectData(_ *Target, _ *LU, task *Task) outcome {
	cdb := task.CDB
	if cdb[0] == wscsi.OpReadDefectData10 {
		return respond(task, []byte{0, cdb[2] & 0x1f, 0, 0}, uint32(get16(cdb[7:])))
	}
	return respond(task, []byte{0, cdb[1] & 0x1f, 0, 0, 0, 0, 0, 0}, get32(cdb[6:]))
}

func readCapacity10(_ *Target, lu *LU, task *Task) outcome {
	cdb := task.CDB
	if cdb[8]&0x01 == 0 && get32(cdb[2:]) != 0 { // LBA without PMI
		return outcome{fail: badCDB(2, -1)}
	}
	last := min(lu.blocks-1, 0xffffffff)
	b := be32(make([]byte, 0, 8), uint32(last))
	return respond(task, be32(b, lu.bs), 8)
}

func readCapacity16(_ *Target, lu *LU, task *Task) outcome {
	b := make([]byte, 32)
	put32(b, uint32((lu.blocks-1)>>32))
	put32(b[4:], uint32(lu.blocks-1))
	put32(b[8:], lu.bs)
	b[13] = lu.lbppbe
	if lu.cfg.Thin {
		b[14] = 0x80 // LBPME
		if lu.props.UnmapZeroes {
			b[14] |= 0x40 // LBPRZ
		}
	}
	return respond(task, b, get32(task.CDB[10:]))
}

// getLBAStatus reports mapped and deallocated extents from the LBA on
// (SBC-3 5.5).
func getLBAStatus(_ *Target, lu *LU, task *Task) outcome {
	cdb := task.CDB
	lba, alloc := get64(cdb[2:]), get32(cdb[10:])
	if lba >= lu.blocks {
		return outcome{fail: lbaOutOfRange}
	}
	maxDesc := 1
	if alloc > 24 {
		maxDesc = min(int(alloc-8)/16, 64)
	}
	b := make([]byte, 8, 8+16*maxDesc)
	for d := 0; d < maxDesc && lba < lu.blocks; d++ {
		n := min(lu.blocks-lba, 0xffffffff)
		status := byte(0) // mapped
		if lu.cfg.Thin && lu.mapper != nil {
			mapped, run, err := lu.mapper.Mapped(int64(lba)<<lu.shift, int64(n)<<lu.shift)
			if err != nil {
				return outcome{fail: fail(reasonReadError), err: err}
			}
			if !mapped {
				status = 1 // deallocated
			}
			n = max(1, min(n, (uint64(run)+uint64(lu.bs)-1)>>lu.shift))
		}
		b = be64(b, lba)
		b = be32(b, uint32(n))
		b = append(b, status, 0, 0, 0)
		lba += n
	}
	put32(b, uint32(len(b)-4))
	return respond(task, b, alloc)
}

// writeSame serves WRITE SAME(10/16), with UNMAP on thin LUs (SBC-3
// 5.41, 5.42).
func writeSame(_ *Target, lu *LU, task *Task) outcome {
	cdb := task.CDB
	ten := cdb[0] == wscsi.OpWriteSame10
	var (
		lba   uint64
		n     uint64
		lenAt uint16
	)
	if ten {
		lba, n, lenAt = uint64(get32(cdb[2:])), uint64(get16(cdb[7:])), 7
	} else {
		lba, n, lenAt = get64(cdb[2:]), uint64(get32(cdb[10:])), 10
	}
	flags := cdb[1]
	unmapBit, ndob := flags&0x08 != 0, !ten && flags&0x01 != 0
	var o outcome
	if !ndob {
		o.wanted = lu.bs
	}
	if n == 0 && lba < lu.blocks { // WSNZ=0: zero means to the last LBA
		n = lu.blocks - lba
	}
	switch {
	case flags&0xe0 != 0:
		o.fail = badCDB(1, 7)
	case flags&0x10 != 0: // ANCHOR: ANC_SUP is 0
		o.fail = badCDB(1, 4)
	case unmapBit && !lu.cfg.Thin:
		o.fail = badCDB(1, 3)
	case lba >= lu.blocks || !lu.inRange(lba, n):
		o.fail = lbaOutOfRange
	case n > uint64(lu.maxWS):
		o.fail = badCDB(lenAt, -1)
	case lu.writeProtected():
		o.fail = fail(reasonWriteProtected)
	case !ndob && (task.ExpectedLength != lu.bs || uint32(len(task.DataOut)) < lu.bs):
		// The data-out is exactly one block (SBC-3 5.41).
		o.fail = badCDB(lenAt, -1)
	}
	if o.fail.failed() {
		return o
	}
	var block []byte
	if ndob {
		block = make([]byte, lu.bs)
	} else {
		block = task.DataOut[:lu.bs]
	}
	id := lu.lockWrite(task, lba, n)
	defer lu.writers.unlock(id)
	off, length := int64(lba)<<lu.shift, int64(n)<<lu.shift
	var err error
	// With UNMAP set the initiator asks for deallocation: SBC-3 lets the
	// device server unmap whatever the data-out holds, and libiscsi checks
	// that the range then reads as zeros (LBPRZ) even for a 0xFF block.
	if unmapBit && lu.props.UnmapZeroes {
		if err = lu.be.Unmap(off, length); err != nil {
			o.fail, o.err = fail(reasonWriteError), err
			return o
		}
	} else if done, err := lu.writePattern(block, off, length); err != nil {
		o.fail, o.err = lu.ioFailure(reasonWriteError, err, lba, int(done)), err
		return o
	}
	if err = lu.durable(false); err != nil {
		o.fail, o.err = syncFailure(err), err
	}
	return o
}

// writePattern repeats block over [off, off+length) in chunks of up to
// 1 MiB and returns how many bytes it wrote.
func (lu *LU) writePattern(block []byte, off, length int64) (int64, error) {
	chunk := make([]byte, min(length, 1<<20))
	for i := 0; i < len(chunk); i += len(block) {
		copy(chunk[i:], block)
	}
	var done int64
	for length > 0 {
		c := chunk[:min(int64(len(chunk)), length)]
		n, err := lu.be.WriteAt(c, off)
		done += int64(n)
		if err != nil {
			return done, err
		}
		off += int64(len(c))
		length -= int64(len(c))
	}
	return done, nil
}

// unmap deallocates the extents of the parameter list (SBC-3 5.28).
func unmap(_ *Target, lu *LU, task *Task) outcome {
	cdb := task.CDB
	plen := uint32(get16(cdb[7:]))
	o := outcome{wanted: plen}
	switch {
	case cdb[1]&0x01 != 0: // ANCHOR: ANC_SUP is 0
		o.fail = badCDB(1, 0)
	case plen == 0:
	case lu.writeProtected():
		o.fail = fail(reasonWriteProtected)
	case plen < 8 || uint32(len(task.DataOut)) < plen:
		o.fail = fail(reasonParamListLength)
	}
	if o.fail.failed() || plen == 0 {
		return o
	}
	p := task.DataOut[:plen]
	bdl := min(uint32(get16(p[2:])), plen-8)
	descs := p[8 : 8+bdl/16*16]
	if len(descs)/16 > maxUnmapDescs {
		o.fail = badParam(2, -1)
		return o
	}
	// Check every descriptor before touching anything.
	for i := 0; i < len(descs); i += 16 {
		if !lu.inRange(get64(descs[i:]), uint64(get32(descs[i+8:]))) {
			o.fail = lbaOutOfRange
			return o
		}
	}
	for i := 0; i < len(descs); i += 16 {
		lba, n := get64(descs[i:]), uint64(get32(descs[i+8:]))
		if n == 0 {
			continue
		}
		id := lu.lockWrite(task, lba, n)
		err := lu.be.Unmap(int64(lba)<<lu.shift, int64(n)<<lu.shift)
		lu.writers.unlock(id)
		if err != nil {
			o.fail, o.err = fail(reasonWriteError), err
			return o
		}
	}
	return o
}

// compareAndWrite compares NLB blocks with the first half of the
// data-out and, only if equal, writes the second half, atomically with
// respect to every other writer (SBC-3 5.2).
func compareAndWrite(_ *Target, lu *LU, task *Task) outcome {
	cdb := task.CDB
	lba, nlb, flags := get64(cdb[2:]), uint32(cdb[13]), cdb[1]
	size := nlb << lu.shift
	o := outcome{wanted: 2 * size}
	switch {
	case flags&0xe0 != 0:
		o.fail = badCDB(1, 7)
	case nlb > maxCompareWrite:
		o.fail = badCDB(13, -1)
	case !lu.inRange(lba, uint64(nlb)):
		o.fail = lbaOutOfRange
	case lu.writeProtected():
		o.fail = fail(reasonWriteProtected)
	case task.ExpectedLength != 2*size || uint32(len(task.DataOut)) < 2*size:
		// Also an NLB that wrapped (256 in one byte is 0) while the
		// initiator sends data for it.
		o.fail = badCDB(13, -1)
	case nlb == 0:
		return o // nothing to compare (SBC-3 5.2)
	}
	if o.fail.failed() {
		return o
	}
	id := lu.lockWrite(task, lba, uint64(nlb))
	defer lu.writers.unlock(id)
	cur := make([]byte, size)
	off := int64(lba) << lu.shift
	if done, err := lu.be.ReadAt(cur, off); err != nil {
		o.fail, o.err = lu.ioFailure(reasonReadError, err, lba, done), err
		return o
	}
	if i := firstDiff(cur, task.DataOut[:size]); i >= 0 {
		o.fail = miscompare(uint64(i))
		return o
	}
	if done, err := lu.be.WriteAt(task.DataOut[size:2*size], off); err != nil {
		o.fail, o.err = lu.ioFailure(reasonWriteError, err, lba, done), err
	} else if err := lu.durable(flags&0x08 != 0); err != nil {
		o.fail, o.err = syncFailure(err), err
	}
	return o
}

// orWrite ORs the data-out into the blocks (SBC-3 5.10), atomically.
func orWrite(_ *Target, lu *LU, task *Task) outcome {
	lba, n, flags, lenAt := rwFields(task.CDB)
	size := uint64(n) << lu.shift
	o := outcome{wanted: uint32(min(size, 1<<32-1))}
	switch {
	case flags&0xe0 != 0: // ORPROTECT
		o.fail = badCDB(1, 7)
	case n > lu.maxXfer:
		o.fail = badCDB(lenAt, -1)
	case !lu.inRange(lba, uint64(n)):
		o.fail = lbaOutOfRange
	case lu.writeProtected():
		o.fail = fail(reasonWriteProtected)
	case uint64(len(task.DataOut)) < size:
		o.fail = fail(reasonInvalidFieldInIU)
	}
	if o.fail.failed() || n == 0 {
		return o
	}
	id := lu.lockWrite(task, lba, uint64(n))
	defer lu.writers.unlock(id)
	cur := make([]byte, size)
	off := int64(lba) << lu.shift
	if done, err := lu.be.ReadAt(cur, off); err != nil {
		o.fail, o.err = lu.ioFailure(reasonReadError, err, lba, done), err
		return o
	}
	for i, c := range task.DataOut[:size] {
		cur[i] |= c
	}
	if done, err := lu.be.WriteAt(cur, off); err != nil {
		o.fail, o.err = lu.ioFailure(reasonWriteError, err, lba, done), err
	} else if err := lu.durable(flags&0x08 != 0); err != nil {
		o.fail, o.err = syncFailure(err), err
	}
	return o
}
