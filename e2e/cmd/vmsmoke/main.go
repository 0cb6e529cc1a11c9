// Command vmsmoke is `make e2e-vm-smoke`: tandem-target on the host side
// of a lab bridge with a CHAP-protected LUN (the bridge, the guest's tap,
// qemu, the target and the host's initiator all live in the lab's network
// namespace; the root namespace gets no lab address), and a qemu guest (package
// e2e/vm) whose real kernel initiator logs in through iscsiadm, makes and
// mounts an ext4 filesystem, writes and fsyncs a file and registers a PR
// key through SG_IO (e2e/cmd/guestsmoke). The host's native initiator
// then reads that key back; the guest unmounts and logs out; a wrong CHAP
// secret must make the guest's login fail with an authorization error.
//
// It prints the time of every phase and of the whole run. It skips (exit
// 0) only when not root or without /dev/net/tun.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/tandem-ha/tandem/e2e/internal/lab"
	"github.com/tandem-ha/tandem/e2e/vm"
	"github.com/tandem-ha/tandem/initiator"
	"github.com/tandem-ha/tandem/target/config"
)

const (
	targetIQN  = "iqn.2026-11.io.tandem:vmsmoke"
	guestIQN   = "iqn.2026-11.io.tandem:vmsmoke-guest0"
	hostIQN    = "iqn.2026-11.io.tandem:vmsmoke-host"
	chapUser   = "smoke"
	chapSecret = "vmsmoke-secret-0123"
	wrongSec   = "not-the-secret-4567"
	prKey      = 0x7a6e0001
	lunSize    = 256 << 20
)

type flags struct {
	targetBin string
	cacheDir  string
	subnet    string
	keep      bool
	timeout   time.Duration
	verbose   bool
	accel     string
}

func main() {
	var f flags
	flag.StringVar(&f.targetBin, "target-bin", "bin/tandem-target", "tandem-target binary")
	flag.StringVar(&f.cacheDir, "cache-dir", "", "image cache (default build/vm in the workspace)")
	flag.StringVar(&f.subnet, "subnet", vm.DefaultSubnet.String(), "the lab bridge's private subnet")
	flag.BoolVar(&f.keep, "keep", false, "keep the run folder (logs) after success too")
	flag.DurationVar(&f.timeout, "timeout", 4*time.Minute, "bound on the whole run")
	flag.BoolVar(&f.verbose, "v", false, "log the lab's steps")
	flag.StringVar(&f.accel, "accel", "tcg", "qemu accelerator; kvm only where it boots stock kernels (not on nested PVM)")
	flag.Parse()
	if os.Geteuid() != 0 {
		fmt.Println("SKIP e2e-vm-smoke: needs root (it creates a network namespace, a bridge and a tap)")
		return
	}
	if _, err := os.Stat("/dev/net/tun"); err != nil {
		fmt.Println("SKIP e2e-vm-smoke: /dev/net/tun is missing (no tap devices for the guest)")
		return
	}
	if err := run(f); err != nil {
		fmt.Fprintln(os.Stderr, "FAIL e2e-vm-smoke:", err)
		os.Exit(1)
	}
}

// timings records phases in order.
type timings struct {
	start  time.Time
	phases []string
	took   []time.Duration
}

func (t *timings) do(name string, f func() error) error {
	s := time.Now()
	err := f()
	d := time.Since(s)
	t.phases, t.took = append(t.phases, name), append(t.took, d)
	status := "ok"
	if err != nil {
		status = "FAILED"
	}
	fmt.Printf("  %-48s %-6s %8s\n", name, status, d.Round(time.Millisecond))
	if err != nil {
		return fmt.Errorf("%s: %w", name, err)
	}
	return nil
}

