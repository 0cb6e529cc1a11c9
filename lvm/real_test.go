package lvm_test

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/tandem-ha/tandem/lvm"
)

// realVG makes a VG of size bytes on a loop device over a sparse file and
// returns the options of a client for it in metadata-only mode (this
// host's kernel has no device-mapper), plus the VG name. Everything is removed at cleanup,
// also when the test fails.
func realVG(t *testing.T, size int64) (lvm.Options, string) {
	if os.Geteuid() != 0 {
		t.Skip("needs root: losetup and lvm write block devices")
	}
	for _, bin := range []string{"losetup", "lvm"} {
		if _, err := exec.LookPath(bin); err != nil {
			t.Skipf("%s is not installed (make deps installs util-linux and lvm2)", bin)
		}
	}
	img := filepath.Join(t.TempDir(), "pv.img")
	f, err := os.Create(img)
	require.NoError(t, err)
	require.NoError(t, f.Truncate(size))
	require.NoError(t, f.Close())
	out, err := exec.Command("losetup", "-f", "--show", img).CombinedOutput()
	require.NoError(t, err, "losetup: %s", out)
	loop := strings.TrimSpace(string(out))
	t.Cleanup(func() {
		if out, err := exec.Command("losetup", "-d", loop).CombinedOutput(); err != nil {
			t.Errorf("losetup -d %s: %v: %s", loop, err, out)
		}
	})
	// Only our loop device, no metadata backups in /etc/lvm, no udev.
	config := fmt.Sprintf(`devices { filter = [ "a|^%s$|", "r|.*|" ] use_devicesfile = 0 obtain_device_list_from_udev = 0 } `+
		`backup { backup = 0 archive = 0 } activation { udev_sync = 0 udev_rules = 0 monitoring = 0 }`, loop)
	vg := fmt.Sprintf("tandemtest%d", os.Getpid())
	lvmCmd := func(args ...string) error {
		full := append([]string{args[0], "--driverloaded", "n", "--config", config}, args[1:]...)
		cmd := exec.Command("lvm", full...)
		cmd.Env = append(os.Environ(), "LVM_SUPPRESS_FD_WARNINGS=1")
		if out, err := cmd.CombinedOutput(); err != nil {
			return fmt.Errorf("lvm %s: %v: %s", strings.Join(full, " "), err, out)
		}
		return nil
	}
	require.NoError(t, lvmCmd("pvcreate", loop))
	t.Cleanup(func() { assert.NoError(t, lvmCmd("pvremove", "-y", loop)) })
	require.NoError(t, lvmCmd("vgcreate", vg, loop))
	t.Cleanup(func() { assert.NoError(t, lvmCmd("vgremove", "-f", vg)) })
	return lvm.Options{NoDeviceMapper: true, Config: config}, vg
}

func TestRealLVM(t *testing.T) {
	o, vg := realVG(t, 1<<30)
	c := lvm.New(o)
	ctx := context.Background()

	v, err := c.VG(ctx, vg)
	require.NoError(t, err)
	assert.Equal(t, uint64(4<<20), v.ExtentSize)
	assert.Equal(t, uint64(1<<30-4<<20), v.Size, "1 GiB less lvm's metadata area, in whole extents")
	assert.Equal(t, v.Size, v.Free)
	pvs, err := c.PVs(ctx)
	require.NoError(t, err)
	require.Len(t, pvs, 1)
	assert.Equal(t, vg, pvs[0].VG)

	lv, err := c.Create(ctx, vg, "lun0", 100*mib+512)
	require.NoError(t, err)
	assert.Equal(t, 104*mib, lv.Size, "rounded up to whole extents")
	assert.Equal(t, "/dev/"+vg+"/lun0", lv.Path)
	assert.True(t, lv.Attr.ActiveUnknown, "no device-mapper: lvm cannot tell (lv_attr %s)", lv.Attr.Raw)

	_, err = c.Create(ctx, vg, "lun0", 100*mib)
	assert.ErrorIs(t, err, lvm.ErrExists)
	assert.ErrorContains(t, err, "pick another LV name")

	_, err = c.Create(ctx, vg, "huge", 10*gib)
	assert.ErrorIs(t, err, lvm.ErrNoSpace)
	assert.ErrorContains(t, err, fmt.Sprintf(`volume group %q has 916 MiB free, 10 GiB asked: extend the VG (vgextend) or ask less`, vg))

	lv, err = c.Resize(ctx, vg, "lun0", 200*mib, false)
	require.NoError(t, err)
	assert.Equal(t, 200*mib, lv.Size)
	_, err = c.Resize(ctx, vg, "lun0", 2*gib, false)
	assert.ErrorIs(t, err, lvm.ErrNoSpace)

	_, err = c.Resize(ctx, vg, "lun0", 100*mib, false)
	assert.ErrorIs(t, err, lvm.ErrShrink)
	lv, err = c.Resize(ctx, vg, "lun0", 100*mib, true)
	require.NoError(t, err)
	assert.Equal(t, 100*mib, lv.Size)

	require.NoError(t, c.Activate(ctx, vg, "lun0"), "a no-op without device-mapper, but accepted")
	_, err = c.Device(ctx, vg, "lun0")
	assert.ErrorIs(t, err, lvm.ErrNoDevice)

	_, err = c.CreateThinPool(ctx, vg, "pool0", 200*mib)
	assert.ErrorIs(t, err, lvm.ErrNoKernelSupport)
	_, err = c.CreateThin(ctx, vg, "pool0", "thin0", gib)
	assert.ErrorIs(t, err, lvm.ErrNotFound)

	lvs, err := c.LVs(ctx, vg)
	require.NoError(t, err)
	require.Len(t, lvs, 1, "the failed thin pool left nothing behind: %+v", lvs)

	require.NoError(t, c.Remove(ctx, vg, "lun0"))
	_, err = c.LV(ctx, vg, "lun0")
	assert.ErrorIs(t, err, lvm.ErrNotFound)
	err = c.Remove(ctx, vg, "lun0")
	assert.ErrorIs(t, err, lvm.ErrNotFound)
	_, err = c.VG(ctx, vg+"x")
	assert.ErrorIs(t, err, lvm.ErrNotFound)
}

func TestRealLVMRefusesLUNBackingLV(t *testing.T) {
	o, vg := realVG(t, 256<<20)
	c := lvm.New(o)
	ctx := context.Background()
	_, err := c.Create(ctx, vg, "lun0", 64*mib)
	require.NoError(t, err)
	o.InUse = func(v, l string) (string, bool) { return "lun 0 of iqn.2026-12.io.tandem:mq", v == vg && l == "lun0" }
	held := lvm.New(o)
	err = held.Remove(ctx, vg, "lun0")
	assert.ErrorIs(t, err, lvm.ErrInUse)
	_, err = c.LV(ctx, vg, "lun0")
	assert.NoError(t, err, "still there")
	assert.NoError(t, c.Remove(ctx, vg, "lun0"), "control: without the LUN it goes")
}
