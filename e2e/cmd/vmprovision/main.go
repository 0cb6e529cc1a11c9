// Command vmprovision is `make e2e-vm-provision`: the seed's storage day
// through tandemctl, on a real kernel. One qemu guest (package e2e/vm, with
// device-mapper) gets a sparse raw virtio disk; inside it the VG and its
// thin pool are made with the lvm2 tools (storage step 0), tandem-target
// starts with an empty config, and `tandemctl provision` makes a 10 GiB
// thin LV, the target, LUN 0 on it, the ACL for both nodes' initiator
// names and CHAP, printing the secret once; a second provision must change
// nothing. From the lab namespace the host's native initiator logs in with
// the printed credentials, writes and reads back; `tandemctl volume resize
// +1G` must reach it as CAPACITY DATA HAS CHANGED, then READ CAPACITY
// shows 11 GiB; a restarted tandem-target serves the same LUN with the
// data (from the config the admin API wrote back); an UNMAP reaches the
// thin pool; a wrong secret and an initiator outside the ACL are refused.
//
// It prints the time of every phase and of the whole run. It skips (exit
// 0) only when not root or without /dev/net/tun.
package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/tandem-ha/tandem/e2e/vm"
	"github.com/tandem-ha/tandem/initiator"
	"github.com/tandem-ha/tandem/target/config"
)

// The deployment: the seed's names where it has them.
const (
	targetIQN = "iqn.2026-12.io.tandem:storage.mq"
	// nodeIQNs are the two nodes the ACL allows; the host logs in as the
	// first.
	node1IQN  = "iqn.2026-12.io.tandem:mqmaster"
	node2IQN  = "iqn.2026-12.io.tandem:mqslave"
	strangerQ = "iqn.2026-12.io.tandem:stranger"
	chapUser  = "mq"

	vg       = "vg0"
	pool     = "pool"
	lv       = "mq"
	lvSize   = 10 << 30
	grow     = 1 << 30
	diskSize = 16 << 30 // sparse: only what lvm and the writes touch is allocated
	poolSize = "12g"    // holds the grown LV without overcommitting

	guestConf = "/etc/tandem/target.yaml"
	guestLog  = "/var/log/target.log"
	port      = "3260"
)

func main() {
	var f flags
	f.register(flag.CommandLine)
	flag.Parse()
	if why := unsupported(); why != "" {
		fmt.Println("SKIP e2e-vm-provision:", why)
		return
	}
	if err := run(f); err != nil {
		fmt.Fprintln(os.Stderr, "FAIL e2e-vm-provision:", err)
		os.Exit(1)
	}
}

type flags struct {
	cacheDir, subnet, accel string
	keep, verbose           bool
	timeout                 time.Duration
}

func (f *flags) register(fs *flag.FlagSet) {
	fs.StringVar(&f.cacheDir, "cache-dir", "", "image cache (default build/vm in the workspace)")
	fs.StringVar(&f.subnet, "subnet", "10.213.12.0/24", "the lab bridge's private subnet")
	fs.StringVar(&f.accel, "accel", "tcg", "qemu accelerator; kvm only where it boots stock kernels (not on nested PVM)")
	fs.BoolVar(&f.keep, "keep", false, "keep the run folder (logs, disk) after success too")
	fs.BoolVar(&f.verbose, "v", false, "log the lab's steps")
	fs.DurationVar(&f.timeout, "timeout", 5*time.Minute, "bound on the whole run")
}

// unsupported says why this machine cannot run the lab, "" when it can.
func unsupported() string {
	if os.Geteuid() != 0 {
		return "needs root (it creates a network namespace, a bridge and a tap)"
	}
	if _, err := os.Stat("/dev/net/tun"); err != nil {
		return "/dev/net/tun is missing (no tap device for the guest)"
	}
	return ""
}

// phases prints each phase's outcome and time as it ends.
type phases struct{ start time.Time }

func (p *phases) do(name string, f func() error) error {
	s := time.Now()
	err := f()
	status := "ok"
	if err != nil {
		status = "FAILED"
	}
	fmt.Printf("  %-58s %-6s %8s\n", name, status, time.Since(s).Round(time.Millisecond))
	if err != nil {
		return fmt.Errorf("%s: %w", name, err)
	}
	return nil
}

