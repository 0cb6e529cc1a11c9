package vm

import (
	"context"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// requireLab skips unless the lab can run here: root, /dev/net/tun and
// qemu (make e2e-vm-smoke installs the packages).
func requireLab(t *testing.T) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("the VM lab needs root (bridges, taps)")
	}
	if _, err := os.Stat("/dev/net/tun"); err != nil {
		t.Skip("the VM lab needs /dev/net/tun")
	}
	for _, b := range []string{"qemu-system-x86_64", "busybox", "iscsiadm", "cpio"} {
		if _, err := exec.LookPath(b); err != nil {
			t.Skipf("%s not installed: run make e2e-vm-smoke once, it installs the lab's packages", b)
		}
	}
}

// TestBootAndRun boots one guest on a lab bridge and runs commands in it:
// exit codes, stdout, stderr, stdin, the network to the host, and that
// Close removes what the lab made.
func TestBootAndRun(t *testing.T) {
	requireLab(t)
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	cache, err := DefaultCacheDir(ctx)
	require.NoError(t, err)
	start := time.Now()
	img, err := BuildImage(ctx, ImageOptions{CacheDir: cache})
	require.NoError(t, err)
	t.Logf("image %s (reused %v) in %s", filepath.Base(img.Initrd), img.Reused, time.Since(start).Round(time.Millisecond))

	dir, err := os.MkdirTemp("", "tdmvm")
	require.NoError(t, err)
	t.Cleanup(func() { os.RemoveAll(dir) })
	// DefaultSubnet although make e2e-vm-smoke may run at the same time:
	// each lab's subnet lives in its own namespace.
	lab, err := NewLab(ctx, LabOptions{Dir: dir, Image: img})
	require.NoError(t, err)
	t.Cleanup(func() { lab.Close() })
	assert.False(t, rootHasAddr(t, DefaultSubnet), "no lab address in the root namespace")
	start = time.Now()
	g, err := lab.AddGuest(ctx, "g0", GuestOptions{IQN: "iqn.2026-11.test.tandem:g0"})
	require.NoError(t, err)
	t.Logf("boot in %s", time.Since(start).Round(time.Millisecond))

	out, err := g.Run(ctx, "cat", "/etc/iscsi/initiatorname.iscsi")
	require.NoError(t, err)
	assert.Equal(t, "InitiatorName=iqn.2026-11.test.tandem:g0\n", out)

	r, err := g.Exec(ctx, Request{Argv: []string{"sh", "-c", "cat; echo oops >&2; exit 3"}, Stdin: []byte("in")})
	require.NoError(t, err)
	assert.Equal(t, 3, r.Exit)
	assert.Equal(t, "in", string(r.Stdout))
	assert.Equal(t, "oops\n", string(r.Stderr))
	var ee *ExitError
	require.ErrorAs(t, r.Err([]string{"x"}), &ee)
	assert.Equal(t, 3, ee.Exit)

	r, err = g.Exec(ctx, Request{Argv: []string{"sleep", "10"}, Timeout: 200 * time.Millisecond})
	require.NoError(t, err)
	assert.Equal(t, -1, r.Exit)
	assert.Contains(t, r.Error, "timeout")

	_, err = g.Run(ctx, "ping", "-c", "1", "-W", "5", lab.HostAddr.Addr().String())
	require.NoError(t, err, "guest reaches the host over the lab bridge")

	out, err = g.Run(ctx, "sh", "-c", "pidof iscsid && ls /sys/module | grep -c -x -e iscsi_tcp -e sd_mod -e ext4 -e crc32c_generic")
	require.NoError(t, err)
	assert.True(t, strings.HasSuffix(out, "4\n"), "modules loaded and iscsid running: %q", out)

	assert.True(t, lab.Host().HasAddr(bridge, lab.HostAddr.Addr().String()), "the host side's address is in the lab's namespace")

	netns := lab.Netns()
	require.FileExists(t, "/run/netns/"+netns)
	require.NoError(t, lab.Close())
	assert.NoFileExists(t, "/run/netns/"+netns, "the namespace, bridge and taps are gone")
	assert.False(t, g.p.Running(), "qemu is gone")
}

// rootHasAddr reports whether an interface of this (root) namespace has
// an address in subnet.
func rootHasAddr(t *testing.T, subnet netip.Prefix) bool {
	ifs, err := net.Interfaces()
	require.NoError(t, err)
	for _, ifc := range ifs {
		addrs, _ := ifc.Addrs()
		for _, a := range addrs {
			if ipn, ok := a.(*net.IPNet); ok {
				if ip, ok := netip.AddrFromSlice(ipn.IP); ok && subnet.Contains(ip.Unmap()) {
					return true
				}
			}
		}
	}
	return false
}

// TestLabClose: Close runs the deferred teardown last-in first-out, and a
// second Close waits for the first to finish (a signal handler's Close is
// not cut short by main's deferred one).
func TestLabClose(t *testing.T) {
	l := &Lab{log: slog.New(slog.DiscardHandler), closeDone: make(chan struct{})}
	var order []int
	release := make(chan struct{})
	l.Defer(func() { order = append(order, 1) })
	l.Defer(func() { <-release; order = append(order, 2) })
	first := make(chan struct{})
	go func() { l.Close(); close(first) }()
	second := make(chan struct{})
	go func() {
		for { // wait until the first Close has started
			l.mu.Lock()
			c := l.closed
			l.mu.Unlock()
			if c {
				break
			}
			runtime.Gosched()
		}
		l.Close()
		close(second)
	}()
	select {
	case <-second:
		t.Fatal("second Close returned before the first finished")
	default:
	}
	close(release)
	<-first
	<-second
	assert.Equal(t, []int{2, 1}, order)
	ran := false
	l.Defer(func() { ran = true })
	assert.True(t, ran, "Defer on a closed lab runs at once")
}
