package lvm_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/tandem-ha/tandem/lvm"
	"github.com/tandem-ha/tandem/lvm/lvmtest"
)

const (
	mib = uint64(1) << 20
	gib = uint64(1) << 30
)

// lab returns a client over a fake lvm2 with vg0 of 12 GiB and the LUN
// users the test sets in luns ("vg/lv" -> user).
func lab(t *testing.T, mutate ...func(*lvm.Options)) (*lvm.Client, *lvmtest.Fake, map[string]string) {
	fake := lvmtest.New(lvmtest.VG{Name: "vg0", Size: 12 * gib})
	fake.DevDir = t.TempDir()
	luns := map[string]string{}
	o := lvm.Options{Runner: fake, DevDir: fake.DevDir, InUse: func(vg, lv string) (string, bool) {
		u, ok := luns[vg+"/"+lv]
		return u, ok
	}}
	for _, m := range mutate {
		m(&o)
	}
	return lvm.New(o), fake, luns
}

func ctx(t *testing.T) context.Context {
	c, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	t.Cleanup(cancel)
	return c
}

func opError(t *testing.T, err error) *lvm.OpError {
	t.Helper()
	var oe *lvm.OpError
	require.True(t, errors.As(err, &oe), "want *lvm.OpError, got %T: %v", err, err)
	return oe
}

func TestCreateLinearHappy(t *testing.T) {
	c, fake, _ := lab(t)
	lv, err := c.Create(ctx(t), "vg0", "lun0", 10*mib+512)
	require.NoError(t, err)
	assert.Equal(t, "lun0", lv.Name)
	assert.Equal(t, "vg0", lv.VG)
	assert.Equal(t, 12*mib, lv.Size, "rounded up to 4 MiB extents")
	assert.True(t, lv.Attr.Active)
	assert.Equal(t, "/dev/vg0/lun0", lv.Path)

	vg, err := c.VG(ctx(t), "vg0")
	require.NoError(t, err)
	assert.Equal(t, 12*gib-12*mib, vg.Free)
	assert.Equal(t, uint64(lvmtest.DefaultExtentSize), vg.ExtentSize)
	assert.Equal(t, 1, vg.LVCount)

	dev, err := c.Device(ctx(t), "vg0", "lun0")
	require.NoError(t, err)
	assert.Equal(t, lvm.Device{Path: filepath.Join(fake.DevDir, "vg0", "lun0"), Size: 12 * mib}, dev)

	pvs, err := c.PVs(ctx(t))
	require.NoError(t, err)
	require.Len(t, pvs, 1)
	assert.Equal(t, "vg0", pvs[0].VG)

	lvs, err := c.LVs(ctx(t), "vg0")
	require.NoError(t, err)
	assert.Len(t, lvs, 1)
	assert.Contains(t, fake.Calls[0], "--yes", "lvcreate must not wait on a wipe prompt")
}

func TestCreateThinHappy(t *testing.T) {
	c, fake, _ := lab(t)
	pool, err := c.CreateThinPool(ctx(t), "vg0", "pool0", 2*gib)
	require.NoError(t, err)
	assert.True(t, pool.Attr.ThinPool())
	thin, err := c.CreateThin(ctx(t), "vg0", "pool0", "lun1", 100*gib)
	require.NoError(t, err, "thin LVs may exceed the pool and the VG")
	assert.True(t, thin.Attr.Thin())
	assert.Equal(t, "pool0", thin.Pool)
	assert.Equal(t, 100*gib, thin.Size)

	grown, err := c.Resize(ctx(t), "vg0", "lun1", 200*gib, false)
	require.NoError(t, err)
	assert.Equal(t, 200*gib, grown.Size)

	err = c.Remove(ctx(t), "vg0", "pool0")
	assert.ErrorIs(t, err, lvm.ErrInUse)
	assert.ErrorContains(t, err, "the thin pool holds thin LVs lun1")
	assert.NotContains(t, fake.Commands(), "lvremove")
	require.NoError(t, c.Remove(ctx(t), "vg0", "lun1"))
	require.NoError(t, c.Remove(ctx(t), "vg0", "pool0"), "control: an empty pool goes")

	_, err = c.CreateThin(ctx(t), "vg0", "nopool", "lun2", gib)
	assert.ErrorIs(t, err, lvm.ErrNotFound)
	assert.ErrorContains(t, err, "pool made first")
}

