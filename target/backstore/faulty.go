package backstore

import (
	"errors"
	"fmt"
	"sync/atomic"
	"syscall"
	"time"
)

// Fault is one injected failure of a Faulty backend: every I/O of kind Op
// that touches [Off, Off+Len) is delayed by Delay and then fails with Err
// at the first faulty byte (the bytes before it are read or written, as a
// disk that fails a sector midway through a request does).
type Fault struct {
	// Op is FaultRead, FaultWrite or "" for both.
	Op string `json:"op,omitempty" yaml:"op,omitempty"`
	// Off and Len are the faulty byte range; Len 0 means up to the end.
	Off int64 `json:"off,omitempty" yaml:"off,omitempty"`
	Len int64 `json:"len,omitempty" yaml:"len,omitempty"`
	// Err is FaultEIO (a medium error), FaultENOSPC (a thin file or a
	// thin pool out of space; writes only) or "" (Delay alone: a slow
	// disk).
	Err string `json:"err,omitempty" yaml:"err,omitempty"`
	// Delay is added to every matching I/O before it runs: a disk that
	// takes seconds per request.
	Delay time.Duration `json:"delay,omitempty" yaml:"delay,omitempty"`
}

// Fault operations and errors.
const (
	FaultRead   = "read"
	FaultWrite  = "write"
	FaultEIO    = "eio"
	FaultENOSPC = "enospc"
)

func (f Fault) validate() error {
	switch {
	case f.Op != "" && f.Op != FaultRead && f.Op != FaultWrite:
		return fmt.Errorf("backstore: fault op %q unknown (use read, write or leave it empty for both)", f.Op)
	case f.Err != "" && f.Err != FaultEIO && f.Err != FaultENOSPC:
		return fmt.Errorf("backstore: fault err %q unknown (use eio or enospc)", f.Err)
	case f.Err == FaultENOSPC && f.Op != FaultWrite:
		return errors.New("backstore: an enospc fault needs op: write (reads never allocate)")
	case f.Off < 0 || f.Len < 0 || f.Delay < 0:
		return errors.New("backstore: fault off, len and delay must not be negative")
	case f.Err == "" && f.Delay == 0:
		return errors.New("backstore: a fault needs an err, a delay or both")
	}
	return nil
}

// overlap returns the first byte of [off, off+n) inside f's range.
func (f Fault) overlap(op string, off, n int64) (int64, bool) {
	if f.Op != "" && f.Op != op {
		return 0, false
	}
	end := off + n
	if f.Len > 0 && f.Off+f.Len <= off || end <= f.Off {
		return 0, false
	}
	return max(off, f.Off), true
}

func (f Fault) errno() error {
	if f.Err == FaultENOSPC {
		return syscall.ENOSPC
	}
	return syscall.EIO
}

// Faulty is a backend that injects faults into the one it wraps: a test
// and lab backstore for a disk going bad under the target. With no faults
// set it passes every call through.
type Faulty struct {
	be     Backend
	faults atomic.Pointer[[]Fault]
	sleep  func(time.Duration)
}

// NewFaulty wraps be. sleep carries out delays (time.Sleep when nil;
// tests pass a fake clock's).
func NewFaulty(be Backend, sleep func(time.Duration)) *Faulty {
	if sleep == nil {
		sleep = time.Sleep
	}
	f := &Faulty{be: be, sleep: sleep}
	f.faults.Store(&[]Fault{})
	return f
}

// SetFaults replaces the faults in effect; nil heals the disk. I/O already
// running keeps the faults it started with.
func (b *Faulty) SetFaults(faults []Fault) error {
	for i, f := range faults {
		if err := f.validate(); err != nil {
			return fmt.Errorf("fault %d: %w", i, err)
		}
	}
	fs := append([]Fault(nil), faults...)
	b.faults.Store(&fs)
	return nil
}

// Faults returns the faults in effect.
func (b *Faulty) Faults() []Fault { return append([]Fault(nil), *b.faults.Load()...) }

// Inner is the wrapped backend.
func (b *Faulty) Inner() Backend { return b.be }

// inject applies the delays of the faults that match and returns the
// first faulty byte and its error, if any.
func (b *Faulty) inject(op string, off, n int64) (int64, error) {
	var delay time.Duration
	bad, err := int64(-1), error(nil)
	for _, f := range *b.faults.Load() {
		at, hit := f.overlap(op, off, n)
		if !hit {
			continue
		}
		delay = max(delay, f.Delay)
		if f.Err != "" && (bad < 0 || at < bad) {
			bad, err = at, f.errno()
		}
	}
	if delay > 0 {
		b.sleep(delay)
	}
	return bad, err
}

// ReadAt reads up to the first faulty byte and fails there.
func (b *Faulty) ReadAt(p []byte, off int64) (int, error) {
	bad, ferr := b.inject(FaultRead, off, int64(len(p)))
	if ferr == nil {
		return b.be.ReadAt(p, off)
	}
	n, err := b.be.ReadAt(p[:bad-off], off)
	if err != nil {
		return n, err
	}
	return n, fmt.Errorf("backstore: injected %s reading byte %d: %w", ferr, bad, ferr)
}

// WriteAt writes up to the first faulty byte and fails there.
func (b *Faulty) WriteAt(p []byte, off int64) (int, error) {
	bad, ferr := b.inject(FaultWrite, off, int64(len(p)))
	if ferr == nil {
		return b.be.WriteAt(p, off)
	}
	n, err := b.be.WriteAt(p[:bad-off], off)
	if err != nil {
		return n, err
	}
	return n, fmt.Errorf("backstore: injected %s writing byte %d: %w", ferr, bad, ferr)
}

// Sync, Unmap, Size and Close pass through.
func (b *Faulty) Sync() error                   { return b.be.Sync() }
func (b *Faulty) Unmap(off, length int64) error { return b.be.Unmap(off, length) }
func (b *Faulty) Size() int64                   { return b.be.Size() }
func (b *Faulty) Close() error                  { return b.be.Close() }

// Properties are the wrapped backend's.
func (b *Faulty) Properties() Properties {
	if p, ok := b.be.(Prober); ok {
		return p.Properties()
	}
	return Properties{}
}

// Backend is b as the SCSI layer should see it: also a Mapper when the
// wrapped backend is one, so that wrapping changes nothing but the faults.
func (b *Faulty) Backend() Backend {
	if m, ok := b.be.(Mapper); ok {
		return faultyMapper{b, m}
	}
	return b
}

type faultyMapper struct {
	*Faulty
	m Mapper
}

func (f faultyMapper) Mapped(off, length int64) (bool, int64, error) { return f.m.Mapped(off, length) }