// lab is the run's state: the guest and the host's view of it.
type lab struct {
	l      *vm.Lab
	g      *vm.VM
	portal string
	secret string
	data   []byte // what the host wrote at the start and at the end of the LV
}

func run(f flags) (err error) {
	p := &phases{start: time.Now()}
	ctx, cancel := context.WithTimeout(context.Background(), f.timeout)
	defer cancel()
	level := slog.LevelWarn
	if f.verbose {
		level = slog.LevelInfo
	}
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: level}))
	subnet, err := netip.ParsePrefix(f.subnet)
	if err != nil {
		return fmt.Errorf("-subnet: %w (give a private prefix such as 10.213.12.0/24)", err)
	}
	cache := f.cacheDir
	if cache == "" {
		if cache, err = vm.DefaultCacheDir(ctx); err != nil {
			return err
		}
	}
	dir, err := os.MkdirTemp("", "tdmprov")
	if err != nil {
		return fmt.Errorf("run folder: %w (set TMPDIR to a writable folder)", err)
	}
	defer func() {
		if err != nil || f.keep {
			fmt.Println("logs kept in", dir)
			return
		}
		os.RemoveAll(dir)
	}()
	fmt.Println("e2e-vm-provision: phases")

	var img *vm.Image
	if err := p.do("build guest image", func() (err error) {
		img, err = vm.BuildImage(ctx, imageOptions(cache, log))
		return err
	}); err != nil {
		return err
	}
	fmt.Printf("    image %s (cached: %v, kernel %s)\n", filepath.Base(img.Initrd), img.Reused, img.KernelVersion)

	disk := filepath.Join(dir, "disk.img")
	s := &lab{data: make([]byte, 1<<20)}
	if _, err := rand.Read(s.data); err != nil {
		return err
	}
	if err := p.do("lab namespace, sparse 16 GiB disk, boot guest ("+f.accel+")", func() (err error) {
		if err := sparseFile(disk, diskSize); err != nil {
			return err
		}
		if s.l, err = vm.NewLab(ctx, vm.LabOptions{Dir: dir, Subnet: subnet, Image: img, Accel: f.accel, HandleSignals: true, Logger: log}); err != nil {
			return err
		}
		ip, err := vm.GuestAddr(subnet, 0)
		if err != nil {
			return err
		}
		s.portal = net.JoinHostPort(ip.Addr().String(), port)
		s.g, err = s.l.AddGuest(ctx, "storage", vm.GuestOptions{NoISCSID: true, MemoryMiB: 384, Drives: []string{disk}})
		return err
	}); err != nil {
		if s.l != nil {
			s.l.Close()
		}
		return err
	}
	defer s.l.Close()
	failed := func(err error) error {
		tail, _ := s.g.Run(ctx, "tail", "-n", "20", guestLog)
		return fmt.Errorf("%w\n--- %s (guest):\n%s\n%s", err, guestLog, tail, s.g.Diagnostics())
	}
	steps := []struct {
		name string
		f    func(context.Context) error
	}{
		{"guest: storage step 0: pvcreate, vgcreate, thin pool", s.storageStep0},
		{"guest: start tandem-target (empty config)", s.startTarget},
		{"guest: tandemctl provision (10 GiB thin LV, CHAP, ACL)", s.provision},
		{"guest: tandemctl provision again: nothing changes", s.provisionAgain},
		{"host: native login with the printed secret, write, read", s.writeRead},
		{"guest: tandemctl volume resize +1G; host: UA, 11 GiB", s.resize},
		{"guest: restart tandem-target; host: same LUN and data", s.restart},
		{"host: UNMAP reaches the thin pool (reads zeros)", s.unmap},
		{"host: wrong secret and a name outside the ACL refused", s.refused},
	}
	for _, st := range steps {
		if err := p.do(st.name, func() error { return st.f(ctx) }); err != nil {
			return failed(err)
		}
	}
	used, err := allocated(disk)
	if err != nil {
		return err
	}
	fmt.Printf("    disk: %d GiB apparent, %.1f MiB allocated\n", diskSize>>30, float64(used)/(1<<20))
	if err := p.do("teardown", s.l.Close); err != nil {
		return err
	}
	fmt.Printf("e2e-vm-provision: PASS in %s\n", time.Since(p.start).Round(time.Millisecond))
	return nil
}

