//go:build !linux

package sgio

import "errors"

var errUnimplemented = errors.New("sgio: SG_IO exists only on Linux")

// Open fails: SG_IO exists only on Linux.
func Open(path string) (*Dev, error) { return nil, errUnimplemented }

// Ioctl fails: SG_IO exists only on Linux.
func Ioctl(fd uintptr, h *Hdr) error { return errUnimplemented }
