// Package vmcmd is what the qemu lab's commands (vmsmoke, tasvm) share on
// the host side: their common flags and what follows from them, the run
// folder, and tandem-target serving one file LUN to the guests from the
// lab's namespace. It is not part of package vm, which the guest binaries
// import too: the target's config package would grow them.
package vmcmd

import (
	"context"
	"flag"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"time"

	"github.com/tandem-ha/tandem/e2e/internal/lab"
	"github.com/tandem-ha/tandem/e2e/vm"
	"github.com/tandem-ha/tandem/target/config"
)

// Flags are the flags every VM lab command takes.
type Flags struct {
	TargetBin string        // tandem-target binary
	CacheDir  string        // image cache; "" is vm.DefaultCacheDir
	Subnet    string        // the lab bridge's subnet
	Accel     string        // qemu accelerator
	Keep      bool          // keep the run folders after success too
	Verbose   bool          // log the lab's steps
	Timeout   time.Duration // bound on the whole run
}

// Register defines the flags on fs; subnet and timeout are the command's
// defaults (labs that may run side by side take different subnets).
func (f *Flags) Register(fs *flag.FlagSet, subnet netip.Prefix, timeout time.Duration) {
	fs.StringVar(&f.TargetBin, "target-bin", "bin/tandem-target", "tandem-target binary")
	fs.StringVar(&f.CacheDir, "cache-dir", "", "image cache (default build/vm in the workspace)")
	fs.StringVar(&f.Subnet, "subnet", subnet.String(), "the lab bridge's private subnet")
	fs.StringVar(&f.Accel, "accel", "tcg", "qemu accelerator; kvm only where it boots stock kernels (not on nested PVM)")
	fs.BoolVar(&f.Keep, "keep", false, "keep the run folders (logs) after success too")
	fs.BoolVar(&f.Verbose, "v", false, "log the lab's steps")
	fs.DurationVar(&f.Timeout, "timeout", timeout, "bound on the whole run")
}

// Unsupported says why this machine cannot run a VM lab, "" when it can:
// the lab creates a network namespace, a bridge and tap devices.
func Unsupported() string {
	if os.Geteuid() != 0 {
		return "needs root (it creates a network namespace, a bridge and taps)"
	}
	if _, err := os.Stat("/dev/net/tun"); err != nil {
		return "/dev/net/tun is missing (no tap devices for the guests)"
	}
	return ""
}

// Env is what Setup derives from the flags.
type Env struct {
	Log       *slog.Logger // on stderr; info with -v, else warnings
	Subnet    netip.Prefix
	CacheDir  string
	TargetBin string // absolute, checked to exist
}

// Setup checks the flags and fills in their defaults.
func (f Flags) Setup(ctx context.Context) (Env, error) {
	level := slog.LevelWarn
	if f.Verbose {
		level = slog.LevelInfo
	}
	e := Env{Log: slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: level})), CacheDir: f.CacheDir}
	var err error
	if e.Subnet, err = netip.ParsePrefix(f.Subnet); err != nil {
		return e, fmt.Errorf("-subnet: %w (give a private prefix such as %s)", err, vm.DefaultSubnet)
	}
	if e.CacheDir == "" {
		if e.CacheDir, err = vm.DefaultCacheDir(ctx); err != nil {
			return e, err
		}
	}
	if e.TargetBin, err = filepath.Abs(f.TargetBin); err != nil {
		return e, fmt.Errorf("-target-bin: %w", err)
	}
	if _, err := os.Stat(e.TargetBin); err != nil {
		return e, fmt.Errorf("tandem-target binary: %w (run make build)", err)
	}
	return e, nil
}

