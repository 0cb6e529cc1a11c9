// Package lab starts iSCSI targets on loopback for the conformance harness
// and the benchmarks: tandem-target from a generated config, tgt (the
// reference implementation) configured through tgtadm, or any command.
//
// Every process it starts is stopped by its own PID, never by name.
package lab

import (
	"bytes"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/tandem-ha/tandem/e2e/internal/proc"
	"github.com/tandem-ha/tandem/target/config"
)

// Options describe the target to start.
type Options struct {
	// Dir is a scratch directory for the LUN file, config and logs.
	Dir string
	// Port is the iSCSI port on 127.0.0.1; 0 picks a free one.
	Port int
	// IQN is the target name.
	IQN string
	// LUN is the LUN number to serve.
	LUN uint64
	// LUNSize is the size of the file LUN in bytes.
	LUNSize int64
	// Preallocate allocates the LUN file's blocks (for benchmarks) instead
	// of leaving it sparse.
	Preallocate bool
	// Thin turns on thin provisioning (tandem only).
	Thin bool
	// Ready is how long to wait for the port to accept connections.
	Ready time.Duration
	// CHAP, when User is set, makes logins to the target authenticate
	// (tandem only); with MutualUser set too the target proves itself.
	CHAP CHAP
}

// CHAP are the credentials a target started with Options.CHAP demands.
type CHAP struct {
	User, Secret             string // the initiator's
	MutualUser, MutualSecret string // the target's, for mutual CHAP
}

// Target is a running target.
type Target struct {
	URL  string // iscsi://127.0.0.1:PORT/IQN/LUN
	Port int
	Proc *Process // nil when the harness did not start it
	// LogPath holds the target's stdout and stderr.
	LogPath string
	stop    func()
}

// Stop stops the target process, if any.
func (t *Target) Stop() {
	switch {
	case t.stop != nil:
		t.stop()
	case t.Proc != nil:
		t.Proc.Stop(5 * time.Second)
	}
}

// FreePort returns a TCP port on 127.0.0.1 nobody listens on right now.
func FreePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, fmt.Errorf("find a free port: %w", err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

func (o *Options) defaults() error {
	if o.Port == 0 {
		p, err := FreePort()
		if err != nil {
			return err
		}
		o.Port = p
	}
	if o.Ready == 0 {
		o.Ready = 20 * time.Second
	}
	return nil
}

func (o *Options) url() string {
	return fmt.Sprintf("iscsi://127.0.0.1:%d/%s/%d", o.Port, o.IQN, o.LUN)
}

// CreateLUNFile creates a file of size bytes, sparse or preallocated.
func CreateLUNFile(path string, size int64, preallocate bool) error {
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		return fmt.Errorf("create LUN file: %w", err)
	}
	defer f.Close()
	if preallocate {
		if err := syscall.Fallocate(int(f.Fd()), 0, 0, size); err != nil {
			return fmt.Errorf("preallocate %d bytes for %s: %w (is there enough free space?)", size, path, err)
		}
	}
	if err := f.Truncate(size); err != nil {
		return fmt.Errorf("size LUN file: %w", err)
	}
	return f.Close()
}

// StartTandem writes a tandem-target config for one file LUN into o.Dir
// and starts bin with args, in which {config} is replaced by the config
// path.
func StartTandem(bin string, args []string, o Options) (*Target, error) {
	if err := o.defaults(); err != nil {
		return nil, err
	}
	lunPath := filepath.Join(o.Dir, "lun.img")
	if err := CreateLUNFile(lunPath, o.LUNSize, o.Preallocate); err != nil {
		return nil, err
	}
	cfg := config.DefaultConfig()
	cfg.Listen = []string{net.JoinHostPort("127.0.0.1", strconv.Itoa(o.Port))}
	cfg.StateDir = filepath.Join(o.Dir, "state")
	cfg.AdminSocket = filepath.Join(o.Dir, "admin.sock")
	cfg.Targets = []config.Target{{
		Name: o.IQN,
		LUNs: []config.LUN{{
			ID: o.LUN, Path: lunPath, Size: o.LUNSize, BlockSize: config.DefaultBlockSize,
			Thin: o.Thin, WriteCache: true, Serial: config.DefaultSerial(o.IQN, o.LUN),
		}},
	}}
	if o.CHAP.User != "" {
		ch, err := writeCHAP(o.Dir, o.CHAP)
		if err != nil {
			return nil, err
		}
		cfg.Targets[0].CHAP = ch
	}
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("generated config is invalid: %w", err)
	}
	b, err := cfg.Marshal()
	if err != nil {
		return nil, err
	}
	cfgPath := filepath.Join(o.Dir, "target.yaml")
	if err := os.WriteFile(cfgPath, b, 0o644); err != nil {
		return nil, fmt.Errorf("write config: %w", err)
	}
	var argv []string
	for _, a := range args {
		argv = append(argv, strings.ReplaceAll(a, "{config}", cfgPath))
	}
	return start(bin, argv, o)
}

