//go:build !linux

package backstore

import "os"

func maybeLock(f *os.File, opts Options) error { return nil }

func dupFile(f *os.File) (*os.File, error) { return nil, errUnimplemented }
