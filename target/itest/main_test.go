package itest

import (
	"bytes"
	"context"
	"errors"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/tandem-ha/tandem/target/config"
	"github.com/tandem-ha/tandem/target/targettest"
)

// TestMain removes the tandem-target that targettest built for the
// package (TANDEM_ITEST_TARGET_BIN runs a prebuilt daemon instead: a CI
// artifact, or a known-good build while the tree is mid-change).
func TestMain(m *testing.M) { os.Exit(targettest.Run(m)) }

// daemon is one tandem-target child process.
type daemon struct {
	t       *testing.T
	dir     string
	cfgPath string
	logPath string
	addr    string
	cmd     *exec.Cmd
	done    chan struct{}
	exitErr error
	once    sync.Once
}

// freePort returns a TCP port on 127.0.0.1 nobody listens on right now.
func freePort(t *testing.T) int {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// newConfig returns a config listening on a free loopback port, with its
// state directory and admin socket in dir.
func newConfig(t *testing.T, dir string) *config.Config {
	cfg := config.DefaultConfig()
	cfg.Listen = []string{net.JoinHostPort("127.0.0.1", strconv.Itoa(freePort(t)))}
	cfg.StateDir = filepath.Join(dir, "state")
	cfg.AdminSocket = filepath.Join(dir, "admin.sock")
	cfg.Limits.NopInterval = 0 // no target pings: the tests are short
	return cfg
}

// sparseLUN creates a sparse file dir/name.img of size bytes and returns its LUN entry.
func sparseLUN(t *testing.T, dir, name string, id uint64, size int64) config.LUN {
	path := filepath.Join(dir, name+".img")
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
	require.NoError(t, err)
	require.NoError(t, f.Truncate(size))
	require.NoError(t, f.Close())
	return config.LUN{ID: id, Path: path, BlockSize: config.DefaultBlockSize, WriteCache: true}
}

// secretFile writes secret to a file of the given mode.
func secretFile(t *testing.T, dir, name, secret string, mode os.FileMode) string {
	path := filepath.Join(dir, name)
	require.NoError(t, os.WriteFile(path, []byte(secret+"\n"), mode))
	require.NoError(t, os.Chmod(path, mode)) // umask may have narrowed it
	return path
}

// writeConfig writes cfg as YAML into dir.
func writeConfig(t *testing.T, dir string, cfg *config.Config) string {
	b, err := cfg.Marshal()
	require.NoError(t, err)
	path := filepath.Join(dir, "target.yaml")
	require.NoError(t, os.WriteFile(path, b, 0o644))
	return path
}

// startDaemon starts tandem-target on the config at cfgPath and waits
// until it listens on addr or exits. It is killed (by PID) at cleanup.
func startDaemon(t *testing.T, cfgPath, addr string) *daemon {
	t.Helper()
	dir := filepath.Dir(cfgPath)
	d := &daemon{t: t, dir: dir, cfgPath: cfgPath, addr: addr, done: make(chan struct{})}
	log, err := os.CreateTemp(dir, "target-*.log")
	require.NoError(t, err)
	d.logPath = log.Name()
	d.cmd = exec.Command(targettest.Binary(t), "--config", cfgPath)
	d.cmd.Stdout, d.cmd.Stderr = log, log
	require.NoError(t, d.cmd.Start())
	log.Close()
	go func() {
		d.exitErr = d.cmd.Wait()
		close(d.done)
	}()
	t.Cleanup(d.kill)
	deadline := time.Now().Add(15 * time.Second)
	for time.Now().Before(deadline) {
		select {
		case <-d.done:
			return d // exited: the caller inspects exitErr and the log
		default:
		}
		if c, err := net.DialTimeout("tcp", addr, 200*time.Millisecond); err == nil {
			c.Close()
			return d
		}
		time.Sleep(20 * time.Millisecond)
	}
	d.kill()
	t.Fatalf("tandem-target did not listen on %s within 15s; log:\n%s", addr, d.log())
	return nil
}

// start writes cfg and starts a daemon on it.
func start(t *testing.T, dir string, cfg *config.Config) *daemon {
	t.Helper()
	d := startDaemon(t, writeConfig(t, dir, cfg), cfg.Listen[0])
	if d.exited() {
		t.Fatalf("tandem-target exited at start (%v); log:\n%s", d.exitErr, d.log())
	}
	return d
}

// restart starts a new daemon on the same config.
func (d *daemon) restart(t *testing.T) *daemon {
	t.Helper()
	return startDaemon(t, d.cfgPath, d.addr)
}

func (d *daemon) exited() bool {
	select {
	case <-d.done:
		return true
	default:
		return false
	}
}

// wait waits for the process to exit and returns its exit code.
func (d *daemon) wait(timeout time.Duration) (int, bool) {
	select {
	case <-d.done:
	case <-time.After(timeout):
		return 0, false
	}
	var ee *exec.ExitError
	if errors.As(d.exitErr, &ee) {
		return ee.ExitCode(), true
	}
	return 0, true
}

// kill sends SIGKILL to this daemon's PID (never by name) and reaps it.
func (d *daemon) kill() {
	d.once.Do(func() {
		if !d.exited() {
			_ = d.cmd.Process.Signal(syscall.SIGKILL)
		}
		<-d.done
	})
}

func (d *daemon) log() string {
	b, _ := os.ReadFile(d.logPath)
	return string(b)
}

// ctx returns a context for one test step.
func ctx(t *testing.T) context.Context {
	c, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	t.Cleanup(cancel)
	return c
}

// pattern returns n bytes that differ per seed.
func pattern(n int, seed byte) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(i*7) ^ seed
	}
	return bytes.Clone(b)
}

func ctxCancel(d time.Duration) (context.Context, context.CancelFunc) {
	return context.WithTimeout(context.Background(), d)
}