// imageOptions is the standard guest with LVM (thin pools included),
// tandem-target and tandemctl.
func imageOptions(cache string, log *slog.Logger) vm.ImageOptions {
	return vm.WithLVM(vm.ImageOptions{CacheDir: cache, Logger: log,
		GoBinaries: []vm.GoBinary{
			{Package: "github.com/tandem-ha/tandem/target/cmd/tandem-target", Name: "tandem-target"},
			{Package: "github.com/tandem-ha/tandem/tools/cmd/tandemctl", Name: "tandemctl"},
		}})
}

func sparseFile(path string, size int64) error {
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return fmt.Errorf("create disk: %w", err)
	}
	if err := f.Truncate(size); err != nil {
		f.Close()
		return fmt.Errorf("size disk: %w", err)
	}
	return f.Close()
}

// sh runs a shell script in the guest and returns its stdout; a failure
// carries stderr.
func (s *lab) sh(ctx context.Context, script string) (string, error) {
	r, err := s.g.Exec(ctx, vm.Request{Argv: []string{"sh", "-c", script}, Timeout: 2 * time.Minute})
	if err != nil {
		return "", err
	}
	first, _, _ := strings.Cut(strings.TrimSpace(script), "\n")
	return string(r.Stdout), r.Err([]string{"sh", "-c", first})
}

// storageStep0 is what precedes tandemctl on a fresh server: the PV, the
// VG and the thin pool the LVs are carved from.
func (s *lab) storageStep0(ctx context.Context) error {
	_, err := s.sh(ctx, fmt.Sprintf(`set -e
mkdir -p /etc/tandem /var/lib/tandem/target /run/tandem /run/lock/lvm /var/log
lvm pvcreate -q /dev/vda
lvm vgcreate -q %[1]s /dev/vda
lvm lvcreate -q -y --type thin-pool -L %[2]s -n %[3]s %[1]s
`, vg, poolSize, pool))
	return err
}

// startTarget writes the minimal config (the first run only) and starts
// tandem-target, returning once its portal and admin socket are up.
func (s *lab) startTarget(ctx context.Context) error {
	cfg := config.DefaultConfig()
	cfg.Listen = []string{s.portal}
	b, err := cfg.Marshal()
	if err != nil {
		return err
	}
	r, err := s.g.Exec(ctx, vm.Request{Argv: []string{"sh", "-c", "[ -e " + guestConf + " ] || cat > " + guestConf}, Stdin: b})
	if err != nil {
		return err
	}
	if err := r.Err([]string{"write", guestConf}); err != nil {
		return err
	}
	// :0CBC is port 3260 in /proc/net/tcp.
	_, err = s.sh(ctx, fmt.Sprintf(`setsid /bin/tandem-target --config %[1]s >>%[2]s 2>&1 </dev/null &
echo $! > /run/target.pid
i=0; until [ -S %[3]s ] && grep -q ":0CBC .* 0A " /proc/net/tcp; do
	i=$((i+1)); [ $i -gt 400 ] && { echo "tandem-target did not come up in 20 s" >&2; exit 1; }
	kill -0 $(cat /run/target.pid) 2>/dev/null || { echo "tandem-target exited" >&2; exit 1; }
	sleep 0.05
done
`, guestConf, guestLog, cfg.AdminSocket))
	return err
}

// stopTarget stops tandem-target with SIGTERM and waits until it is gone.
func (s *lab) stopTarget(ctx context.Context) error {
	_, err := s.sh(ctx, `pid=$(cat /run/target.pid); kill $pid
i=0; while [ -e /proc/$pid ]; do i=$((i+1)); [ $i -gt 200 ] && { echo "tandem-target did not exit within 10 s of SIGTERM" >&2; exit 1; }; sleep 0.05; done`)
	return err
}

