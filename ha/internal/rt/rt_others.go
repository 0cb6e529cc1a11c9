//go:build !linux

package rt

// Thread is not supported here.
func Thread() error { return ErrUnsupported }

// LockMemory is not supported here.
func LockMemory() error { return ErrUnsupported }
