package backstore

import (
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestOpenLocksTheBacking(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("OFD locks are Linux only")
	}
	path := filepath.Join(t.TempDir(), "lun.img")
	first, err := Open(path, Options{Create: true, Size: 1 << 20, Lock: true})
	require.NoError(t, err)

	_, err = Open(path, Options{Lock: true})
	require.ErrorIs(t, err, ErrLocked, "a second open of a served file is refused")
	assert.ErrorContains(t, err, "pid "+strconv.Itoa(os.Getpid()), "the holder is named")
	assert.ErrorContains(t, err, path)

	_, err = Open(path, Options{ReadOnly: true, Lock: true})
	require.ErrorIs(t, err, ErrLocked, "a read-only LUN on a served file is refused too")

	_, err = Open(path, Options{VolatileCache: true, Lock: true})
	require.ErrorIs(t, err, ErrLocked, "the volatile cache opens through the same lock")

	// Reopen (a resize) shares the lock, and closing the old backend
	// leaves the new one holding it.
	grown := func() { require.NoError(t, os.Truncate(path, 2<<20)) }
	grown()
	second, err := Reopen(first)
	require.NoError(t, err)
	assert.Equal(t, int64(2<<20), second.Size())
	require.NoError(t, first.Close())
	_, err = Open(path, Options{Lock: true})
	require.ErrorIs(t, err, ErrLocked, "the reopened backend still holds the lock")

	require.NoError(t, second.Close())
	third, err := Open(path, Options{Lock: true})
	require.NoError(t, err, "closing the last descriptor releases the lock")
	require.NoError(t, third.Close())
}

func TestOpenMissingNamesTheSizeKey(t *testing.T) {
	_, err := Open(filepath.Join(t.TempDir(), "nope"), Options{})
	require.Error(t, err)
	assert.ErrorContains(t, err, "size")
	assert.NotContains(t, err.Error(), "set create", "there is no create key")
}