func (s *lab) tandemctl(ctx context.Context, args ...string) ([]byte, error) {
	argv := append([]string{"/bin/tandemctl"}, args...)
	r, err := s.g.Exec(ctx, vm.Request{Argv: argv, Timeout: 2 * time.Minute})
	if err != nil {
		return nil, err
	}
	return r.Stdout, r.Err(argv)
}

func provisionArgs() []string {
	return []string{"provision", "--json", "--volume", vg + "/" + lv, "--size", "10GiB", "--thin-pool", pool,
		"--target", targetIQN, "--initiator", node1IQN, "--initiator", node2IQN, "--chap-user", chapUser}
}

func (s *lab) provision(ctx context.Context) error {
	out, err := s.tandemctl(ctx, provisionArgs()...)
	if err != nil {
		return err
	}
	p, err := parseProvision(out, true)
	if err != nil {
		return err
	}
	s.secret = p.Secret
	fmt.Printf("    %s\n    CHAP user %q, secret of %d characters printed once\n", p.Message, chapUser, len(p.Secret))
	return nil
}

func (s *lab) provisionAgain(ctx context.Context) error {
	out, err := s.tandemctl(ctx, provisionArgs()...)
	if err != nil {
		return err
	}
	p, err := parseProvision(out, false)
	if err == nil {
		fmt.Printf("    %s\n", p.Message)
	}
	return err
}

// login opens a session from the lab namespace as name with secret.
func (s *lab) login(ctx context.Context, name, secret string) (*initiator.Session, error) {
	return initiator.Dial(ctx, s.portal, initiator.Options{
		TargetName: targetIQN, InitiatorName: name,
		CHAP:   &initiator.CHAP{User: chapUser, Secret: []byte(secret)},
		Dialer: s.l.Host().DialContext,
	})
}

// session runs f on a fresh session of node 1 and logs out.
func (s *lab) session(ctx context.Context, f func(*initiator.Session) error) error {
	ss, err := s.login(ctx, node1IQN, s.secret)
	if err != nil {
		return fmt.Errorf("native login with the printed secret: %w", err)
	}
	defer ss.Close(ctx)
	if err := f(ss); err != nil {
		return err
	}
	return ss.Logout(ctx)
}

func expectSize(ctx context.Context, ss *initiator.Session, want int64) (initiator.Capacity, error) {
	c, err := ss.ReadCapacity16(ctx, 0)
	if err != nil {
		return c, err
	}
	if c.Size() != want {
		return c, fmt.Errorf("READ CAPACITY says %d bytes, want %d", c.Size(), want)
	}
	return c, nil
}

// writeRead writes 1 MiB at the start and at the end of the LV (FUA),
// then reads both back.
func (s *lab) writeRead(ctx context.Context) error {
	return s.session(ctx, func(ss *initiator.Session) error {
		c, err := expectSize(ctx, ss, lvSize)
		if err != nil {
			return err
		}
		fmt.Printf("    READ CAPACITY: %d blocks of %d bytes, thin provisioned %v\n", c.Blocks, c.BlockSize, c.ThinProvisioned)
		if !c.ThinProvisioned {
			return errors.New("the LUN on a thin LV does not report thin provisioning (LBPME): UNMAP would not reach the pool")
		}
		for _, lba := range s.lbas(c) {
			if err := ss.Write16(ctx, 0, lba, s.data, true); err != nil {
				return fmt.Errorf("write at lba %d: %w", lba, err)
			}
		}
		return s.readBack(ctx, ss, c)
	})
}

func (s *lab) lbas(c initiator.Capacity) []uint64 {
	n := uint64(len(s.data)) / uint64(c.BlockSize)
	return []uint64{0, uint64(lvSize)/uint64(c.BlockSize) - n}
}

func (s *lab) readBack(ctx context.Context, ss *initiator.Session, c initiator.Capacity) error {
	for _, lba := range s.lbas(c) {
		got, err := ss.Read16(ctx, 0, lba, uint32(len(s.data))/c.BlockSize)
		if err != nil {
			return fmt.Errorf("read at lba %d: %w", lba, err)
		}
		if !bytes.Equal(got, s.data) {
			return fmt.Errorf("read at lba %d: not what was written", lba)
		}
	}
	return nil
}

