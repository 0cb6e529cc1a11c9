package scsi

import "runtime"

// writeAtomic serves WRITE ATOMIC(16) (SBC-4 5.48): the blocks are
// written all or nothing with respect to every other command. Writers
// already exclude each other through the range lock; readers are made to
// take it as well for the duration (see LU.readAt). Atomic writes must
// start and end on the backend's physical blocks (ATOMIC ALIGNMENT and
// ATOMIC TRANSFER LENGTH GRANULARITY of the Block Limits page); atomic
// boundaries are not offered, so a non-zero ATOMIC BOUNDARY is refused.
func writeAtomic(_ *Target, lu *LU, task *Task) outcome {
	cdb := task.CDB
	flags, lba := cdb[1], get64(cdb[2:])
	boundary, n := get16(cdb[10:]), uint32(get16(cdb[12:]))
	size := uint64(n) << lu.shift
	o := outcome{wanted: uint32(size)}
	switch {
	case flags&0xe0 != 0: // WRPROTECT without protection information
		o.fail = badCDB(1, 7)
	case boundary != 0: // MAXIMUM ATOMIC BOUNDARY SIZE is 0
		o.fail = badCDB(10, -1)
	case n > maxAtomicBytes>>lu.shift:
		o.fail = badCDB(12, -1)
	case lu.agran > 1 && lba%uint64(lu.agran) != 0:
		o.fail = badCDB(2, -1)
	case lu.agran > 1 && n%lu.agran != 0:
		o.fail = badCDB(12, -1)
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
	lu.atomics.Add(1)
	id := lu.lockWrite(task, lba, uint64(n))
	// Wait for the reads that started unlocked; later ones see atomics
	// and queue on the range lock.
	for lu.plainReads.Load() != 0 {
		runtime.Gosched()
	}
	done, err := lu.be.WriteAt(task.DataOut[:size], int64(lba)<<lu.shift)
	lu.writers.unlock(id)
	lu.atomics.Add(-1)
	if err != nil {
		o.fail, o.err = lu.ioFailure(reasonWriteError, err, lba, done), err
	} else if err := lu.durable(flags&0x08 != 0); err != nil {
		o.fail, o.err = syncFailure(err), err
	}
	return o
}
