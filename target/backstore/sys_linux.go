package backstore

import (
	"errors"
	"io/fs"
	"os"
	"syscall"
	"unsafe"

	"golang.org/x/sys/unix"
)

const oDSYNC = unix.O_DSYNC

var errNoData = errors.New("no data after offset")

func fdatasync(f *os.File) error { return unix.Fdatasync(int(f.Fd())) }

func punchHole(f *os.File, off, length int64) error {
	return unix.Fallocate(int(f.Fd()), unix.FALLOC_FL_PUNCH_HOLE|unix.FALLOC_FL_KEEP_SIZE, off, length)
}

func discard(f *os.File, off, length int64) error {
	r := [2]uint64{uint64(off), uint64(length)}
	_, _, e := unix.Syscall(unix.SYS_IOCTL, f.Fd(), unix.BLKDISCARD, uintptr(unsafe.Pointer(&r[0])))
	if e != 0 {
		return e
	}
	return nil
}

func deviceSize(f *os.File) (int64, error) {
	var size uint64
	_, _, e := unix.Syscall(unix.SYS_IOCTL, f.Fd(), unix.BLKGETSIZE64, uintptr(unsafe.Pointer(&size)))
	if e != 0 {
		return 0, e
	}
	return int64(size), nil
}

func physicalBlockSize(f *os.File) int64 {
	n, err := unix.IoctlGetInt(int(f.Fd()), unix.BLKPBSZGET)
	if err != nil {
		return 0
	}
	return int64(n)
}

func statBlockSize(st fs.FileInfo) int64 {
	if s, ok := st.Sys().(*syscall.Stat_t); ok {
		return int64(s.Blksize)
	}
	return 0
}

func seekData(f *os.File, off int64) (int64, error) {
	n, err := unix.Seek(int(f.Fd()), off, unix.SEEK_DATA)
	if errors.Is(err, unix.ENXIO) {
		return 0, errNoData
	}
	return n, err
}

func seekHole(f *os.File, off int64) (int64, error) {
	return unix.Seek(int(f.Fd()), off, unix.SEEK_HOLE)
}