// resize grows the LV while the host's session is logged in: the next
// command of that session must get CAPACITY DATA HAS CHANGED, and READ
// CAPACITY then the new size.
func (s *lab) resize(ctx context.Context) error {
	return s.session(ctx, func(ss *initiator.Session) error {
		if _, err := expectSize(ctx, ss, lvSize); err != nil {
			return err
		}
		out, err := s.tandemctl(ctx, "volume", "resize", vg+"/"+lv, "+1G")
		if err != nil {
			return err
		}
		fmt.Printf("    guest: %s", strings.TrimPrefix(string(out), "\n"))
		tur, err := ss.Do(ctx, &initiator.Command{LUN: 0, CDB: make([]byte, 6)}) // TEST UNIT READY
		if err != nil {
			return err
		}
		if err := tur.Err(); !isCapacityChanged(err) {
			return fmt.Errorf("TEST UNIT READY after the resize: want CAPACITY DATA HAS CHANGED, got %v", err)
		}
		fmt.Println("    host: TEST UNIT READY: unit attention, CAPACITY DATA HAS CHANGED (2Ah/09h)")
		c, err := expectSize(ctx, ss, lvSize+grow)
		if err != nil {
			return err
		}
		fmt.Printf("    host: READ CAPACITY: %d blocks (%d GiB)\n", c.Blocks, c.Size()>>30)
		return nil
	})
}

// restart stops and starts tandem-target on the config its admin API
// wrote; the LUN must come back grown, with the data.
func (s *lab) restart(ctx context.Context) error {
	if err := s.stopTarget(ctx); err != nil {
		return err
	}
	if err := s.startTarget(ctx); err != nil {
		return err
	}
	return s.session(ctx, func(ss *initiator.Session) error {
		c, err := expectSize(ctx, ss, lvSize+grow)
		if err != nil {
			return err
		}
		return s.readBack(ctx, ss, c)
	})
}

// unmap discards the 1 MiB written at the end of the LV: dm-thin then
// reads it as zeros, so the discard reached the pool.
func (s *lab) unmap(ctx context.Context) error {
	return s.session(ctx, func(ss *initiator.Session) error {
		c, err := ss.ReadCapacity16(ctx, 0)
		if err != nil {
			return err
		}
		lba, n := s.lbas(c)[1], uint32(len(s.data))/c.BlockSize
		cdb, param := unmapCommand(lba, n)
		r, err := ss.Do(ctx, &initiator.Command{LUN: 0, CDB: cdb, DataOut: param})
		if err != nil {
			return err
		}
		if err := r.Err(); err != nil {
			return fmt.Errorf("UNMAP at lba %d: %w", lba, err)
		}
		got, err := ss.Read16(ctx, 0, lba, n)
		if err != nil {
			return err
		}
		if !bytes.Equal(got, make([]byte, len(got))) {
			return fmt.Errorf("lba %d still holds data after UNMAP: the discard did not reach the thin pool", lba)
		}
		return nil
	})
}

func (s *lab) refused(ctx context.Context) error {
	wrong := strings.Repeat("x", len(s.secret))
	ss, err := s.login(ctx, node1IQN, wrong)
	if err == nil {
		ss.Close(ctx)
		return errors.New("a login with a wrong CHAP secret succeeded")
	}
	if !isLoginRefused(err, loginAuthentication) {
		return fmt.Errorf("a wrong secret failed, but not with an authentication failure: %w", err)
	}
	fmt.Println("    wrong secret:", err)
	ss, err = s.login(ctx, strangerQ, s.secret)
	if err == nil {
		ss.Close(ctx)
		return errors.New("an initiator outside the ACL logged in")
	}
	if !isLoginRefused(err, loginAuthorization) && !isLoginRefused(err, loginAuthentication) {
		return fmt.Errorf("an initiator outside the ACL failed, but not with an authorization failure: %w", err)
	}
	fmt.Println("    outside the ACL:", err)
	return nil
}

// allocated is how much of path is really on disk (the sparse file's
// blocks).
func allocated(path string) (int64, error) {
	var st syscall.Stat_t
	if err := syscall.Stat(path, &st); err != nil {
		return 0, fmt.Errorf("stat disk: %w", err)
	}
	return st.Blocks * 512, nil
}