func TestCreateVGFull(t *testing.T) {
	c, _, _ := lab(t)
	_, err := c.Create(ctx(t), "vg0", "big", 10*gib)
	require.NoError(t, err)
	_, err = c.Create(ctx(t), "vg0", "more", 10*gib)
	oe := opError(t, err)
	assert.ErrorIs(t, err, lvm.ErrNoSpace)
	assert.Equal(t, 5, oe.ExitCode)
	assert.Contains(t, oe.Stderr, "insufficient free space")
	assert.Contains(t, oe.Args, "lvcreate")
	assert.ErrorContains(t, err, `volume group "vg0" has 2 GiB free, 10 GiB asked: extend the VG (vgextend) or ask less`)
	assert.ErrorContains(t, err, "[command: lvm lvcreate")

	_, err = c.Resize(ctx(t), "vg0", "big", 13*gib, false)
	assert.ErrorIs(t, err, lvm.ErrNoSpace)
	assert.ErrorContains(t, err, `volume group "vg0" has 2 GiB free, 3 GiB asked`)
}

func TestCreateNameTaken(t *testing.T) {
	c, _, _ := lab(t)
	_, err := c.Create(ctx(t), "vg0", "lun0", gib)
	require.NoError(t, err)
	_, err = c.Create(ctx(t), "vg0", "lun0", gib)
	assert.ErrorIs(t, err, lvm.ErrExists)
	assert.ErrorContains(t, err, "pick another LV name")
	assert.ErrorContains(t, err, `already exists in volume group "vg0"`)
}

func TestNotFound(t *testing.T) {
	c, _, _ := lab(t)
	_, err := c.Create(ctx(t), "nosuchvg", "lun0", gib)
	assert.ErrorIs(t, err, lvm.ErrNotFound)
	assert.ErrorContains(t, err, "create it (vgcreate)")
	_, err = c.VG(ctx(t), "nosuchvg")
	assert.ErrorIs(t, err, lvm.ErrNotFound)
	err = c.Remove(ctx(t), "vg0", "nosuchlv")
	assert.ErrorIs(t, err, lvm.ErrNotFound)
	assert.ErrorContains(t, err, "lvs VG lists them")
}

func TestNamesCheckedBeforeAnyCall(t *testing.T) {
	c, fake, _ := lab(t)
	calls := []func() error{
		func() error { _, err := c.Create(ctx(t), "vg0", "lun_tmeta", gib); return err },
		func() error { _, err := c.Create(ctx(t), "-vg", "lun0", gib); return err },
		func() error { _, err := c.CreateThin(ctx(t), "vg0", "snapshotpool", "lun0", gib); return err },
		func() error { _, err := c.Resize(ctx(t), "vg0", "a b", gib, false); return err },
		func() error { return c.Remove(ctx(t), "vg0", "..") },
		func() error { return c.Activate(ctx(t), "vg 0", "lun0") },
		func() error { _, err := c.LVs(ctx(t), "vg/0"); return err },
	}
	for i, call := range calls {
		assert.ErrorIs(t, call(), lvm.ErrInvalidName, "call %d", i)
	}
	_, err := c.Create(ctx(t), "vg0", "lun0", 1000)
	assert.ErrorContains(t, err, "multiple of 512")
	long := strings.Repeat("a-", 45) // 90 bytes, 135 with hyphens doubled
	_, err = c.Create(ctx(t), "vg0", long, gib)
	assert.ErrorIs(t, err, lvm.ErrInvalidName, "the device-mapper name doubles hyphens")
	assert.ErrorContains(t, err, "shorten the VG or LV name")
	assert.Empty(t, fake.Calls, "no lvm command ran")
}

