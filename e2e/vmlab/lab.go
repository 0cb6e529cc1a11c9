package vmlab

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/tandem-ha/tandem/e2e/internal/netlab"
	"github.com/tandem-ha/tandem/e2e/vm"
	"github.com/tandem-ha/tandem/ha/config"
)

// Options configure a lab.
type Options struct {
	// Dir holds the guests' logs and sockets, the storage disk and the
	// events; keep it short (unix socket paths).
	Dir string
	// Image is the guest image (BuildImage).
	Image *vm.Image
	// Accel is qemu's accelerator; default tcg.
	Accel string
	// Timing of the agents; zero = DefaultTiming.
	Timing config.Timing
	// NoFence leaves the fence out of the group (the negative control).
	NoFence bool
	// Out shows the steps as they happen (nil: discard).
	Out io.Writer
	// HandleSignals tears the lab down on SIGINT/SIGTERM and exits 130.
	HandleSignals bool
	Logger        *slog.Logger
}

// Lab is a running deployment.
type Lab struct {
	opt    Options
	net    *netlab.Lab
	Guests [3]*vm.VM
	Events *Events
	start  time.Time

	mu        sync.Mutex
	closed    bool
	closeDone chan struct{}
	stopSig   func()
}

// ImageOptions is what the lab's one image holds: the agent, the target,
// the MQ stand-in, lvm2 (vm.WithLVM) and the default iSCSI guest's tools.
func ImageOptions(cache, goDir string, log *slog.Logger) vm.ImageOptions {
	return vm.WithLVM(vm.ImageOptions{
		CacheDir: cache, GoDir: goDir, Logger: log,
		GoBinaries: []vm.GoBinary{
			{Package: "github.com/tandem-ha/tandem/ha/cmd/tandem-agent", Name: "tandem-agent"},
			{Package: "github.com/tandem-ha/tandem/target/cmd/tandem-target", Name: "tandem-target"},
			// graceful standby: tandemctl standby on the agent's socket.
			{Package: "github.com/tandem-ha/tandem/tools/cmd/tandemctl", Name: "tandemctl"},
			// The MQ stand-in: a test double, built only into lab images.
			{Package: "github.com/tandem-ha/tandem/mqres/internal/mqstub", Name: "mqstub"},
		},
	})
}

// Up builds the network, boots the three guests in parallel and sets up
// storage, the shared filesystem, the queue manager and the agents; the
// MQMaster holds the group when it returns. On error everything is torn
// down.
func Up(ctx context.Context, o Options) (_ *Lab, err error) {
	if o.Timing == (config.Timing{}) {
		o.Timing = DefaultTiming
	}
	if o.Out == nil {
		o.Out = io.Discard
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	l := &Lab{opt: o, start: time.Now(), closeDone: make(chan struct{})}
	if err := os.MkdirAll(o.Dir, 0o755); err != nil {
		return nil, err
	}
	l.Events = newEvents(filepath.Join(o.Dir, "events.log"), o.Out, l.start)
	if o.HandleSignals {
		ch := make(chan os.Signal, 1)
		signal.Notify(ch, syscall.SIGINT, syscall.SIGTERM)
		done := make(chan struct{})
		l.stopSig = func() { signal.Stop(ch); close(done) }
		go func() {
			select {
			case s := <-ch:
				fmt.Fprintf(o.Out, "signal %s: tearing the lab down\n", s)
				l.Close()
				os.Exit(130)
			case <-done:
			}
		}()
	}
	defer func() {
		if err != nil {
			l.Close()
		}
	}()
	topo := netlab.Topology{
		Prefix:     "tdml",
		Namespaces: []string{"lab"},
		Bridges: []netlab.Bridge{
			{NS: "lab", Name: PublicBridge, Addr: HostAddr},
			{NS: "lab", Name: HBBridge},
		},
	}
	for i := range 3 {
		topo.Taps = append(topo.Taps, netlab.Tap{NS: "lab", Name: PublicTap(i), Bridge: PublicBridge})
		if hasNode(i) {
			topo.Taps = append(topo.Taps, netlab.Tap{NS: "lab", Name: HBTap(i), Bridge: HBBridge})
		}
	}
	n, err := netlab.Build(topo)
	if err != nil {
		return nil, fmt.Errorf("vmlab: %w", err)
	}
	l.mu.Lock()
	l.net = n
	l.mu.Unlock()
	l.Events.Lab("network up", "netns", n.Netns("lab"))

	disk := filepath.Join(o.Dir, "storage.img")
	if err := os.WriteFile(disk, nil, 0o644); err != nil {
		return nil, err
	}
	if err := os.Truncate(disk, 256<<20); err != nil {
		return nil, err
	}
	var wg sync.WaitGroup
	errs := make([]error, 3)
	for i := range 3 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs[i] = l.boot(ctx, i, disk)
		}()
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	l.Events.Lab("guests booted")
	if err := l.setupStorage(ctx); err != nil {
		return nil, err
	}
	if err := l.setupShared(ctx); err != nil {
		return nil, err
	}
	for _, i := range []int{Master, Slave} {
		if err := l.StartAgent(ctx, i); err != nil {
			return nil, err
		}
	}
	l.Events.Lab("agents started")
	return l, nil
}

