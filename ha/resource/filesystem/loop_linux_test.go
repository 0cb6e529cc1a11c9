package filesystem

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"golang.org/x/sys/unix"

	"github.com/tandem-ha/tandem/ha/resource"
)

// loopExt4 makes a 32 MiB ext4 image on a loop device; everything is undone
// at cleanup, also when the test fails half way.
func loopExt4(t *testing.T) (dev, dir string) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("filesystem tests need root for losetup and mount; run: sudo go test ./ha/resource/filesystem/")
	}
	for _, tool := range []string{"losetup", "mkfs.ext4", "e2fsck"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skipf("%s not installed (apt-get install util-linux e2fsprogs)", tool)
		}
	}
	tmp := t.TempDir()
	img := filepath.Join(tmp, "fs.img")
	require.NoError(t, os.WriteFile(img, nil, 0o600))
	require.NoError(t, os.Truncate(img, 32<<20))
	out, err := exec.Command("losetup", "--find", "--show", img).CombinedOutput()
	if err != nil {
		t.Skipf("losetup failed (no loop devices here?): %v: %s", err, out)
	}
	dev = strings.TrimSpace(string(out))
	dir = filepath.Join(tmp, "mnt")
	t.Cleanup(func() {
		for unix.Unmount(dir, unix.MNT_DETACH) == nil {
		}
		_ = exec.Command("losetup", "-d", dev).Run()
	})
	out, err = exec.Command("mkfs.ext4", "-q", "-F", dev).CombinedOutput()
	require.NoError(t, err, "%s", out)
	return dev, dir
}

func TestLoopLifecycle(t *testing.T) {
	dev, dir := loopExt4(t)
	r, err := resource.Build(resource.Spec{Type: Type, Name: "data", Params: map[string]string{
		"device": dev, "directory": dir, "fstype": "ext4", "options": "noatime,errors=remount-ro"}}, nil)
	require.NoError(t, err)
	ctx := context.Background()

	st, err := r.Monitor(ctx)
	require.NoError(t, err)
	assert.Equal(t, resource.StatusStopped, st)

	require.NoError(t, r.Start(ctx))
	require.NoError(t, r.Start(ctx), "start of a mounted filesystem succeeds")
	st, err = r.Monitor(ctx)
	require.NoError(t, err)
	assert.Equal(t, resource.StatusRunning, st)
	require.NoError(t, os.WriteFile(filepath.Join(dir, "hello"), []byte("hi"), 0o644))

	require.NoError(t, r.Stop(ctx))
	require.NoError(t, r.Stop(ctx), "stop of an unmounted filesystem succeeds")
	st, err = r.Monitor(ctx)
	require.NoError(t, err)
	assert.Equal(t, resource.StatusStopped, st)
	_, err = os.Stat(filepath.Join(dir, "hello"))
	assert.True(t, os.IsNotExist(err), "the file lives on the unmounted filesystem")
}

func TestLoopBusyForceStop(t *testing.T) {
	dev, dir := loopExt4(t)
	fs := NewFS("data", Config{Device: dev, Directory: dir, FSType: "ext4", Fsck: DefaultFsck("ext4"), KillGrace: time.Second}, nil)
	ctx := context.Background()
	require.NoError(t, fs.Start(ctx))

	// One holder by cwd that obeys SIGTERM, one by open fd that ignores it.
	byCwd := exec.Command("sleep", "60")
	byCwd.Dir = dir
	require.NoError(t, byCwd.Start())
	byFd := exec.Command("sh", "-c", `trap "" TERM; exec 3>`+dir+`/log; while :; do sleep 0.05; done`)
	require.NoError(t, byFd.Start())
	t.Cleanup(func() {
		_ = byCwd.Process.Kill()
		_ = byFd.Process.Kill()
		_ = byCwd.Wait()
		_ = byFd.Wait()
	})
	require.Eventually(t, func() bool {
		return len(Holders("/proc", dir, os.Getpid())) >= 2
	}, 2*time.Second, 20*time.Millisecond)

	err := fs.Stop(ctx)
	require.ErrorIs(t, err, ErrBusy)
	st, err := fs.Monitor(ctx)
	require.NoError(t, err)
	assert.Equal(t, resource.StatusRunning, st)

	require.NoError(t, fs.ForceStop(ctx))
	require.NoError(t, fs.Stop(ctx))
	st, err = fs.Monitor(ctx)
	require.NoError(t, err)
	assert.Equal(t, resource.StatusStopped, st)
	assert.Error(t, byCwd.Wait(), "killed by SIGTERM")
	assert.Error(t, byFd.Wait(), "killed by SIGKILL")
}

func TestLoopFsckFailureAndWrongDevice(t *testing.T) {
	dev, dir := loopExt4(t)
	checker := filepath.Join(t.TempDir(), "fsck")
	require.NoError(t, os.WriteFile(checker, []byte("#!/bin/sh\necho bad superblock >&2\nexit 4\n"), 0o755))
	fs := NewFS("data", Config{Device: dev, Directory: dir, FSType: "ext4", Fsck: []string{checker}}, nil)
	err := fs.Start(context.Background())
	assert.ErrorContains(t, err, "uncorrected")
	st, err := fs.Monitor(context.Background())
	require.NoError(t, err)
	assert.Equal(t, resource.StatusStopped, st)

	// Something else mounted on the directory: Start refuses, Monitor fails,
	// Stop leaves it alone.
	require.NoError(t, os.MkdirAll(dir, 0o755))
	require.NoError(t, unix.Mount("tmpfs", dir, "tmpfs", 0, "size=1m"))
	fs = NewFS("data", Config{Device: dev, Directory: dir, FSType: "ext4"}, nil)
	assert.ErrorContains(t, fs.Start(context.Background()), "already has tmpfs mounted")
	st, err = fs.Monitor(context.Background())
	assert.Error(t, err)
	assert.Equal(t, resource.StatusFailed, st)
	require.NoError(t, fs.Stop(context.Background()))
	m, ok, err := fs.mount()
	require.NoError(t, err)
	require.True(t, ok)
	assert.Equal(t, "tmpfs", m.FSType)
}
