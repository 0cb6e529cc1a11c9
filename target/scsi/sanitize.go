package scsi

import (
	"errors"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	wscsi "github.com/tandem-ha/tandem/wire/scsi"
)

// sanitizeState is an LU's SANITIZE bookkeeping (SBC-4 4.11). While a
// sanitize runs, commands other than INQUIRY, REPORT LUNS and REQUEST
// SENSE end in NOT READY, SANITIZE IN PROGRESS; after a failed one the
// LU stays in sanitize failure mode until a sanitize succeeds or, if the
// failed command had AUSE set, EXIT FAILURE MODE.
type sanitizeState struct {
	active   atomic.Bool
	progress atomic.Uint32 // done/65536 of the running sanitize
	failed   atomic.Bool
	ause     atomic.Bool // AUSE of the sanitize that failed

	mu        sync.Mutex // orders bg.Add against Close
	closed    bool
	closeOnce sync.Once
	stop      chan struct{} // closed by LU.Close
	bg        sync.WaitGroup
}

var errSanitizeStopped = errors.New("sanitize stopped: logical unit closed")

// blockEraseOK says whether BLOCK ERASE can do what SBC-4 promises: leave
// every block deallocated (GET LBA STATUS can tell) and reading as zero.
func blockEraseOK(lu *LU) bool {
	return lu.cfg.Thin && lu.mapper != nil && lu.props.UnmapZeroes
}

// sanitizeGate refuses cmd while a sanitize runs or failed (SBC-4
// 4.11.2, 4.11.3); ok lets it through.
func (lu *LU) sanitizeGate(cmd *command) failure {
	if cmd.whileSanitizing {
		return ok
	}
	if lu.san.active.Load() {
		return fail(reasonSanitizeInProgress)
	}
	if lu.san.failed.Load() && cmd.access != accessNone {
		switch cmd.op {
		case wscsi.OpSanitize, wscsi.OpModeSelect6, wscsi.OpModeSelect10, wscsi.OpStartStopUnit:
			// not medium access: a sanitize, or LU state
		default:
			return fail(reasonSanitizeFailed)
		}
	}
	return ok
}

// sanitize serves SANITIZE (SBC-4 5.30): OVERWRITE, BLOCK ERASE (thin
// LUs whose unmapped blocks read as zero) and EXIT FAILURE MODE. There is
// no encryption, so CRYPTO ERASE is INVALID FIELD IN CDB like any
// unknown service action (dispatch does that).
func sanitize(t *Target, lu *LU, task *Task) outcome {
	cdb := task.CDB
	immed, ause, sa := cdb[1]&0x80 != 0, cdb[1]&0x20 != 0, cdb[1]&0x1f
	plen := uint32(get16(cdb[7:]))
	o := outcome{wanted: plen}
	if cdb[1]&0x40 != 0 {
		o.fail = badCDB(1, 6)
		return o
	}
	for i := 2; i <= 6; i++ {
		if cdb[i] != 0 {
			o.fail = badCDB(uint16(i), -1)
			return o
		}
	}
	switch sa {
	case wscsi.SASanitizeExitFailure:
		switch {
		case plen != 0:
			o.fail = badCDB(7, -1)
		case lu.san.failed.Load() && !lu.san.ause.Load():
			// Only a new sanitize may clear a failure without AUSE.
			o.fail = badCDB(1, 4)
		default:
			lu.san.failed.Store(false)
		}
		return o
	case wscsi.SASanitizeBlockErase:
		if plen != 0 {
			o.fail = badCDB(7, -1)
			return o
		}
		if lu.writeProtected() {
			o.fail = fail(reasonWriteProtected)
			return o
		}
		return lu.startSanitize(t.logger, immed, ause, func() error {
			return lu.be.Unmap(0, lu.Size())
		})
	case wscsi.SASanitizeOverwrite:
		block, inverted, passes, f := lu.overwriteParams(task, plen)
		if f.failed() {
			o.fail = f
			return o
		}
		return lu.startSanitize(t.logger, immed, ause, func() error {
			return lu.overwrite(block, inverted, passes, lu.sanitizeRate())
		})
	}
	o.fail = badCDB(1, 4)
	return o
}

