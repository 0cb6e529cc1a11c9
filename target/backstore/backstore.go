package backstore

import (
	"errors"
	"fmt"
	"os"
)

// Backend is a LUN's storage. Implementations: File (regular file) and
// Block (block device path). All methods are safe for concurrent use.
type Backend interface {
	ReadAt(p []byte, off int64) (int, error)
	WriteAt(p []byte, off int64) (int, error)
	// Sync makes all acknowledged writes durable.
	Sync() error
	// Unmap deallocates a byte range: a punched hole for a file,
	// BLKDISCARD for a block device.
	Unmap(off, length int64) error
	Size() int64
	Close() error
}

// Options select how Open opens a backend.
type Options struct {
	// ReadOnly opens the path O_RDONLY; writes then fail.
	ReadOnly bool
	// WriteThrough opens with O_DSYNC so every completed write is durable
	// and Sync is nearly free.
	WriteThrough bool
	// Create makes a missing regular file.
	Create bool
	// Size is the size in bytes of a file made by Create; it is created
	// sparse (truncate), so it costs no space until written.
	Size int64
	// VolatileCache puts a regular file under a write cache in memory
	// that Sync flushes and a power cut loses (Volatile): for labs.
	VolatileCache bool
	// Lock takes an OFD lock (fcntl(2) F_OFD_SETLK) on the file or
	// device for as long as the backend is open: exclusive, or shared
	// with ReadOnly. A backing locked by another open is refused with
	// ErrLocked and its holder named. The daemon sets it for every LUN;
	// tools that only peek at a file leave it off.
	Lock bool
	// TestBrokenSync makes a volatile cache ignore Sync, so that FUA and
	// SYNCHRONIZE CACHE acknowledge data that a power cut loses. Only the
	// durability checker's negative control sets it.
	TestBrokenSync bool
}

// Properties are optional facts about a backend that the SCSI layer
// reports to initiators. Backends that do not implement Prober are
// assumed to have none of them.
type Properties struct {
	// WriteThrough is true when every completed WriteAt is already durable.
	WriteThrough bool
	// UnmapZeroes is true when unmapped ranges read back as zeros (SBC-3
	// LBPRZ).
	UnmapZeroes bool
	// CanUnmap is true when Unmap deallocates rather than failing.
	CanUnmap bool
	// PhysicalBlockSize is the allocation unit in bytes, 0 if unknown.
	PhysicalBlockSize int64
}

// Prober is implemented by backends that can describe themselves.
type Prober interface {
	Properties() Properties
}

// Mapper is implemented by backends that know which ranges hold data, for
// GET LBA STATUS. Mapped reports whether the byte at off is allocated and
// how many bytes from off share that state (at most length).
type Mapper interface {
	Mapped(off, length int64) (mapped bool, n int64, err error)
}

// ErrReadOnly is returned by WriteAt and Unmap on a read-only backend.
var ErrReadOnly = errors.New("backstore is read-only")

// ErrLocked is returned (wrapped, with the holder named) by Open when
// another open of the same file or device holds its lock: another LUN of
// this daemon or another daemon serves it already.
var ErrLocked = errors.New("backstore: backing is in use")

// Open opens path as a File or a Block backend depending on what it is,
// and with opts.Lock locks it for as long as it stays open, so that no
// second LUN or daemon serves it at once.
func Open(path string, opts Options) (Backend, error) {
	st, err := os.Stat(path)
	switch {
	case errors.Is(err, os.ErrNotExist) && opts.Create && opts.VolatileCache:
		return openVolatile(path, opts)
	case errors.Is(err, os.ErrNotExist) && opts.Create:
		return openFile(path, opts)
	case err != nil:
		return nil, fmt.Errorf("backstore: stat %s: %w (give the LUN a size to create a sparse file of that size, or point path at an existing file or device)", path, err)
	case opts.VolatileCache && (err == nil && !st.Mode().IsRegular()):
		return nil, fmt.Errorf("backstore: %s: a volatile cache needs a regular file (drop cache: volatile for a device)", path)
	case opts.VolatileCache:
		return openVolatile(path, opts)
	case st.Mode().IsRegular():
		return openFile(path, opts)
	case st.Mode()&os.ModeDevice != 0 && st.Mode()&os.ModeCharDevice == 0:
		return openBlock(path, opts)
	}
	return nil, fmt.Errorf("backstore: %s is neither a regular file nor a block device", path)
}

func openFlags(opts Options) int {
	flags := os.O_RDWR
	if opts.ReadOnly {
		flags = os.O_RDONLY
	}
	if opts.WriteThrough {
		flags |= oDSYNC
	}
	return flags
}

// Reopen returns a new backend over the same open file description as be
// (so it keeps be's lock), with its size read again: a file that grew or
// a device that was extended (lvextend). Close be afterwards. A volatile
// cache is flushed into the file first.
func Reopen(be Backend) (Backend, error) {
	switch b := be.(type) {
	case *File:
		return b.reopen()
	case *Block:
		return b.reopen()
	case *Volatile:
		if err := b.Sync(); err != nil {
			return nil, fmt.Errorf("backstore: flush the volatile cache before reopening: %w", err)
		}
		f, err := b.file.reopen()
		if err != nil {
			return nil, err
		}
		return &Volatile{file: f, brokenSync: b.brokenSync, sectors: map[int64][]byte{}}, nil
	}
	return nil, fmt.Errorf("backstore: cannot reopen a %T", be)
}