func run(f flags) (err error) {
	t := &timings{start: time.Now()}
	ctx, cancel := context.WithTimeout(context.Background(), f.timeout)
	defer cancel()
	level := slog.LevelWarn
	if f.verbose {
		level = slog.LevelInfo
	}
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: level}))
	subnet, err := netip.ParsePrefix(f.subnet)
	if err != nil {
		return fmt.Errorf("-subnet: %w", err)
	}
	if f.cacheDir == "" {
		if f.cacheDir, err = vm.DefaultCacheDir(ctx); err != nil {
			return err
		}
	}
	targetBin, err := filepath.Abs(f.targetBin)
	if err != nil {
		return err
	}
	if _, err := os.Stat(targetBin); err != nil {
		return fmt.Errorf("tandem-target binary: %w (run make build)", err)
	}
	dir, err := os.MkdirTemp("", "tdmsmoke")
	if err != nil {
		return err
	}
	defer func() {
		if err != nil || f.keep {
			fmt.Println("logs kept in", dir)
			return
		}
		os.RemoveAll(dir)
	}()
	fmt.Println("e2e-vm-smoke: phases")

	var img *vm.Image
	if err := t.do("build guest image", func() (err error) {
		img, err = vm.BuildImage(ctx, vm.ImageOptions{
			CacheDir:   f.cacheDir,
			GoBinaries: []vm.GoBinary{{Package: "github.com/tandem-ha/tandem/e2e/cmd/guestsmoke", Name: "guestsmoke"}},
			Logger:     log,
		})
		return err
	}); err != nil {
		return err
	}
	fmt.Printf("    image %s (cached: %v, kernel %s)\n", filepath.Base(img.Initrd), img.Reused, img.KernelVersion)

	var l *vm.Lab
	if err := t.do("create namespace and bridge", func() (err error) {
		l, err = vm.NewLab(ctx, vm.LabOptions{Dir: dir, Subnet: subnet, Image: img, Accel: f.accel, HandleSignals: true, Logger: log})
		return err
	}); err != nil {
		return err
	}
	defer l.Close()
	hostIP := l.HostAddr.Addr().String()

	var portal string
	if err := t.do("start tandem-target", func() (err error) {
		portal, err = startTarget(ctx, l, dir, targetBin, hostIP)
		return err
	}); err != nil {
		return err
	}
	fmt.Printf("    target %s at %s, CHAP user %q\n", targetIQN, portal, chapUser)

	var g *vm.VM
	if err := t.do("boot guest ("+f.accel+")", func() (err error) {
		g, err = l.AddGuest(ctx, "guest0", vm.GuestOptions{IQN: guestIQN})
		return err
	}); err != nil {
		return err
	}
	failed := func(err error) error {
		return fmt.Errorf("%w\n%s", err, g.Diagnostics())
	}
	if err := t.do("copy CHAP secrets to guest", func() error {
		for name, s := range map[string]string{"chap.secret": chapSecret, "wrong.secret": wrongSec} {
			r, err := g.Exec(ctx, vm.Request{Argv: []string{"sh", "-c", "umask 077; mkdir -p /etc/tandem && cat > /etc/tandem/" + name}, Stdin: []byte(s)})
			if err != nil {
				return err
			}
			if err := r.Err([]string{"write", name}); err != nil {
				return err
			}
		}
		return nil
	}); err != nil {
		return failed(err)
	}
	common := []string{"-portal", portal, "-target", targetIQN}
	guest := func(sub string, args ...string) (vm.Response, error) {
		argv := append(append([]string{"/bin/guestsmoke", sub}, common...), args...)
		return g.Exec(ctx, vm.Request{Argv: argv, Timeout: 2 * time.Minute})
	}
	show := func(r vm.Response) {
		for _, line := range strings.Split(strings.TrimSpace(string(r.Stdout)), "\n") {
			if line != "" {
				fmt.Println("    guest:", line)
			}
		}
	}
	if err := t.do("guest: login, mkfs, mount, write, PR register", func() error {
		r, err := guest("up", "-user", chapUser, "-secret-file", "/etc/tandem/chap.secret", "-key", strconv.FormatUint(prKey, 16))
		if err != nil {
			return err
		}
		show(r)
		return r.Err([]string{"guestsmoke", "up"})
	}); err != nil {
		return failed(err)
	}
	if err := t.do("host: native initiator READ KEYS", func() error {
		return checkKey(ctx, l, portal)
	}); err != nil {
		return failed(err)
	}
	down := func() error {
		r, err := guest("down")
		if err != nil {
			return err
		}
		show(r)
		if err := r.Err([]string{"guestsmoke", "down"}); err != nil {
			return err
		}
		// Check the outcome, not only the exit codes.
		out, err := g.Run(ctx, "cat", "/proc/mounts")
		if err != nil {
			return err
		}
		if strings.Contains(out, " /mnt/data ") {
			return fmt.Errorf("/mnt/data is still mounted:\n%s", out)
		}
		if out, err := sessions(ctx, g); err != nil || strings.Contains(out, targetIQN) {
			return errors.Join(err, fmt.Errorf("the session is still there after logout: %s", out))
		}
		return nil
	}
	if err := t.do("guest: umount, logout", down); err != nil {
		return failed(err)
	}
	if err := t.do("guest: wrong CHAP secret is refused", func() error {
		r, err := guest("login", "-user", chapUser, "-secret-file", "/etc/tandem/wrong.secret")
		if err != nil {
			return err
		}
		msg := strings.TrimSpace(string(r.Stderr))
		switch {
		case r.Exit == 0:
			return errors.New("login with a wrong CHAP secret succeeded")
		case r.Exit != 3 || !strings.Contains(msg, "exit 24") || !strings.Contains(msg, "authorization failure"):
			return fmt.Errorf("login failed, but not with an authorization failure (exit %d): %s", r.Exit, msg)
		}
		fmt.Println("    guest:", firstLine(msg))
		out, err := sessions(ctx, g)
		if err != nil {
			return err
		}
		if strings.Contains(out, targetIQN) {
			return fmt.Errorf("a session exists after the refused login: %s", out)
		}
		return nil
	}); err != nil {
		return failed(err)
	}
	if err := t.do("guest: log in again, no mkfs, file kept", func() error {
		r, err := guest("up", "-user", chapUser, "-secret-file", "/etc/tandem/chap.secret", "-key", strconv.FormatUint(prKey, 16))
		if err != nil {
			return err
		}
		show(r)
		if err := r.Err([]string{"guestsmoke", "up"}); err != nil {
			return err
		}
		if out := string(r.Stdout); !strings.Contains(out, "mkfs skipped") || !strings.Contains(out, "found /mnt/data/hello.txt: written by guestsmoke") {
			return errors.New("the second login made a new filesystem or lost the file")
		}
		return down()
	}); err != nil {
		return failed(err)
	}
	if err := t.do("teardown", func() error { return l.Close() }); err != nil {
		return err
	}
	fmt.Printf("e2e-vm-smoke: PASS in %s\n", time.Since(t.start).Round(time.Millisecond))
	return nil
}

