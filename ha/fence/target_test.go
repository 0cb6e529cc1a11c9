package fence

import (
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/tandem-ha/tandem/ha/resource"
	"github.com/tandem-ha/tandem/initiator"
	"github.com/tandem-ha/tandem/initiator/device"
)

const testIQN = "iqn.2026-11.io.tandem:fence-test"

// startTarget runs tandem-target ($TANDEM_ITEST_TARGET_BIN, or built now)
// on loopback with one 4 MiB LUN; killed by PID at cleanup.
func startTarget(t *testing.T) string {
	bin := os.Getenv("TANDEM_ITEST_TARGET_BIN")
	if bin == "" {
		bin = filepath.Join(t.TempDir(), "tandem-target")
		out, err := exec.Command("go", "build", "-o", bin, "github.com/tandem-ha/tandem/target/cmd/tandem-target").CombinedOutput()
		if err != nil {
			t.Skipf("cannot build tandem-target (set TANDEM_ITEST_TARGET_BIN): %v\n%s", err, out)
		}
	}
	dir := t.TempDir()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	addr := l.Addr().String()
	l.Close()
	img := filepath.Join(dir, "lun0.img")
	require.NoError(t, os.WriteFile(img, nil, 0o600))
	require.NoError(t, os.Truncate(img, 4<<20))
	cfg := fmt.Sprintf("listen: [%q]\nstate_dir: %q\nadmin_socket: %q\ntargets:\n  - name: %s\n    luns:\n      - id: 0\n        path: %q\n        block_size: 512\n",
		addr, filepath.Join(dir, "state"), filepath.Join(dir, "admin.sock"), testIQN, img)
	cfgPath := filepath.Join(dir, "target.yaml")
	require.NoError(t, os.WriteFile(cfgPath, []byte(cfg), 0o644))
	logf, err := os.Create(filepath.Join(dir, "target.log"))
	require.NoError(t, err)
	cmd := exec.Command(bin, "--config", cfgPath)
	cmd.Stdout, cmd.Stderr = logf, logf
	require.NoError(t, cmd.Start())
	logf.Close()
	done := make(chan struct{})
	go func() { _ = cmd.Wait(); close(done) }()
	t.Cleanup(func() { _ = cmd.Process.Kill(); <-done })
	for deadline := time.Now().Add(15 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		select {
		case <-done:
			b, _ := os.ReadFile(logf.Name())
			t.Fatalf("tandem-target exited; log:\n%s", b)
		default:
		}
		if c, err := net.DialTimeout("tcp", addr, 200*time.Millisecond); err == nil {
			c.Close()
			return addr
		}
	}
	t.Fatal("tandem-target did not listen within 15s")
	return ""
}

// writer is an application's own nexus: it registers the node key on it,
// as the package doc requires of every process that writes.
func writer(t *testing.T, addr, node string, isid byte) *device.Native {
	c := ctx(t)
	s, err := initiator.Dial(c, addr, initiator.Options{TargetName: testIQN,
		InitiatorName: "iqn.2026-11.io.tandem:app-" + node, ISID: [6]byte{0x80, 0, 0, 0, 0, isid}})
	require.NoError(t, err)
	t.Cleanup(func() { s.Close() })
	d := device.NewNative(s, 0)
	require.NoError(t, d.PRRegisterAndIgnore(c, Key("lab", node), initiator.PROptions{}))
	return d
}

func TestTakeOverOnTandemTarget(t *testing.T) {
	addr := startTarget(t)
	c := ctx(t)
	fa := NewFence("fence", Config{Cluster: "lab", Node: "a", Portal: addr, Target: testIQN, LUNs: []uint64{0}}, nil)
	fb := NewFence("fence", Config{Cluster: "lab", Node: "b", Portal: addr, Target: testIQN, LUNs: []uint64{0}}, nil)
	t.Cleanup(func() { fa.Stop(c); fb.Stop(c) })

	require.NoError(t, fa.Start(c))
	st, err := fa.Monitor(c)
	require.NoError(t, err)
	assert.Equal(t, resource.StatusRunning, st)
	wa := writer(t, addr, "a", 0xa)
	blk := make([]byte, 512)
	require.NoError(t, wa.WriteAt(c, blk, 8, true), "a registrant writes under type 5")

	// b takes over: a's key is preempted (with abort) everywhere.
	require.NoError(t, fb.Start(c))
	hb, err := fb.Holder(c)
	require.NoError(t, err)
	assert.Equal(t, Key("lab", "b"), hb)
	wb := writer(t, addr, "b", 0xb)
	require.NoError(t, wb.WriteAt(c, blk, 8, true))

	// a's application: writes conflict, reads still work (type 5).
	var werr error
	for range 3 { // first the REGISTRATIONS PREEMPTED unit attention
		werr = wa.WriteAt(c, blk, 9, true)
		if !initiator.IsReservationUnitAttention(werr) {
			break
		}
	}
	require.ErrorIs(t, werr, initiator.ErrReservationConflict)
	var rerr error
	for range 3 {
		rerr = wa.ReadAt(c, blk, 8, false)
		if !initiator.IsReservationUnitAttention(rerr) {
			break
		}
	}
	require.NoError(t, rerr)

	// a's monitor sees it is fenced.
	_, err = fa.Monitor(c)
	require.ErrorIs(t, err, resource.ErrFenced)
	st, err = fb.Monitor(c)
	require.NoError(t, err)
	assert.Equal(t, resource.StatusRunning, st)
}
