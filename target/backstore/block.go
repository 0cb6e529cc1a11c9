package backstore

import (
	"fmt"
	"os"
)

// Block is a backend on a block device. Unmap issues BLKDISCARD; whether
// discarded ranges read as zeros depends on the device, so it does not
// claim so.
type Block struct {
	f        *os.File
	size     int64
	readOnly bool
	through  bool
	pbs      int64
}

func openBlock(path string, opts Options) (*Block, error) {
	f, err := os.OpenFile(path, openFlags(opts), 0)
	if err != nil {
		return nil, fmt.Errorf("backstore: open %s: %w", path, err)
	}
	if err := maybeLock(f, opts); err != nil {
		f.Close()
		return nil, err
	}
	size, err := deviceSize(f)
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("backstore: size of %s: %w", path, err)
	}
	return &Block{f: f, size: size, readOnly: opts.ReadOnly, through: opts.WriteThrough, pbs: physicalBlockSize(f)}, nil
}

func (b *Block) reopen() (*Block, error) {
	f, err := dupFile(b.f)
	if err != nil {
		return nil, err
	}
	size, err := deviceSize(f)
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("backstore: size of %s: %w", f.Name(), err)
	}
	return &Block{f: f, size: size, readOnly: b.readOnly, through: b.through, pbs: b.pbs}, nil
}

// OpenBlock opens a block device backend.
func OpenBlock(path string, opts Options) (*Block, error) { return openBlock(path, opts) }

// ReadAt reads len(p) bytes at off.
func (b *Block) ReadAt(p []byte, off int64) (int, error) { return b.f.ReadAt(p, off) }

// WriteAt writes p at off.
func (b *Block) WriteAt(p []byte, off int64) (int, error) {
	if b.readOnly {
		return 0, ErrReadOnly
	}
	return b.f.WriteAt(p, off)
}

// Sync flushes the device's write cache (fdatasync).
func (b *Block) Sync() error {
	if b.readOnly {
		return nil
	}
	if err := fdatasync(b.f); err != nil {
		return fmt.Errorf("backstore: sync %s: %w", b.f.Name(), err)
	}
	return nil
}

// Unmap discards [off, off+length).
func (b *Block) Unmap(off, length int64) error {
	if b.readOnly {
		return ErrReadOnly
	}
	if length <= 0 {
		return nil
	}
	if err := discard(b.f, off, length); err != nil {
		return fmt.Errorf("backstore: discard %s at %d+%d: %w", b.f.Name(), off, length, err)
	}
	return nil
}

// Size is the device size in bytes.
func (b *Block) Size() int64 { return b.size }

// Close closes the device.
func (b *Block) Close() error { return b.f.Close() }

// Properties of a block device: discard support is assumed, zeroing is not.
func (b *Block) Properties() Properties {
	return Properties{WriteThrough: b.through, CanUnmap: !b.readOnly, PhysicalBlockSize: b.pbs}
}