// overwriteParams checks the OVERWRITE parameter list (SBC-4 5.30.3) and
// returns the block-sized pattern, its inverse when INVERT is set, and
// the number of passes.
func (lu *LU) overwriteParams(task *Task, plen uint32) (block, inverted []byte, passes int, f failure) {
	switch {
	case plen < 5 || plen > lu.bs+4: // header plus 1..block size of pattern
		return nil, nil, 0, badCDB(7, -1)
	case lu.writeProtected():
		return nil, nil, 0, fail(reasonWriteProtected)
	case uint32(len(task.DataOut)) < plen:
		return nil, nil, 0, fail(reasonParamListLength)
	}
	p := task.DataOut[:plen]
	invert, test, count := p[0]&0x80 != 0, p[0]&0x60, int(p[0]&0x1f)
	ipl := uint32(get16(p[2:]))
	switch {
	case test != 0:
		return nil, nil, 0, badParam(0, 6)
	case count == 0:
		return nil, nil, 0, badParam(0, 4)
	case ipl == 0 || ipl > lu.bs || ipl+4 != plen:
		return nil, nil, 0, badParam(2, -1)
	}
	// The pattern is repeated to fill each block.
	block = make([]byte, lu.bs)
	for i := 0; i < len(block); i += int(ipl) {
		copy(block[i:], p[4:plen])
	}
	if invert && count > 1 {
		inverted = make([]byte, lu.bs)
		for i, c := range block {
			inverted[i] = ^c
		}
	}
	return block, inverted, count, ok
}

func (lu *LU) sanitizeRate() int64 {
	switch r := lu.cfg.SanitizeRate; {
	case r == 0:
		return DefaultSanitizeRate
	case r < 0:
		return 0
	default:
		return r
	}
}

// startSanitize runs job with the LU in sanitize state and every block
// locked against writers: to completion when immed is false, in the
// background (GOOD at once) when it is set (SBC-4 5.30.2 IMMED).
func (lu *LU) startSanitize(log *slog.Logger, immed, ause bool, job func() error) outcome {
	if !lu.san.active.CompareAndSwap(false, true) {
		return outcome{fail: fail(reasonSanitizeInProgress)}
	}
	lu.san.progress.Store(0)
	run := func() error {
		id := lu.writers.lock(0, lu.blocks)
		err := job()
		if err == nil {
			err = lu.be.Sync() // a sanitize is done once it is on the medium
		}
		lu.writers.unlock(id)
		lu.san.ause.Store(ause)
		lu.san.failed.Store(err != nil)
		lu.san.active.Store(false)
		return err
	}
	if !immed {
		if err := run(); err != nil {
			return outcome{fail: fail(reasonSanitizeFailed), err: err}
		}
		return outcome{}
	}
	lu.san.mu.Lock()
	if lu.san.closed {
		lu.san.mu.Unlock()
		lu.san.active.Store(false)
		return outcome{fail: fail(reasonInternal), err: errSanitizeStopped}
	}
	lu.san.bg.Add(1)
	lu.san.mu.Unlock()
	go func() {
		defer lu.san.bg.Done()
		if err := run(); err != nil && !errors.Is(err, errSanitizeStopped) {
			log.Warn("background sanitize failed", "err", err)
		}
	}()
	return outcome{}
}

// closeSanitize stops a running sanitize and waits for it.
func (lu *LU) closeSanitize() {
	lu.san.closeOnce.Do(func() {
		lu.san.mu.Lock()
		lu.san.closed = true
		close(lu.san.stop)
		lu.san.mu.Unlock()
	})
	lu.san.bg.Wait()
}

// overwrite writes block over the whole LU passes times, alternating
// with inverted when it is set, at most rate bytes per second (0: no
// limit).
func (lu *LU) overwrite(block, inverted []byte, passes int, rate int64) error {
	size := lu.Size()
	chunk := make([]byte, min(size, 1<<20))
	total := size * int64(passes)
	var done int64
	start := time.Now()
	for pass := range passes {
		pat := block
		if inverted != nil && pass%2 == 1 {
			pat = inverted
		}
		for i := 0; i < len(chunk); i += len(pat) {
			copy(chunk[i:], pat)
		}
		for off := int64(0); off < size; {
			select {
			case <-lu.san.stop:
				return errSanitizeStopped
			default:
			}
			c := chunk[:min(int64(len(chunk)), size-off)]
			if _, err := lu.be.WriteAt(c, off); err != nil {
				return err
			}
			off += int64(len(c))
			done += int64(len(c))
			lu.san.progress.Store(uint32(done * 65535 / total))
			if d := paceDelay(done, rate, time.Since(start)); d > 0 {
				timer := time.NewTimer(d)
				select {
				case <-lu.san.stop:
					timer.Stop()
					return errSanitizeStopped
				case <-timer.C:
				}
			}
		}
	}
	return nil
}

// paceDelay is how long to wait after writing done bytes in elapsed time
// to stay at rate bytes per second (0: no limit).
func paceDelay(done, rate int64, elapsed time.Duration) time.Duration {
	if rate <= 0 {
		return 0
	}
	due := time.Duration(float64(done) / float64(rate) * float64(time.Second))
	return max(0, due-elapsed)
}
