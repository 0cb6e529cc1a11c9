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
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/tandem-ha/tandem/e2e/internal/vmcmd"
	"github.com/tandem-ha/tandem/e2e/vm"
	"github.com/tandem-ha/tandem/initiator"
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

func main() {
	var f vmcmd.Flags
	f.Register(flag.CommandLine, vm.DefaultSubnet, 4*time.Minute)
	flag.Parse()
	if why := vmcmd.Unsupported(); why != "" {
		fmt.Println("SKIP e2e-vm-smoke:", why)
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

func run(f vmcmd.Flags) (err error) {
	t := &timings{start: time.Now()}
	ctx, cancel := context.WithTimeout(context.Background(), f.Timeout)
	defer cancel()
	env, err := f.Setup(ctx)
	if err != nil {
		return err
	}
	dir, done, err := f.RunDir("tdmsmoke")
	if err != nil {
		return err
	}
	defer func() { done(err) }()
	fmt.Println("e2e-vm-smoke: phases")

	var img *vm.Image
	if err := t.do("build guest image", func() (err error) {
		img, err = vm.BuildImage(ctx, vm.ImageOptions{
			CacheDir:   env.CacheDir,
			GoBinaries: []vm.GoBinary{{Package: "github.com/tandem-ha/tandem/e2e/cmd/guestsmoke", Name: "guestsmoke"}},
			Logger:     env.Log,
		})
		return err
	}); err != nil {
		return err
	}
	fmt.Printf("    image %s (cached: %v, kernel %s)\n", filepath.Base(img.Initrd), img.Reused, img.KernelVersion)

	var l *vm.Lab
	if err := t.do("create namespace and bridge", func() (err error) {
		l, err = vm.NewLab(ctx, vm.LabOptions{Dir: dir, Subnet: env.Subnet, Image: img, Accel: f.Accel, HandleSignals: true, Logger: env.Log})
		return err
	}); err != nil {
		return err
	}
	defer l.Close()

	var portal string
	if err := t.do("start tandem-target", func() (err error) {
		portal, err = vmcmd.StartTarget(ctx, l, vmcmd.Target{Bin: env.TargetBin, Dir: dir, IQN: targetIQN, LUNSize: lunSize,
			CHAPUser: chapUser, CHAPSecret: chapSecret})
		return err
	}); err != nil {
		return err
	}
	fmt.Printf("    target %s at %s, CHAP user %q\n", targetIQN, portal, chapUser)

	var g *vm.VM
	if err := t.do("boot guest ("+f.Accel+")", func() (err error) {
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
