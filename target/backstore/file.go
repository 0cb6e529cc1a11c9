package backstore

import (
	"errors"
	"fmt"
	"os"
)

// File is a backend on a regular file. Unmap punches holes, so a sparse
// file is a thin-provisioned LUN that reads zeros where unmapped.
type File struct {
	f        *os.File
	size     int64
	readOnly bool
	through  bool
	blksize  int64
}

func openFile(path string, opts Options) (*File, error) {
	flags := openFlags(opts)
	if opts.Create && !opts.ReadOnly {
		flags |= os.O_CREATE
	}
	f, err := os.OpenFile(path, flags, 0o600)
	if err != nil {
		return nil, fmt.Errorf("backstore: open %s: %w", path, err)
	}
	if err := maybeLock(f, opts); err != nil {
		f.Close()
		return nil, err
	}
	st, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("backstore: stat %s: %w", path, err)
	}
	size := st.Size()
	if size == 0 && opts.Size > 0 && !opts.ReadOnly {
		if err := f.Truncate(opts.Size); err != nil {
			f.Close()
			return nil, fmt.Errorf("backstore: size %s to %d bytes: %w", path, opts.Size, err)
		}
		size = opts.Size
	}
	return &File{f: f, size: size, readOnly: opts.ReadOnly, through: opts.WriteThrough, blksize: statBlockSize(st)}, nil
}

func (b *File) reopen() (*File, error) {
	f, err := dupFile(b.f)
	if err != nil {
		return nil, err
	}
	st, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("backstore: stat %s: %w", f.Name(), err)
	}
	return &File{f: f, size: st.Size(), readOnly: b.readOnly, through: b.through, blksize: b.blksize}, nil
}

// OpenFile opens (or with opts.Create makes) a regular file backend.
func OpenFile(path string, opts Options) (*File, error) { return openFile(path, opts) }

// ReadAt reads len(p) bytes at off; reading past the end is an error.
func (b *File) ReadAt(p []byte, off int64) (int, error) { return b.f.ReadAt(p, off) }

// WriteAt writes p at off.
func (b *File) WriteAt(p []byte, off int64) (int, error) {
	if b.readOnly {
		return 0, ErrReadOnly
	}
	return b.f.WriteAt(p, off)
}

// Sync flushes written data to stable storage (fdatasync).
func (b *File) Sync() error {
	if b.readOnly {
		return nil
	}
	if err := fdatasync(b.f); err != nil {
		return fmt.Errorf("backstore: sync %s: %w", b.f.Name(), err)
	}
	return nil
}

// Unmap punches a hole over [off, off+length), keeping the file size.
func (b *File) Unmap(off, length int64) error {
	if b.readOnly {
		return ErrReadOnly
	}
	if length <= 0 {
		return nil
	}
	if err := punchHole(b.f, off, length); err != nil {
		return fmt.Errorf("backstore: punch hole in %s at %d+%d: %w", b.f.Name(), off, length, err)
	}
	return nil
}

// Size is the file size in bytes when it was opened.
func (b *File) Size() int64 { return b.size }

// Close closes the file.
func (b *File) Close() error { return b.f.Close() }

// Properties reports that holes read as zeros.
func (b *File) Properties() Properties {
	return Properties{WriteThrough: b.through, UnmapZeroes: true, CanUnmap: !b.readOnly, PhysicalBlockSize: b.blksize}
}

// Mapped uses SEEK_DATA/SEEK_HOLE to find whether off lies in data or in
// a hole, and how far that run extends.
func (b *File) Mapped(off, length int64) (bool, int64, error) {
	if off >= b.size || length <= 0 {
		return false, 0, nil
	}
	end := min(off+length, b.size)
	data, err := seekData(b.f, off)
	if errors.Is(err, errNoData) {
		return false, end - off, nil
	}
	if err != nil {
		return true, end - off, err
	}
	if data > off {
		return false, min(data, end) - off, nil
	}
	hole, err := seekHole(b.f, off)
	if err != nil {
		return true, end - off, err
	}
	return true, min(hole, end) - off, nil
}
