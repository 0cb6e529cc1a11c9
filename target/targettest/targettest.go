// Package targettest runs a real tandem-target on loopback for the tests
// of other packages (the fence resource, the device interface): a fresh
// process per call with one sparse file LUN, killed by PID at cleanup.
package targettest

import (
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/tandem-ha/tandem/internal/testbin"
)

// Options shape the target; zero values take the defaults.
type Options struct {
	// IQN is the target name; default "iqn.2026-11.io.tandem:test".
	IQN string
	// LUNSize is the size of LUN 0 in bytes; default 4 MiB.
	LUNSize int64
}

// Run runs the tests and removes the tandem-target that Binary built; call
// it from TestMain:
//
//	func TestMain(m *testing.M) { os.Exit(targettest.Run(m)) }
func Run(m *testing.M) int { return testbin.Run(m) }

// Binary returns $TANDEM_ITEST_TARGET_BIN, or tandem-target built from the
// workspace once per test binary (Run removes it).
func Binary(t testing.TB) string {
	t.Helper()
	if b := os.Getenv("TANDEM_ITEST_TARGET_BIN"); b != "" {
		return b
	}
	return testbin.Build(t, "github.com/tandem-ha/tandem/target/cmd/tandem-target", "tandem-target")
}

// Start runs tandem-target with LUN 0 and returns its 127.0.0.1 address
// once it accepts connections.
func Start(t testing.TB, o Options) string {
	t.Helper()
	if o.IQN == "" {
		o.IQN = "iqn.2026-11.io.tandem:test"
	}
	if o.LUNSize == 0 {
		o.LUNSize = 4 << 20
	}
	bin := Binary(t)
	dir := t.TempDir()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("targettest: pick a port: %v", err)
	}
	addr := l.Addr().String()
	l.Close()
	img := filepath.Join(dir, "lun0.img")
	cfg := fmt.Sprintf(`listen: [%q]
state_dir: %q
admin_socket: %q
targets:
  - name: %s
    luns:
      - id: 0
        path: %q
        size: %d
        block_size: 512
`, addr, filepath.Join(dir, "state"), filepath.Join(dir, "admin.sock"), o.IQN, img, o.LUNSize)
	cfgPath := filepath.Join(dir, "target.yaml")
	if err := os.WriteFile(cfgPath, []byte(cfg), 0o644); err != nil {
		t.Fatalf("targettest: %v", err)
	}
	logPath := filepath.Join(dir, "target.log")
	logf, err := os.Create(logPath)
	if err != nil {
		t.Fatalf("targettest: %v", err)
	}
	cmd := exec.Command(bin, "--config", cfgPath)
	cmd.Stdout, cmd.Stderr = logf, logf
	err = cmd.Start()
	logf.Close()
	if err != nil {
		t.Fatalf("targettest: start %s: %v", bin, err)
	}
	done := make(chan struct{})
	go func() { _ = cmd.Wait(); close(done) }()
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		<-done
	})
	for deadline := time.Now().Add(15 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		select {
		case <-done:
			b, _ := os.ReadFile(logPath)
			t.Fatalf("targettest: tandem-target exited; log:\n%s", b)
		default:
		}
		if c, err := net.DialTimeout("tcp", addr, 200*time.Millisecond); err == nil {
			c.Close()
			return addr
		}
	}
	t.Fatal("targettest: tandem-target did not listen within 15s")
	return ""
}
