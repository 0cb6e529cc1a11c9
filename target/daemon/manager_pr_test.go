package daemon

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/tandem-ha/tandem/target/config"
	"github.com/tandem-ha/tandem/target/iscsi"
)

func TestPRStateFile(t *testing.T) {
	a := prStateFile("/var/lib/t", "iqn.2024-01.test:Disk/1", 3)
	b := prStateFile("/var/lib/t", "iqn.2024-01.test:disk_1", 3)
	assert.True(t, strings.HasPrefix(a, "/var/lib/t/pr/iqn.2024-01.test_disk_1-"), a)
	assert.True(t, strings.HasSuffix(a, "-lun3.state"), a)
	assert.NotEqual(t, a, b, "names that sanitize alike keep apart")
}

// TestDamagedStateStopsTheTarget: a LUN whose reservation state is
// damaged stops the whole target (the daemon at start) with the error;
// nothing of it is served, the file is left for the operator.
func TestDamagedStateStopsTheTarget(t *testing.T) {
	dir := t.TempDir()
	state := filepath.Join(dir, "state")
	bad := prStateFile(state, iqn, 1)
	require.NoError(t, os.MkdirAll(filepath.Dir(bad), 0o700))
	require.NoError(t, os.WriteFile(bad, []byte("TPRS torn"), 0o600))

	m := NewManager(iscsi.NewServer(iscsi.Config{}), nil)
	m.SetStateDir(state)
	t.Cleanup(func() { _ = m.Close() })
	err := m.AddTarget(config.Target{Name: iqn, LUNs: []config.LUN{
		{ID: 0, Path: filepath.Join(dir, "lun0"), Size: 1 << 20, BlockSize: 512},
		{ID: 1, Path: filepath.Join(dir, "lun1"), Size: 1 << 20, BlockSize: 512},
	}})
	require.Error(t, err)
	assert.ErrorContains(t, err, "lun 1")
	assert.ErrorContains(t, err, bad)
	assert.Empty(t, m.Targets(), "nothing of the target is served")
	_, err = os.Stat(filepath.Join(dir, "lun0"))
	assert.True(t, os.IsNotExist(err), "the file made for lun 0 is removed again")
	got, err := os.ReadFile(bad)
	require.NoError(t, err)
	assert.Equal(t, "TPRS torn", string(got), "the damaged file is left alone")
}