func TestRemoveRefusesLUNAndOpen(t *testing.T) {
	c, fake, luns := lab(t)
	_, err := c.Create(ctx(t), "vg0", "lun0", gib)
	require.NoError(t, err)

	luns["vg0/lun0"] = "lun 0 of iqn.2026-12.io.tandem:mq"
	for desc, call := range map[string]func() error{
		"remove":     func() error { return c.Remove(ctx(t), "vg0", "lun0") },
		"deactivate": func() error { return c.Deactivate(ctx(t), "vg0", "lun0") },
		"shrink":     func() error { _, err := c.Resize(ctx(t), "vg0", "lun0", 512*mib, true); return err },
	} {
		err := call()
		assert.ErrorIs(t, err, lvm.ErrInUse, desc)
		assert.ErrorContains(t, err, "used by lun 0 of iqn.2026-12.io.tandem:mq", desc)
		assert.ErrorContains(t, err, "remove it from the target", desc)
	}
	assert.NotContains(t, fake.Commands(), "lvremove")

	delete(luns, "vg0/lun0")
	fake.LV("vg0", "lun0").Open = true
	err = c.Remove(ctx(t), "vg0", "lun0")
	assert.ErrorIs(t, err, lvm.ErrInUse)
	assert.ErrorContains(t, err, "its device is open")
	assert.NotContains(t, fake.Commands(), "lvremove")

	fake.LV("vg0", "lun0").Open = false
	require.NoError(t, c.Remove(ctx(t), "vg0", "lun0"))
	assert.Nil(t, fake.LV("vg0", "lun0"))
	_, err = os.Stat(filepath.Join(fake.DevDir, "vg0", "lun0"))
	assert.True(t, os.IsNotExist(err), "device node gone")
}

// TestOpenRaceLvmRefuses: the LV opens between our check and lvremove;
// lvm's own refusal comes back as ErrInUse too.
func TestOpenRaceLvmRefuses(t *testing.T) {
	c, fake, _ := lab(t)
	_, err := c.Create(ctx(t), "vg0", "lun0", gib)
	require.NoError(t, err)
	fake.Stdout["lvs"] = ""
	// lvs printing nothing is garbage: Remove stops there.
	err = c.Remove(ctx(t), "vg0", "lun0")
	assert.ErrorIs(t, err, lvm.ErrBadOutput)
	assert.NotContains(t, fake.Commands(), "lvremove")
	delete(fake.Stdout, "lvs")

	fake.LV("vg0", "lun0").Open = true
	err = c.Deactivate(ctx(t), "vg0", "lun0")
	assert.ErrorIs(t, err, lvm.ErrInUse)
}

func TestShrinkNeedsForce(t *testing.T) {
	c, fake, _ := lab(t)
	_, err := c.Create(ctx(t), "vg0", "lun0", 2*gib)
	require.NoError(t, err)
	_, err = c.Resize(ctx(t), "vg0", "lun0", gib, false)
	assert.ErrorIs(t, err, lvm.ErrShrink)
	assert.ErrorContains(t, err, "2 GiB to 1 GiB would destroy the last 1 GiB")
	assert.NotContains(t, fake.Commands(), "lvresize")

	lv, err := c.Resize(ctx(t), "vg0", "lun0", gib, true)
	require.NoError(t, err)
	assert.Equal(t, gib, lv.Size)

	same, err := c.Resize(ctx(t), "vg0", "lun0", gib, false)
	require.NoError(t, err, "the same size is no change")
	assert.Equal(t, gib, same.Size)

	grown, err := c.Resize(ctx(t), "vg0", "lun0", 3*gib, false)
	require.NoError(t, err)
	assert.Equal(t, 3*gib, grown.Size)
	assert.Contains(t, fake.Commands(), "lvextend")
}

