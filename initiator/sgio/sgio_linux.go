package sgio

import (
	"fmt"
	"os"
	"unsafe"

	"golang.org/x/sys/unix"
)

// Open opens a block or sg device for SG_IO. It needs read and write
// access (root, or the disk group) because PERSISTENT RESERVE OUT and
// WRITE are refused on a read-only descriptor.
func Open(path string) (*Dev, error) {
	f, err := os.OpenFile(path, os.O_RDWR|unix.O_NONBLOCK, 0)
	if err != nil {
		return nil, fmt.Errorf("sgio: open %s: %w (SG_IO needs read-write access: run as root)", path, err)
	}
	return New(path, f.Fd(), Ioctl, f.Close), nil
}

// Ioctl is the real SG_IO ioctl(2).
func Ioctl(fd uintptr, h *Hdr) error {
	for {
		_, _, e := unix.Syscall(unix.SYS_IOCTL, fd, ioctlSGIO, uintptr(unsafe.Pointer(h)))
		switch e {
		case 0:
			return nil
		case unix.EINTR:
			continue
		}
		return e
	}
}