func (l *Lab) boot(ctx context.Context, i int, disk string) error {
	c := vm.Config{
		Name: GuestNames[i], Image: l.opt.Image, Dir: l.opt.Dir, Accel: l.opt.Accel,
		Netns: l.net.Netns("lab"), Tap: PublicTap(i), IP: PublicIPs[i], Logger: l.opt.Logger,
		// The initramfs unpacks into RAM: with the agent, the target, the
		// MQ stand-in and tandemctl it no longer fits in 256 MiB
		// ("Initramfs unpacking failed: write error").
		MemoryMiB: 384,
		// Three TCG guests on two shared cores boot in 15-20 s when the
		// machine is idle, several times that under load.
		BootTimeout: 4 * time.Minute,
	}
	if i == Storage {
		c.Drives, c.NoISCSID = []string{disk}, true
	} else {
		c.IQN = NodeIQN(i)
		c.NICs = []vm.NIC{{Tap: HBTap(i), IP: HBIPs[i]}}
		c.EventPort = true
	}
	g, err := vm.Start(ctx, c)
	if err != nil {
		return err
	}
	l.mu.Lock()
	closed := l.closed
	l.Guests[i] = g
	l.mu.Unlock()
	if closed {
		g.Close()
		return errors.New("vmlab: lab closed during boot")
	}
	l.Events.Lab("guest booted", "guest", GuestNames[i])
	go l.watch(i, g)
	if hasNode(i) {
		conn, err := g.DialEvents(ctx)
		if err != nil {
			return err
		}
		go l.Events.Read(NodeNames[i], conn)
	}
	return nil
}

// watch notices a guest whose qemu ended without the lab asking (a node
// that self-fenced reboots, and qemu runs with -no-reboot): for the lab
// it is powered off from then on, which also ends its mount.
func (l *Lab) watch(i int, g *vm.VM) {
	<-g.Done()
	l.mu.Lock()
	mine := !l.closed && l.Guests[i] == g
	if mine {
		l.Guests[i] = nil
	}
	l.mu.Unlock()
	if mine {
		l.Events.Lab("power off", "node", nodeOrGuest(i), "cause", "the guest's qemu exited (a self-fence reboots)")
	}
}

func nodeOrGuest(i int) string {
	if hasNode(i) {
		return NodeNames[i]
	}
	return GuestNames[i]
}

// Sh runs a shell script in guest i and returns its stdout; a failure
// carries stderr.
func (l *Lab) Sh(ctx context.Context, i int, script string, stdin []byte) (string, error) {
	l.mu.Lock()
	g := l.Guests[i]
	l.mu.Unlock()
	if g == nil {
		return "", fmt.Errorf("vmlab: %s is not running", GuestNames[i])
	}
	r, err := g.Exec(ctx, vm.Request{Argv: []string{"sh", "-c", script}, Stdin: stdin, Timeout: 2 * time.Minute})
	if err != nil {
		return "", err
	}
	if err := r.Err([]string{"sh", "-c", firstLine(script)}); err != nil {
		return string(r.Stdout), fmt.Errorf("%s: %w", GuestNames[i], err)
	}
	return string(r.Stdout), nil
}

func firstLine(s string) string {
	s = strings.TrimSpace(s)
	if i := strings.IndexByte(s, '\n'); i >= 0 {
		return s[:i] + " ..."
	}
	return s
}

// setupStorage makes the LV with lvm2 and starts tandem-target on it.
// TODO(issue 13): `tandemctl provision` (LVM volume + target + CHAP) once
// it exists.
func (l *Lab) setupStorage(ctx context.Context) error {
	b, err := TargetConfig().Marshal()
	if err != nil {
		return err
	}
	script := fmt.Sprintf(`set -e
mkdir -p /etc/tandem /var/lib/tandem/target /run/tandem /run/lock/lvm /var/log
lvm pvcreate -q /dev/vda
lvm vgcreate -q %[1]s /dev/vda
lvm lvcreate -q -y -Zn -L %[2]s -n %[3]s %[1]s
test -b %[4]s
cat > %[5]s
`+startTarget, VG, LVSize, LV, LVPath, TargetConf)
	if _, err := l.Sh(ctx, Storage, script, b); err != nil {
		return fmt.Errorf("vmlab: storage: %w", err)
	}
	l.Events.Lab("storage ready", "lv", LVPath, "portal", Portal)
	return nil
}

// startTarget starts tandem-target in the storage guest, records its pid
// and waits until it listens on 3260.
const startTarget = `setsid /bin/tandem-target --config ` + TargetConf + ` >>/var/log/target.log 2>&1 </dev/null &
echo $! > /run/target.pid
i=0; until grep -q ":0CBC 00000000:0000 0A" /proc/net/tcp 2>/dev/null; do i=$((i+1)); [ $i -gt 200 ] && { cat /var/log/target.log; exit 1; }; sleep 0.05; done
`