func TestActivateDeactivateDevice(t *testing.T) {
	c, fake, _ := lab(t)
	_, err := c.Create(ctx(t), "vg0", "lun0", gib)
	require.NoError(t, err)
	require.NoError(t, c.Deactivate(ctx(t), "vg0", "lun0"))
	_, err = c.Device(ctx(t), "vg0", "lun0")
	assert.ErrorIs(t, err, lvm.ErrNoDevice)
	assert.ErrorContains(t, err, "lvchange -ay vg0/lun0")

	require.NoError(t, c.Activate(ctx(t), "vg0", "lun0"))
	dev, err := c.Device(ctx(t), "vg0", "lun0")
	require.NoError(t, err)
	assert.Equal(t, gib, dev.Size)

	require.NoError(t, os.Remove(dev.Path))
	_, err = c.Device(ctx(t), "vg0", "lun0")
	assert.ErrorIs(t, err, lvm.ErrNoDevice)
	assert.ErrorContains(t, err, "udevadm settle")
	assert.Contains(t, fake.Commands(), "lvchange")
}

func TestHangTimesOut(t *testing.T) {
	c, fake, _ := lab(t, func(o *lvm.Options) { o.Timeout = 50 * time.Millisecond })
	fake.Hang["lvcreate"] = true
	_, err := c.Create(ctx(t), "vg0", "lun0", gib)
	oe := opError(t, err)
	assert.ErrorIs(t, err, lvm.ErrTimeout)
	assert.Equal(t, -1, oe.ExitCode)
	assert.ErrorContains(t, err, "lvcreate did not finish")
	assert.ErrorContains(t, err, "holding the VG lock")
	assert.ErrorContains(t, err, "[command: lvm lvcreate --yes")

	// The caller's own deadline bounds it too.
	short, cancel := context.WithTimeout(context.Background(), 10*time.Millisecond)
	defer cancel()
	fake.Hang["lvs"] = true
	c2 := lvm.New(lvm.Options{Runner: fake})
	_, err = c2.LVs(short, "")
	assert.ErrorIs(t, err, lvm.ErrTimeout)
	assert.ErrorContains(t, err, "lvs did not finish")
}

func TestGarbageReport(t *testing.T) {
	c, fake, _ := lab(t)
	fake.Stdout["vgs"] = "  Volume group vg0 has 12 GiB\n"
	_, err := c.VGs(ctx(t))
	oe := opError(t, err)
	assert.ErrorIs(t, err, lvm.ErrBadOutput)
	assert.ErrorContains(t, err, "lvmreport(7)")
	assert.Equal(t, 0, oe.ExitCode)

	fake.Stdout["vgs"] = `{"report":[{"vg":[{"vg_name":"vg0","vg_size":"12.00g"}]}]}`
	_, err = c.VG(ctx(t), "vg0")
	assert.ErrorIs(t, err, lvm.ErrBadOutput)
}

func TestNoDeviceMapperFlags(t *testing.T) {
	c, fake, _ := lab(t, func(o *lvm.Options) { o.NoDeviceMapper, o.Config = true, "devices { filter = [ \"r|.*|\" ] }" })
	lv, err := c.Create(ctx(t), "vg0", "lun0", gib)
	require.NoError(t, err)
	assert.True(t, lv.Attr.ActiveUnknown)
	assert.Equal(t, []string{"lvm", "lvcreate", "--driverloaded", "n", "--config", "devices { filter = [ \"r|.*|\" ] }",
		"--yes", "-an", "-Zn", "--type", "linear", "-n", "lun0", "-L", "1073741824b", "vg0"}, fake.Calls[0])
	for _, call := range fake.Calls {
		assert.Equal(t, []string{"--driverloaded", "n"}, call[2:4], "every command: %v", call)
	}
	_, err = c.CreateThinPool(ctx(t), "vg0", "pool0", gib)
	assert.ErrorIs(t, err, lvm.ErrNoKernelSupport)
	assert.ErrorContains(t, err, "thin pools cannot be made")
	assert.NotContains(t, err.Error(), "WARNING", "warnings do not hide the error")
	_, err = c.Device(ctx(t), "vg0", "lun0")
	assert.ErrorIs(t, err, lvm.ErrNoDevice)
	assert.ErrorContains(t, err, "NoDeviceMapper")
}