// writeCHAP writes c's secrets into 0600 files in dir, as
// tandem-target's config wants them.
func writeCHAP(dir string, c CHAP) (config.CHAP, error) {
	out := config.CHAP{User: c.User, MutualUser: c.MutualUser}
	write := func(name, secret string) (string, error) {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(secret+"\n"), 0o600); err != nil {
			return "", fmt.Errorf("write CHAP secret: %w", err)
		}
		return p, nil
	}
	var err error
	if out.SecretFile, err = write("chap.secret", c.Secret); err != nil {
		return out, err
	}
	if c.MutualUser != "" {
		if out.MutualSecretFile, err = write("chap-mutual.secret", c.MutualSecret); err != nil {
			return out, err
		}
	}
	return out, nil
}

// StartCommand runs command through /bin/sh (with exec, so that the PID is
// the target's) after replacing {port}, {iqn}, {lun} and {dir}.
func StartCommand(command string, o Options) (*Target, error) {
	if err := o.defaults(); err != nil {
		return nil, err
	}
	r := strings.NewReplacer("{port}", strconv.Itoa(o.Port), "{iqn}", o.IQN,
		"{lun}", strconv.FormatUint(o.LUN, 10), "{dir}", o.Dir)
	return start("/bin/sh", []string{"-c", "exec " + r.Replace(command)}, o)
}

// StartTGT starts tgtd in the foreground on 127.0.0.1:o.Port with its own
// management port, and configures one target with a file LUN via tgtadm.
func StartTGT(o Options) (*Target, error) {
	if err := o.defaults(); err != nil {
		return nil, err
	}
	tgtd, err := exec.LookPath("tgtd")
	if err != nil {
		return nil, errors.New("tgtd not found: install it with `apt-get install -y tgt`")
	}
	ctl, err := tgtControlPort()
	if err != nil {
		return nil, err
	}
	lunPath := filepath.Join(o.Dir, "lun.img")
	if err := CreateLUNFile(lunPath, o.LUNSize, o.Preallocate); err != nil {
		return nil, err
	}
	t, err := start(tgtd, []string{"-f", "-C", strconv.Itoa(ctl), "--iscsi", fmt.Sprintf("portal=127.0.0.1:%d", o.Port)}, o)
	if err != nil {
		return nil, err
	}
	adm := func(args ...string) error {
		full := append([]string{"-C", strconv.Itoa(ctl), "--lld", "iscsi"}, args...)
		out, err := exec.Command("tgtadm", full...).CombinedOutput()
		if err != nil {
			return fmt.Errorf("tgtadm %s: %w: %s", strings.Join(full, " "), err, bytes.TrimSpace(out))
		}
		return nil
	}
	steps := [][]string{
		{"--mode", "target", "--op", "new", "--tid", "1", "--targetname", o.IQN},
		{"--mode", "logicalunit", "--op", "new", "--tid", "1", "--lun", strconv.FormatUint(o.LUN, 10), "--backing-store", lunPath},
		{"--mode", "target", "--op", "bind", "--tid", "1", "--initiator-address", "ALL"},
	}
	// tgtd ignores SIGTERM, so stop it with SIGKILL and remove the
	// management socket it leaves behind.
	t.stop = func() {
		t.Proc.Stop(0)
		for _, suffix := range []string{"", ".lock"} {
			os.Remove(fmt.Sprintf("%s/socket.%d%s", tgtSocketDir, ctl, suffix))
		}
	}
	for _, s := range steps {
		if err := adm(s...); err != nil {
			t.Stop()
			return nil, err
		}
	}
	return t, nil
}

// tgtSocketDir holds tgtd's management sockets, named socket.<control port>.
const tgtSocketDir = "/var/run/tgtd"

// tgtControlPort picks an unused tgtd management port; tgtd accepts
// 0..32767 and names a unix socket after it, it is not a TCP port.
func tgtControlPort() (int, error) {
	for i := 0; i < 100; i++ {
		n := 10000 + rand.IntN(22000)
		if _, err := os.Stat(fmt.Sprintf("%s/socket.%d", tgtSocketDir, n)); os.IsNotExist(err) {
			return n, nil
		}
	}
	return 0, fmt.Errorf("no free tgtd control port: clean up %s", tgtSocketDir)
}

// Attach describes a target somebody else runs.
func Attach(url string) *Target { return &Target{URL: url} }

func start(bin string, args []string, o Options) (*Target, error) {
	logPath := filepath.Join(o.Dir, "target.log")
	p, err := StartProcess(bin, args, logPath)
	if err != nil {
		return nil, err
	}
	t := &Target{URL: o.url(), Port: o.Port, Proc: p, LogPath: logPath}
	if err := WaitReady(fmt.Sprintf("127.0.0.1:%d", o.Port), p, o.Ready); err != nil {
		t.Stop()
		return nil, fmt.Errorf("%w\n%s", err, Tail(logPath, 20))
	}
	return t, nil
}

// WaitReady waits until addr accepts TCP connections, p exits or timeout
// passes.
func WaitReady(addr string, p *Process, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for {
		c, err := net.DialTimeout("tcp", addr, time.Second)
		if err == nil {
			c.Close()
			return nil
		}
		select {
		case <-p.Done():
			return fmt.Errorf("target exited before listening on %s: %v", addr, p.Err())
		case <-time.After(100 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("target did not listen on %s within %s", addr, timeout)
		}
	}
}

// Tail returns the last n lines of the file at path, for error messages.
func Tail(path string, n int) string { return proc.Tail(path, n) }
