package backstore

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestFileCreateReadWriteUnmap(t *testing.T) {
	path := filepath.Join(t.TempDir(), "lun0.img")
	be, err := Open(path, Options{Create: true, Size: 1 << 20})
	require.NoError(t, err)
	defer be.Close()
	require.Equal(t, int64(1<<20), be.Size())

	data := bytes.Repeat([]byte{0xa5}, 64<<10)
	n, err := be.WriteAt(data, 128<<10)
	require.NoError(t, err)
	require.Equal(t, len(data), n)
	require.NoError(t, be.Sync())

	got := make([]byte, len(data))
	_, err = be.ReadAt(got, 128<<10)
	require.NoError(t, err)
	require.Equal(t, data, got)

	m := be.(Mapper)
	mapped, run, err := m.Mapped(128<<10, 64<<10)
	require.NoError(t, err)
	assert.True(t, mapped)
	assert.Equal(t, int64(64<<10), run)

	// Punch a hole in the middle: it must read back as zeros and the
	// neighbours must keep their data.
	require.NoError(t, be.Unmap(144<<10, 16<<10))
	_, err = be.ReadAt(got, 128<<10)
	require.NoError(t, err)
	assert.Equal(t, data[:16<<10], got[:16<<10])
	assert.Equal(t, make([]byte, 16<<10), got[16<<10:32<<10])
	assert.Equal(t, data[32<<10:], got[32<<10:])
	require.Equal(t, int64(1<<20), be.Size())

	mapped, run, err = m.Mapped(144<<10, 64<<10)
	require.NoError(t, err)
	assert.False(t, mapped)
	assert.Equal(t, int64(16<<10), run)

	p := be.(Prober).Properties()
	assert.True(t, p.UnmapZeroes)
	assert.True(t, p.CanUnmap)
}

func TestFileReadOnly(t *testing.T) {
	path := filepath.Join(t.TempDir(), "ro.img")
	require.NoError(t, os.WriteFile(path, make([]byte, 4096), 0o600))
	be, err := Open(path, Options{ReadOnly: true})
	require.NoError(t, err)
	defer be.Close()
	_, err = be.WriteAt([]byte{1}, 0)
	require.ErrorIs(t, err, ErrReadOnly)
	require.ErrorIs(t, be.Unmap(0, 512), ErrReadOnly)
	require.NoError(t, be.Sync())
}

func TestFileWriteThrough(t *testing.T) {
	path := filepath.Join(t.TempDir(), "wt.img")
	be, err := Open(path, Options{Create: true, Size: 8192, WriteThrough: true})
	require.NoError(t, err)
	defer be.Close()
	_, err = be.WriteAt([]byte{1, 2, 3}, 10)
	require.NoError(t, err)
	assert.True(t, be.(Prober).Properties().WriteThrough)
}

func TestOpenErrors(t *testing.T) {
	_, err := Open(filepath.Join(t.TempDir(), "missing"), Options{})
	require.Error(t, err)
	_, err = Open(t.TempDir(), Options{})
	require.ErrorContains(t, err, "neither a regular file nor a block device")
}
