//go:build !linux

package backstore

import (
	"errors"
	"io/fs"
	"os"
)

const oDSYNC = 0

var (
	errNoData        = errors.New("no data after offset")
	errUnimplemented = errors.New("not implemented on this platform")
)

func fdatasync(f *os.File) error                    { return f.Sync() }
func punchHole(f *os.File, off, length int64) error { return errUnimplemented }
func discard(f *os.File, off, length int64) error   { return errUnimplemented }
func deviceSize(f *os.File) (int64, error)          { return 0, errUnimplemented }
func physicalBlockSize(f *os.File) int64            { return 0 }
func statBlockSize(st fs.FileInfo) int64            { return 0 }
func seekData(f *os.File, off int64) (int64, error) { return off, nil }
func seekHole(f *os.File, off int64) (int64, error) { return 1<<63 - 1, nil }
