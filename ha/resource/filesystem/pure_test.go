package filesystem

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"golang.org/x/sys/unix"

	"github.com/tandem-ha/tandem/ha/resource"
)

const sampleMountInfo = `22 1 8:1 / / rw,relatime shared:1 - ext4 /dev/sda1 rw,errors=remount-ro
36 22 7:3 / /srv/my\040data rw,noatime master:1 - ext4 /dev/loop3 rw
37 22 0:40 / /run/x rw - tmpfs tmpfs rw,size=1024k
38 36 7:4 / /srv/my\040data rw - ext4 /dev/loop4 rw
`

func TestParseMountInfo(t *testing.T) {
	ms, err := ParseMountInfo(strings.NewReader(sampleMountInfo))
	require.NoError(t, err)
	require.Len(t, ms, 4)
	assert.Equal(t, Mount{ID: 36, Parent: 22, Major: 7, Minor: 3, Root: "/", MountPoint: "/srv/my data",
		Options: "rw,noatime", FSType: "ext4", Source: "/dev/loop3", SuperOptions: "rw"}, ms[1])
	m, ok := find(ms, "/srv/my data")
	require.True(t, ok)
	assert.Equal(t, uint32(4), m.Minor, "the top of a stack wins")
	_, ok = find(ms, "/srv")
	assert.False(t, ok)

	for _, bad := range []string{"1 2 3", "x 1 8:1 / / rw - ext4 /dev/a rw", "1 1 81 / / rw - ext4 /dev/a rw", "1 1 8:1 / / rw ext4 /dev/a rw"} {
		_, err := ParseMountLine(bad)
		assert.Error(t, err, bad)
	}
	assert.Equal(t, `a\b c\9`, unescape(`a\134b\040c\9`))
}

func FuzzParseMountLine(f *testing.F) {
	for _, l := range strings.Split(strings.TrimSpace(sampleMountInfo), "\n") {
		f.Add(l)
	}
	f.Add("1 1 8:1 / / rw - ext4")
	f.Add(`1 1 8:1 /\ / rw - x \0`)
	f.Fuzz(func(t *testing.T, line string) {
		m, err := ParseMountLine(line)
		if err != nil {
			return
		}
		assert.NotEmpty(t, m.FSType)
	})
}

func TestParseOptions(t *testing.T) {
	for _, tc := range []struct {
		in    string
		flags uintptr
		data  string
		bad   string
	}{
		{"", 0, "", ""},
		{"defaults", 0, "", ""},
		{"ro,noatime,errors=remount-ro", unix.MS_RDONLY | unix.MS_NOATIME, "errors=remount-ro", ""},
		{"ro,rw", 0, "", ""},
		{"nodev, nosuid ,_netdev,x-systemd.requires=a,data=ordered", unix.MS_NODEV | unix.MS_NOSUID, "data=ordered", ""},
		{"bind", 0, "", "bind"},
		{"noatime,remount", 0, "", "remount"},
	} {
		flags, data, bad := ParseOptions(tc.in)
		assert.Equal(t, tc.bad, bad, tc.in)
		if tc.bad == "" {
			assert.Equal(t, tc.flags, flags, tc.in)
			assert.Equal(t, tc.data, data, tc.in)
		}
	}
}

func TestJudgeFsck(t *testing.T) {
	for code, ok := range map[int]bool{0: true, 1: true, 2: true, 3: false, 4: false, 8: false, 12: false, 16: false, 32: false} {
		assert.Equal(t, ok, JudgeFsck(code) == nil, "exit %d", code)
	}
	assert.ErrorContains(t, JudgeFsck(4), "uncorrected")
}

func TestMapsPath(t *testing.T) {
	p, ok := mapsPath("7f1c2a000000-7f1c2a021000 r-xp 00000000 08:01 131          /srv/data/lib x.so")
	require.True(t, ok)
	assert.Equal(t, "/srv/data/lib x.so", p)
	_, ok = mapsPath("7ffd1000-7ffd2000 rw-p 00000000 00:00 0                  [stack]")
	assert.False(t, ok)
	_, ok = mapsPath("7ffd1000-7ffd2000 rw-p 00000000 00:00 0")
	assert.False(t, ok)
}

