package lvm_test

import (
	"context"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/tandem-ha/tandem/lvm"
	"github.com/tandem-ha/tandem/lvm/lvmtest"
)

// execClient runs the fake lvm binary with env added to ours.
func execClient(t *testing.T, timeout time.Duration, env ...string) *lvm.Client {
	return lvm.New(lvm.Options{Path: lvmtest.Binary(t), Timeout: timeout,
		Runner: lvm.ExecRunner{Env: append(os.Environ(), env...)}})
}

func TestExecRunnerReport(t *testing.T) {
	args := filepath.Join(t.TempDir(), "args")
	c := execClient(t, 0, "FAKE_LVM_ARGS="+args, "FAKE_LVM_STDOUT="+vgsOut)
	vgs, err := c.VGs(ctx(t))
	require.NoError(t, err)
	require.Len(t, vgs, 1)
	assert.Equal(t, uint64(922746880), vgs[0].Free)
	got, err := os.ReadFile(args)
	require.NoError(t, err)
	assert.Equal(t, "vgs\n--reportformat\njson\n--units\nb\n--nosuffix\n-o\nvg_name,vg_size,vg_free,vg_extent_size,pv_count,lv_count,vg_attr\nLVM_SUPPRESS_FD_WARNINGS=1\n", string(got))
}

func TestExecRunnerFailure(t *testing.T) {
	c := execClient(t, 0, "FAKE_LVM_EXIT=5",
		"FAKE_LVM_STDERR=  WARNING: Activation disabled. No device-mapper interaction will be attempted.\n  Logical Volume \"lun0\" already exists in volume group \"vg0\"\n")
	_, err := c.Create(ctx(t), "vg0", "lun0", gib)
	oe := opError(t, err)
	assert.ErrorIs(t, err, lvm.ErrExists)
	assert.Equal(t, 5, oe.ExitCode)
	assert.Contains(t, oe.Stderr, "WARNING: Activation disabled", "stderr is kept whole")
	assert.ErrorContains(t, err, `(lvm said: Logical Volume "lun0" already exists in volume group "vg0")`)

	c = execClient(t, 0, "FAKE_LVM_EXIT=3", "FAKE_LVM_STDERR=  something new\n")
	err = c.Activate(ctx(t), "vg0", "lun0")
	assert.ErrorContains(t, err, "lvchange exited with status 3")
	assert.ErrorContains(t, err, "something new")
}

func TestExecRunnerHangKillsProcessGroup(t *testing.T) {
	pidFile := filepath.Join(t.TempDir(), "child.pid")
	c := execClient(t, 0, "FAKE_LVM_HANG="+pidFile)
	// The test ends the call once the fake has started its child, rather
	// than betting on a short deadline being long enough to get there.
	callCtx, cancel := context.WithCancel(ctx(t))
	defer cancel()
	done := make(chan error, 1)
	go func() { _, err := c.LVs(callCtx, "vg0"); done <- err }()
	var pid int
	require.Eventually(t, func() bool {
		b, err := os.ReadFile(pidFile)
		if err != nil || len(b) == 0 {
			return false
		}
		pid, err = strconv.Atoi(string(b))
		return err == nil
	}, 15*time.Second, 5*time.Millisecond, "the fake starts its child")
	t.Cleanup(func() {
		if !deadOrZombie(pid) {
			_ = syscall.Kill(pid, syscall.SIGKILL)
		}
	})
	cancel()
	var err error
	select {
	case err = <-done:
	case <-time.After(15 * time.Second):
		t.Fatal("the call did not return after its context ended")
	}
	assert.ErrorIs(t, err, lvm.ErrTimeout)
	assert.ErrorContains(t, err, "lvs did not finish")
	assert.ErrorContains(t, err, "[command: "+lvmtest.Binary(t)+" lvs")
	// The child is in lvm's process group, so it was killed too (gone,
	// or a zombie waiting for its new parent to reap it).
	assert.Eventually(t, func() bool { return deadOrZombie(pid) }, 10*time.Second, 10*time.Millisecond)
}

func deadOrZombie(pid int) bool {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return true
	}
	// "pid (comm) S ...": the state follows the last ')'.
	s := string(b)
	f := strings.Fields(s[strings.LastIndexByte(s, ')')+1:])
	return len(f) > 0 && (f[0] == "Z" || f[0] == "X")
}

func TestExecRunnerMissingBinary(t *testing.T) {
	c := lvm.New(lvm.Options{Path: filepath.Join(t.TempDir(), "lvm")})
	_, err := c.PVs(ctx(t))
	oe := opError(t, err)
	assert.Equal(t, -1, oe.ExitCode)
	assert.ErrorContains(t, err, "install lvm2")
}