func firstLine(s string) string {
	line, _, _ := strings.Cut(s, "\n")
	return line
}

// iscsiNoObjects is iscsiadm's exit status when there is nothing to list
// (ISCSI_ERR_NO_OBJS_FOUND): "no sessions" is an answer, not a failure.
const iscsiNoObjects = 21

// sessions lists the guest's iSCSI sessions ("" when there are none).
func sessions(ctx context.Context, g *vm.VM) (string, error) {
	out, err := g.Run(ctx, "iscsiadm", "-m", "session")
	if ee, ok := errors.AsType[*vm.ExitError](err); ok && ee.Exit == iscsiNoObjects {
		return "", nil
	}
	return out, err
}

// startTarget writes a config for one CHAP-protected file LUN and starts
// tandem-target in the lab's namespace, listening on the bridge address;
// it returns the portal.
func startTarget(ctx context.Context, l *vm.Lab, dir, bin, hostIP string) (string, error) {
	// The namespace is the lab's own: the standard port clashes with no
	// target others run on the machine.
	portal := net.JoinHostPort(hostIP, "3260")
	secretFile := filepath.Join(dir, "chap.secret")
	if err := os.WriteFile(secretFile, []byte(chapSecret+"\n"), 0o600); err != nil {
		return "", err
	}
	lun := filepath.Join(dir, "lun.img")
	if err := lab.CreateLUNFile(lun, lunSize, false); err != nil {
		return "", err
	}
	cfg := config.DefaultConfig()
	cfg.Listen = []string{portal}
	cfg.StateDir = filepath.Join(dir, "state")
	cfg.AdminSocket = filepath.Join(dir, "admin.sock")
	cfg.Targets = []config.Target{{
		Name: targetIQN,
		CHAP: config.CHAP{User: chapUser, SecretFile: secretFile},
		LUNs: []config.LUN{{ID: 0, Path: lun, Size: lunSize, BlockSize: config.DefaultBlockSize,
			WriteCache: true, Serial: config.DefaultSerial(targetIQN, 0)}},
	}}
	b, err := cfg.Marshal()
	if err != nil {
		return "", err
	}
	cfgPath := filepath.Join(dir, "target.yaml")
	if err := os.WriteFile(cfgPath, b, 0o644); err != nil {
		return "", err
	}
	logPath := filepath.Join(dir, "target.log")
	// The lab's Close stops it (SIGTERM, 5 s, SIGKILL), also on a signal.
	p, err := l.Host().Start("target", 5*time.Second, logPath, bin, "--config", cfgPath)
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
			return "", fmt.Errorf("tandem-target exited before listening on %s\n%s", portal, lab.Tail(logPath, 20))
		case <-ctx.Done():
			return "", fmt.Errorf("tandem-target did not listen on %s: %w\n%s", portal, ctx.Err(), lab.Tail(logPath, 20))
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// checkKey logs in with the native initiator from the lab's namespace and
// expects the guest's key among the LUN's registrations.
func checkKey(ctx context.Context, l *vm.Lab, portal string) error {
	s, err := initiator.Dial(ctx, portal, initiator.Options{
		TargetName: targetIQN, InitiatorName: hostIQN,
		CHAP:   &initiator.CHAP{User: chapUser, Secret: []byte(chapSecret)},
		Dialer: l.Host().DialContext,
	})
	if err != nil {
		return fmt.Errorf("native login: %w", err)
	}
	defer s.Close(ctx)
	keys, err := s.PRReadKeys(ctx, 0)
	if err != nil {
		return err
	}
	fmt.Printf("    host: READ KEYS generation %d keys %x\n", keys.Generation, keys.Keys)
	if !slices.Contains(keys.Keys, prKey) {
		return fmt.Errorf("key %#x registered by the guest is not among %x", uint64(prKey), keys.Keys)
	}
	return s.Logout(ctx)
}
