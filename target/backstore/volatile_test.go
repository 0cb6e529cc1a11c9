package backstore

import (
	"bytes"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func openV(t *testing.T, broken bool) (*Volatile, string) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "v.img")
	be, err := Open(path, Options{Create: true, Size: 128 << 10, VolatileCache: true, TestBrokenSync: broken})
	require.NoError(t, err)
	v := be.(*Volatile)
	t.Cleanup(func() { _ = v.Close() })
	return v, path
}

func sec(b byte, n int) []byte { return bytes.Repeat([]byte{b}, n*sector) }

// onDisk reads the file under the cache: what a power cut leaves.
func onDisk(t *testing.T, path string, off int64, n int) []byte {
	t.Helper()
	f, err := Open(path, Options{ReadOnly: true})
	require.NoError(t, err)
	defer f.Close()
	b := make([]byte, n)
	_, err = f.ReadAt(b, off)
	require.NoError(t, err)
	return b
}

func TestVolatileSyncAndPowerCut(t *testing.T) {
	v, path := openV(t, false)
	_, err := v.WriteAt(sec('a', 2), 0)
	require.NoError(t, err)
	require.NoError(t, v.Sync())            // like FUA or SYNCHRONIZE CACHE
	_, err = v.WriteAt(sec('b', 1), sector) // overwrites the second sector, unsynced
	require.NoError(t, err)
	_, err = v.WriteAt(sec('c', 1), 4*sector)
	require.NoError(t, err)

	got := make([]byte, 5*sector)
	_, err = v.ReadAt(got, 0)
	require.NoError(t, err)
	assert.Equal(t, append(append(append(sec('a', 1), sec('b', 1)...), make([]byte, 2*sector)...), sec('c', 1)...), got,
		"reads see the cache")
	assert.Equal(t, append(sec('a', 2), make([]byte, 3*sector)...), onDisk(t, path, 0, 5*sector), "the file has only the synced data")
	assert.Equal(t, 2, v.Unsynced())

	rep, err := v.PowerCut(Cut{Mode: CutDrop})
	require.NoError(t, err)
	assert.Equal(t, CutReport{Pending: 2}, rep)
	_, err = v.ReadAt(got, 0)
	require.NoError(t, err)
	assert.Equal(t, append(sec('a', 2), make([]byte, 3*sector)...), got, "after the cut the LU reads what is durable")
	assert.Zero(t, v.Unsynced())
}

// TestVolatileBrokenSync is the broken build: Sync acknowledges and
// keeps nothing, so a power cut loses synced data.
func TestVolatileBrokenSync(t *testing.T) {
	v, path := openV(t, true)
	_, err := v.WriteAt(sec('a', 1), 0)
	require.NoError(t, err)
	require.NoError(t, v.Sync())
	_, err = v.PowerCut(Cut{})
	require.NoError(t, err)
	assert.Equal(t, make([]byte, sector), onDisk(t, path, 0, sector))
}

func TestVolatileUnmapTrimsCache(t *testing.T) {
	v, path := openV(t, false)
	_, err := v.WriteAt(sec('x', 6), 0)
	require.NoError(t, err)
	require.NoError(t, v.Unmap(2*sector, 2*sector))
	got := make([]byte, 6*sector)
	_, err = v.ReadAt(got, 0)
	require.NoError(t, err)
	want := append(append(sec('x', 2), make([]byte, 2*sector)...), sec('x', 2)...)
	assert.Equal(t, want, got)
	require.NoError(t, v.Sync())
	assert.Equal(t, want, onDisk(t, path, 0, 6*sector), "the flush does not write the unmapped part back")
	_, err = v.WriteAt([]byte{1}, 0)
	require.ErrorIs(t, err, errUnaligned)
	_, err = v.WriteAt(sec('x', 1), 128<<10)
	require.ErrorContains(t, err, "beyond the end")
}

func TestVolatileReorderAndTear(t *testing.T) {
	for _, mode := range []CutMode{CutReorder, CutTear} {
		v, path := openV(t, false)
		for i := range 40 {
			_, err := v.WriteAt(sec(byte('A'+i%26), 4), int64(i)*4*sector)
			require.NoError(t, err)
		}
		rep, err := v.PowerCut(Cut{Mode: mode, Seed: 7})
		require.NoError(t, err)
		assert.Equal(t, 40, rep.Pending)
		assert.Positive(t, rep.Persisted, mode)
		assert.Less(t, rep.Persisted, 40, mode)
		if mode == CutTear {
			assert.Positive(t, rep.Torn)
		}
		// Every write is on disk whole, in part (a leading part, when
		// torn) or not at all.
		disk := onDisk(t, path, 0, 40*4*sector)
		for i := range 40 {
			w := disk[i*4*sector : (i+1)*4*sector]
			n := 0
			for n < 4 && w[n*sector] == byte('A'+i%26) {
				n++
			}
			assert.Equal(t, make([]byte, (4-n)*sector), w[n*sector:], "write %d", i)
		}
	}
}

func TestPlanCut(t *testing.T) {
	sizes := []int{1, 2, 3, 4, 5, 6, 7, 8}
	a, err := PlanCut(sizes, Cut{Mode: CutTear, Seed: 99})
	require.NoError(t, err)
	b, err := PlanCut(sizes, Cut{Mode: CutTear, Seed: 99})
	require.NoError(t, err)
	assert.Equal(t, a, b, "a seed replays")
	c, err := PlanCut(sizes, Cut{Mode: CutTear, Seed: 100})
	require.NoError(t, err)
	assert.NotEqual(t, a, c)
	for _, s := range a {
		assert.LessOrEqual(t, s.Sectors, sizes[s.Write])
	}
	none, err := PlanCut(sizes, Cut{Mode: CutDrop})
	require.NoError(t, err)
	assert.Empty(t, none)
	_, err = PlanCut(sizes, Cut{Mode: "melt"})
	require.ErrorContains(t, err, "use drop, reorder or tear")
}

func TestVolatileNeedsRegularFile(t *testing.T) {
	_, err := Open(t.TempDir(), Options{VolatileCache: true})
	require.ErrorContains(t, err, "needs a regular file")
	v, _ := openV(t, false)
	assert.False(t, v.Properties().WriteThrough)
}