// TestHolders runs over a fake /proc built from symlinks.
func TestHolders(t *testing.T) {
	proc := t.TempDir()
	mk := func(pid, rel, target string) {
		p := filepath.Join(proc, pid, rel)
		require.NoError(t, os.MkdirAll(filepath.Dir(p), 0o755))
		require.NoError(t, os.Symlink(target, p))
	}
	mk("10", "cwd", "/srv/data/sub")
	mk("11", "cwd", "/srv/database") // a sibling, not under /srv/data
	mk("12", "fd/3", "/srv/data/log (deleted)")
	mk("13", "root", "/srv/data")
	mk("14", "exe", "/srv/data/bin/app")
	mk("1", "cwd", "/srv/data")  // init is never killed
	mk("15", "cwd", "/srv/data") // skipped: "ourselves"
	require.NoError(t, os.MkdirAll(filepath.Join(proc, "16"), 0o755))
	require.NoError(t, os.WriteFile(filepath.Join(proc, "16", "maps"),
		[]byte("0-1 r-xp 00000000 07:03 12 /srv/data/lib.so\n"), 0o644))
	require.NoError(t, os.MkdirAll(filepath.Join(proc, "self"), 0o755))
	assert.Equal(t, []int{10, 12, 13, 14, 16}, Holders(proc, "/srv/data", 15))
}

func TestNewValidation(t *testing.T) {
	r, err := resource.Build(resource.Spec{Type: Type, Name: "fs", Params: map[string]string{
		"device": "/dev/loop9", "directory": "/srv/data/", "fstype": "ext4"}}, nil)
	require.NoError(t, err)
	fs := r.(*FS)
	assert.Equal(t, []string{"e2fsck", "-p"}, fs.cfg.Fsck)
	assert.Equal(t, "/srv/data", fs.cfg.Directory)

	r, err = New(resource.Spec{Type: Type, Name: "fs", Params: map[string]string{
		"device": "/dev/loop9", "directory": "/srv/data", "fstype": "ext4", "fsck": "none"}}, nil)
	require.NoError(t, err)
	assert.Nil(t, r.(*FS).cfg.Fsck)
	r, err = New(resource.Spec{Type: Type, Name: "fs", Params: map[string]string{
		"device": "/dev/loop9", "directory": "/srv/data", "fstype": "xfs"}}, nil)
	require.NoError(t, err)
	assert.Nil(t, r.(*FS).cfg.Fsck)

	base := func(kv ...string) map[string]string {
		m := map[string]string{"device": "/dev/loop9", "directory": "/srv/data", "fstype": "ext4"}
		for i := 0; i+1 < len(kv); i += 2 {
			if kv[i+1] == "" {
				delete(m, kv[i])
			} else {
				m[kv[i]] = kv[i+1]
			}
		}
		return m
	}
	for _, tc := range []struct {
		params map[string]string
		want   string
	}{
		{base("device", ""), "params.device is missing"},
		{base("directory", "data"), "params.directory"},
		{base("directory", "/"), "params.directory"},
		{base("fstype", ""), "params.fstype is missing"},
		{base("options", "bind"), "params.options"},
		{base("fsck", "no-such-checker -y"), "params.fsck"},
		{base("mountpoint", "/x"), "params.mountpoint is not a filesystem parameter"},
	} {
		err := resource.Spec{Type: Type, Name: "fs", Params: tc.params}.Validate()
		assert.ErrorContains(t, err, tc.want)
	}
}

func TestDeviceFromEnv(t *testing.T) {
	spec := resource.Spec{Type: Type, Name: "fs", Params: map[string]string{
		"device": "${disk.device}", "directory": "/srv/data", "fstype": "ext4", "fsck": "none"}}
	r, err := New(spec, nil)
	require.NoError(t, err)
	f := r.(*FS)
	env := resource.NewEnv()
	ctx := resource.WithEnv(context.Background(), env)
	assert.ErrorContains(t, f.resolveDevice(ctx), `list resource "disk" before this one`)
	env.Set("disk.device", "/dev/sdq")
	require.NoError(t, f.resolveDevice(ctx))
	assert.Equal(t, "/dev/sdq", f.cfg.Device)
}