// login is the open-iscsi node record and login a node's standby keeps.
func login(ctx context.Context, l *Lab, i int) error {
	_, err := l.Sh(ctx, i, fmt.Sprintf(`set -e
iscsiadm -m discovery -t st -p %[1]s >/dev/null
iscsiadm -m node -T %[2]s -p %[1]s --login >/dev/null
i=0; until [ -b /dev/sda ]; do i=$((i+1)); [ $i -gt 200 ] && { echo "no /dev/sda after login" >&2; exit 1; }; mdev -s; sleep 0.05; done
`, Portal, TargetIQN), nil)
	return err
}

// setupShared makes the filesystem and the queue manager on MQMaster
// (crtmqm -md/-ld on the shared mount, MQ's listener on 1414) and adds it
// on MQSlave (addmqinf, as dspmqinf prints it).
func (l *Lab) setupShared(ctx context.Context) error {
	for _, i := range []int{Master, Slave} {
		if _, err := l.Sh(ctx, i, fmt.Sprintf("set -e; mkdir -p %s %s /etc/tandem /run/tandem /var/mqm; mqstub install %s", MQBin, SharedDir, MQBin), nil); err != nil {
			return err
		}
	}
	if err := login(ctx, l, Master); err != nil {
		return err
	}
	out, err := l.Sh(ctx, Master, fmt.Sprintf(`set -e
export PATH=%[1]s:$PATH
mkfs.ext4 -q -F /dev/sda
mount -t ext4 /dev/sda %[2]s
crtmqm -md %[2]s/qmgrs -ld %[2]s/log %[3]s >/dev/null
printf 'TCP:\n   Port=%[4]d\n' >> %[2]s/qmgrs/%[3]s/qm.ini
dspmqinf -o command %[3]s
umount %[2]s
iscsiadm -m node -T %[5]s -p %[6]s --logout >/dev/null
`, MQBin, SharedDir, QMgr, MQPort, TargetIQN, Portal), nil)
	if err != nil {
		return fmt.Errorf("vmlab: shared filesystem and queue manager: %w", err)
	}
	add := strings.TrimSpace(out)
	if !strings.HasPrefix(add, "addmqinf ") {
		return fmt.Errorf("vmlab: dspmqinf -o command printed %q, not an addmqinf line", add)
	}
	if _, err := l.Sh(ctx, Slave, "set -e; export PATH="+MQBin+":$PATH; "+add+" >/dev/null", nil); err != nil {
		return err
	}
	l.Events.Lab("filesystem and queue manager made", "qmgr", QMgr)
	return nil
}

// StartAgent writes node i's config and key and starts tandem-agent with
// its output on the event port.
func (l *Lab) StartAgent(ctx context.Context, i int) error {
	c, _, err := AgentConfig(i, l.opt.Timing, !l.opt.NoFence)
	if err != nil {
		return err
	}
	b, err := c.Marshal()
	if err != nil {
		return err
	}
	key := Seed(l.opt.Timing).Authkeys
	// The key file holds the secret of authkeys' active line.
	secret := strings.Fields(strings.Split(strings.TrimSpace(key), "\n")[1])[2]
	if _, err := l.Sh(ctx, i, "umask 077; cat > "+AgentKey, []byte(secret+"\n")); err != nil {
		return err
	}
	if _, err := l.Sh(ctx, i, "cat > "+AgentConf, b); err != nil {
		return err
	}
	_, err = l.Sh(ctx, i, fmt.Sprintf(`p=
for n in /sys/class/virtio-ports/*/name; do [ "$(cat $n)" = %s ] && p=/dev/$(basename $(dirname $n)); done
[ -n "$p" ] || { echo "no event port" >&2; exit 1; }
setsid /bin/tandem-agent --config %s >"$p" 2>&1 </dev/null &
echo $! > /run/agent.pid
`, vm.EventPortName, AgentConf), nil)
	if err != nil {
		return err
	}
	l.Events.Lab("agent started", "node", NodeNames[i])
	return nil
}

// Close kills the guests and removes the namespace; safe to call twice.
func (l *Lab) Close() error {
	l.mu.Lock()
	if l.closed {
		l.mu.Unlock()
		<-l.closeDone
		return nil
	}
	l.closed = true
	defer close(l.closeDone)
	guests, n, stop := l.Guests, l.net, l.stopSig
	l.mu.Unlock()
	var errs []error
	for _, g := range guests {
		if g != nil {
			errs = append(errs, g.Close())
		}
	}
	if n != nil {
		errs = append(errs, n.Close())
	}
	if stop != nil {
		stop()
	}
	l.Events.Close()
	return errors.Join(errs...)
}

// Host is the lab namespace's node (the client dials from it).
func (l *Lab) Host() *netlab.Node { return l.net.Node("lab") }

// Netns is the lab's namespace.
func (l *Lab) Netns() string { return l.net.Netns("lab") }