// RunDir makes a fresh run folder (logs, sockets, the target's files)
// named prefix plus a random suffix. Call done with the run's error at the
// end: it removes the folder after a success without -keep, and otherwise
// prints where it stays.
func (f Flags) RunDir(prefix string) (dir string, done func(error), err error) {
	dir, err = os.MkdirTemp("", prefix)
	if err != nil {
		return "", nil, fmt.Errorf("run folder: %w (set TMPDIR to a writable folder)", err)
	}
	return dir, func(err error) {
		if err != nil || f.Keep {
			fmt.Println("logs kept in", dir)
			return
		}
		os.RemoveAll(dir)
	}, nil
}

// Target is the tandem-target a lab's guests log in to: LUN 0 on a sparse
// file, write cache on.
type Target struct {
	Bin     string // tandem-target binary
	Dir     string // its config, LUN file, state, admin socket and target.log
	IQN     string
	LUNSize int64
	// CHAPUser and CHAPSecret, when set, make logins authenticate.
	CHAPUser, CHAPSecret string
	// Env is added to the target's environment ("KEY=value": test-only
	// switches).
	Env []string
}

// LogPath is where the target's output goes.
func (t Target) LogPath() string { return filepath.Join(t.Dir, "target.log") }

// StartTarget starts t in l's namespace on the host's bridge address and
// returns its portal once it accepts connections. The lab's Close stops
// it (SIGTERM, 5 s, SIGKILL), also on a signal.
func StartTarget(ctx context.Context, l *vm.Lab, t Target) (string, error) {
	// The namespace is the lab's own: the standard port clashes with no
	// target others run on the machine.
	portal := net.JoinHostPort(l.HostAddr.Addr().String(), "3260")
	lun := filepath.Join(t.Dir, "lun.img")
	if err := lab.CreateLUNFile(lun, t.LUNSize, false); err != nil {
		return "", err
	}
	cfg := config.DefaultConfig()
	cfg.Listen = []string{portal}
	cfg.StateDir = filepath.Join(t.Dir, "state")
	cfg.AdminSocket = filepath.Join(t.Dir, "admin.sock")
	cfg.Targets = []config.Target{{
		Name: t.IQN,
		LUNs: []config.LUN{{ID: 0, Path: lun, Size: t.LUNSize, BlockSize: config.DefaultBlockSize,
			WriteCache: true, Serial: config.DefaultSerial(t.IQN, 0)}},
	}}
	if t.CHAPUser != "" {
		secretFile := filepath.Join(t.Dir, "chap.secret")
		if err := os.WriteFile(secretFile, []byte(t.CHAPSecret+"\n"), 0o600); err != nil {
			return "", fmt.Errorf("write CHAP secret: %w", err)
		}
		cfg.Targets[0].CHAP = config.CHAP{User: t.CHAPUser, SecretFile: secretFile}
	}
	b, err := cfg.Marshal()
	if err != nil {
		return "", err
	}
	cfgPath := filepath.Join(t.Dir, "target.yaml")
	if err := os.WriteFile(cfgPath, b, 0o644); err != nil {
		return "", fmt.Errorf("write target config: %w", err)
	}
	bin, args := t.Bin, []string{"--config", cfgPath}
	if len(t.Env) > 0 {
		// env execs the target: the PID the lab stops is the target's.
		bin, args = "/usr/bin/env", append(append(append([]string(nil), t.Env...), t.Bin), args...)
	}
	p, err := l.Host().Start("target", 5*time.Second, t.LogPath(), bin, args...)
	if err != nil {
		return "", err
	}
	for {
		dctx, cancel := context.WithTimeout(ctx, time.Second)
		c, err := l.Host().DialContext(dctx, "tcp", portal)
		cancel()
		if err == nil {
			c.Close()
			return portal, nil
		}
		select {
		case <-p.Done():
			return "", fmt.Errorf("tandem-target exited before listening on %s\n%s", portal, lab.Tail(t.LogPath(), 20))
		case <-ctx.Done():
			return "", fmt.Errorf("tandem-target did not listen on %s: %w\n%s", portal, ctx.Err(), lab.Tail(t.LogPath(), 20))
		case <-time.After(50 * time.Millisecond):
		}
	}
}
