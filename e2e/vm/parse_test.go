package vm

import (
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// lddIscsiadm is ldd's output for Debian 12's iscsiadm.
const lddIscsiadm = `	linux-vdso.so.1 (0x00007ffd4b5f2000)
	libisns.so.0 => /lib/x86_64-linux-gnu/libisns.so.0 (0x00007f2089915000)
	libcrypto.so.3 => /lib/x86_64-linux-gnu/libcrypto.so.3 (0x00007f2089400000)
	libc.so.6 => /lib/x86_64-linux-gnu/libc.so.6 (0x00007f20891fe000)
	/lib64/ld-linux-x86-64.so.2 (0x00007f2089a21000)
	libzstd.so.1 => /lib/x86_64-linux-gnu/libzstd.so.1 (0x00007f20890bd000)
	libc.so.6 => /lib/x86_64-linux-gnu/libc.so.6 (0x00007f20891fe000)
`

func TestParseLDD(t *testing.T) {
	libs, missing := ParseLDD(lddIscsiadm)
	assert.Equal(t, []string{
		"/lib/x86_64-linux-gnu/libisns.so.0", "/lib/x86_64-linux-gnu/libcrypto.so.3",
		"/lib/x86_64-linux-gnu/libc.so.6", "/lib64/ld-linux-x86-64.so.2", "/lib/x86_64-linux-gnu/libzstd.so.1",
	}, libs)
	assert.Empty(t, missing)

	libs, missing = ParseLDD("\tlibfoo.so.1 => not found\n\tlibc.so.6 => /lib/libc.so.6 (0x1)\n")
	assert.Equal(t, []string{"/lib/libc.so.6"}, libs)
	assert.Equal(t, []string{"libfoo.so.1"}, missing)

	libs, missing = ParseLDD("\tnot a dynamic executable\n")
	assert.Empty(t, libs)
	assert.Empty(t, missing)
}

func TestParseShowDepends(t *testing.T) {
	out := `insmod /k/lib/modules/6.1.0-56-amd64/kernel/drivers/scsi/scsi_common.ko 
insmod /k/lib/modules/6.1.0-56-amd64/kernel/drivers/scsi/scsi_mod.ko 
builtin crc32c
insmod /k/lib/modules/6.1.0-56-amd64/kernel/drivers/scsi/scsi_common.ko 
insmod /k/lib/modules/6.1.0-56-amd64/kernel/drivers/scsi/sd_mod.ko dix=1
`
	assert.Equal(t, []string{
		"/k/lib/modules/6.1.0-56-amd64/kernel/drivers/scsi/scsi_common.ko",
		"/k/lib/modules/6.1.0-56-amd64/kernel/drivers/scsi/scsi_mod.ko",
		"/k/lib/modules/6.1.0-56-amd64/kernel/drivers/scsi/sd_mod.ko",
	}, ParseShowDepends(out))
}

func TestBusyboxLinks(t *testing.T) {
	out := "usr/bin/[\nbin/busybox\nbin/sh\n/abs\n../escape\nsbin/modprobe\n\n"
	assert.Equal(t, []string{"usr/bin/[", "bin/sh", "sbin/modprobe"}, BusyboxLinks(out))
}

func TestParseAptDepends(t *testing.T) {
	out := "linux-image-amd64\n  Depends: linux-image-6.1.0-56-amd64\n  Recommends: firmware\n"
	assert.Equal(t, "linux-image-6.1.0-56-amd64", ParseAptDepends(out, "linux-image-"))
	assert.Equal(t, "", ParseAptDepends("linux-image-amd64\n  Depends: <virtual>\n", "linux-image-"))
}

func TestAddresses(t *testing.T) {
	s := netip.MustParsePrefix("10.213.7.0/24")
	h, err := HostAddr(s)
	require.NoError(t, err)
	assert.Equal(t, "10.213.7.1/24", h.String())
	g, err := GuestAddr(s, 2)
	require.NoError(t, err)
	assert.Equal(t, "10.213.7.13/24", g.String())
	_, err = HostAddr(netip.MustParsePrefix("10.0.0.0/30"))
	assert.Error(t, err)
	_, err = HostAddr(netip.MustParsePrefix("fd00::/64"))
	assert.Error(t, err)
}

func TestQemuArgs(t *testing.T) {
	c := Config{Name: "g0", Image: &Image{Kernel: "/k/vmlinuz", Initrd: "/k/initrd.img"}, Dir: "/r",
		Netns: "tdmv0-host", Tap: "tdm-tx-0", IP: netip.MustParsePrefix("10.213.7.11/24"), IQN: "iqn.x:g0"}
	require.NoError(t, c.defaults())
	a := strings.Join(QemuArgs(c), " ")
	for _, want := range []string{
		"-accel tcg,tb-size=64", "-m 256", "-nodefaults", "-no-reboot",
		"-kernel /k/vmlinuz -initrd /k/initrd.img",
		"-serial file:/r/g0.console.log",
		"-chardev socket,id=ctl,path=/r/g0.ctl,server=on,wait=off",
		"-device virtserialport,chardev=ctl,name=" + ControlPortName,
		"-netdev tap,id=net0,ifname=tdm-tx-0,script=no,downscript=no",
		"-device virtio-net-pci,netdev=net0,mac=" + MACFor("g0"),
	} {
		assert.Contains(t, a, want)
	}
	assert.Equal(t, "console=ttyS0 panic=-1 loglevel=4 tandem.hostname=g0 tandem.ip=10.213.7.11/24 tandem.iqn=iqn.x:g0", KernelCmdline(c))
	assert.NotContains(t, a, "-netdev user", "no user-mode networking: only the lab bridge")

	long := Config{Name: "g0", Image: c.Image, Dir: "/" + strings.Repeat("d", 120)}
	assert.ErrorContains(t, long.defaults(), "shorter Dir")
	bad := Config{Name: "g0", Image: c.Image, Dir: "/r", Tap: "a-very-long-tap-name"}
	assert.Error(t, bad.defaults())
}

func TestQemuArgsNICsDrivesEvents(t *testing.T) {
	c := Config{Name: "n1", Image: &Image{Kernel: "/k/vmlinuz", Initrd: "/k/initrd.img"}, Dir: "/r",
		Tap: "t0", IP: netip.MustParsePrefix("10.0.0.11/24"),
		NICs:   []NIC{{Tap: "t1", IP: netip.MustParsePrefix("10.0.1.11/24")}},
		Drives: []string{"/r/disk.img"}, EventPort: true}
	require.NoError(t, c.defaults())
	a := strings.Join(QemuArgs(c), " ")
	for _, want := range []string{
		"-netdev tap,id=net1,ifname=t1,script=no,downscript=no",
		"-device virtio-net-pci,netdev=net1,mac=" + MACFor("n1-nic1"),
		"-drive file=/r/disk.img,format=raw,if=virtio,index=0",
		"-chardev socket,id=evt,path=/r/n1.evt,server=on,wait=off",
		"-device virtserialport,chardev=evt,name=" + EventPortName,
	} {
		assert.Contains(t, a, want)
	}
	assert.Contains(t, KernelCmdline(c), "tandem.ip1=10.0.1.11/24")
	bad := c
	bad.NICs = []NIC{{Tap: ""}}
	assert.ErrorContains(t, bad.defaults(), "further NIC")
}

func TestMACFor(t *testing.T) {
	m := MACFor("guest0")
	assert.Equal(t, m, MACFor("guest0"))
	assert.NotEqual(t, m, MACFor("guest1"))
	assert.True(t, strings.HasPrefix(m, "52:54:"), "locally administered unicast")
}

func TestHashEntries(t *testing.T) {
	dir := t.TempDir()
	src := filepath.Join(dir, "f")
	require.NoError(t, os.WriteFile(src, []byte("a"), 0o644))
	ents := func() []entry {
		return []entry{{path: "/b", data: []byte("x"), mode: 0o644}, {path: "/a", src: src, mode: 0o755}, {path: "/l", link: "/a"}}
	}
	k1, err := hashEntries(ents(), "s")
	require.NoError(t, err)
	e := ents()
	e[0], e[1] = e[1], e[0]
	k2, err := hashEntries(e, "s")
	require.NoError(t, err)
	assert.Equal(t, k1, k2, "order does not matter")
	require.NoError(t, os.WriteFile(src, []byte("b"), 0o644))
	k3, err := hashEntries(ents(), "s")
	require.NoError(t, err)
	assert.NotEqual(t, k1, k3, "content matters")
	k4, err := hashEntries(ents(), "t")
	require.NoError(t, err)
	assert.NotEqual(t, k3, k4, "salt (format, kernel) matters")
}

func TestDedupe(t *testing.T) {
	got := dedupe([]entry{{path: "/a", link: "1"}, {path: "/b"}, {path: "/a", link: "2"}})
	assert.Equal(t, []entry{{path: "/b"}, {path: "/a", link: "2"}}, got)
}

func FuzzParseLDD(f *testing.F) {
	f.Add(lddIscsiadm)
	f.Add("\tlibfoo.so => not found\n")
	f.Add("=>")
	f.Fuzz(func(t *testing.T, s string) {
		libs, _ := ParseLDD(s)
		for _, l := range libs {
			assert.True(t, strings.HasPrefix(l, "/"))
		}
	})
}

func FuzzParseShowDepends(f *testing.F) {
	f.Add("insmod /a.ko \nbuiltin x\ninsmod /a.ko\n")
	f.Add("insmod")
	f.Fuzz(func(t *testing.T, s string) {
		seen := map[string]bool{}
		for _, m := range ParseShowDepends(s) {
			assert.False(t, seen[m], "no duplicates")
			seen[m] = true
		}
	})
}
