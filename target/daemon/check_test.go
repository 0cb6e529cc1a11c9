package daemon

import (
	"context"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/tandem-ha/tandem/lvm"
	"github.com/tandem-ha/tandem/lvm/lvmtest"
	"github.com/tandem-ha/tandem/target/config"
)

func TestCheck(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "disk")
	require.NoError(t, os.WriteFile(file, make([]byte, 1<<20), 0o600))
	fake := lvmtest.New(lvmtest.VG{Name: "vg0", Size: 1 << 30})
	fake.DevDir = filepath.Join(dir, "dev")
	lv := lvm.New(lvm.Options{Runner: fake, DevDir: fake.DevDir})
	_, err := lv.Create(context.Background(), "vg0", "mq", 8<<20)
	require.NoError(t, err)
	state := filepath.Join(dir, "state")

	cfgWith := func(luns ...config.LUN) *config.Config {
		c := config.DefaultConfig()
		c.StateDir = state
		c.Targets = []config.Target{{Name: iqn, LUNs: luns}}
		return c
	}
	good := cfgWith(
		config.LUN{ID: 0, Path: file},
		config.LUN{ID: 1, LV: "vg0/mq"},
		config.LUN{ID: 2, Path: filepath.Join(dir, "new"), Size: 1 << 20}, // created at start
		config.LUN{ID: 3, LV: "vg0/late", Wait: 1},                        // waited for at start
	)
	require.NoError(t, Check(context.Background(), good, lv))
	_, err = os.Stat(filepath.Join(dir, "new"))
	assert.ErrorIs(t, err, os.ErrNotExist, "check creates nothing")

	for _, tc := range []struct {
		desc string
		lun  config.LUN
		want string
	}{
		{"missing file", config.LUN{ID: 0, Path: filepath.Join(dir, "gone")}, "give the LUN a size"},
		{"a directory", config.LUN{ID: 0, Path: dir}, "neither a regular file nor a block device"},
		{"missing lv", config.LUN{ID: 0, LV: "vg0/gone"}, "lv vg0/gone"},
	} {
		t.Run(tc.desc, func(t *testing.T) {
			err := Check(context.Background(), cfgWith(tc.lun), lv)
			require.Error(t, err)
			assert.Contains(t, err.Error(), "lun 0")
			assert.Contains(t, err.Error(), tc.want)
		})
	}

	t.Run("torn reservation state", func(t *testing.T) {
		c := cfgWith(config.LUN{ID: 0, Path: file})
		p := prStateFile(state, iqn, 0)
		require.NoError(t, os.MkdirAll(filepath.Dir(p), 0o700))
		require.NoError(t, os.WriteFile(p, []byte("half a state"), 0o600))
		err := Check(context.Background(), c, lv)
		require.Error(t, err)
		assert.Contains(t, err.Error(), "reservation state file")
		require.NoError(t, os.Remove(p))
		assert.NoError(t, Check(context.Background(), c, lv), "control: the same LUN without the torn file passes")
	})
}
