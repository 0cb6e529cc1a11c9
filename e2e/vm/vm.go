package vm

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/tandem-ha/tandem/e2e/internal/proc"
)

// Config describes one guest.
type Config struct {
	// Name is the guest's hostname and names its files; short, [a-z0-9-].
	Name  string
	Image *Image
	// Dir holds the console log, qemu's log and the control and monitor
	// sockets. Unix socket paths are limited to 107 bytes, so keep it short.
	Dir string
	// MemoryMiB is the guest RAM; default 256.
	MemoryMiB int
	// Accel is qemu's accelerator; default "tcg". KVM here is a nested PVM
	// device that does not boot stock kernels, so TCG is the default.
	Accel string
	// Netns is the named network namespace qemu runs in; "" is the
	// caller's. The lab's namespace holds the bridge and the taps.
	Netns string
	// Tap is the guest NIC's host side, an existing tap device in Netns
	// (at most 15 bytes); "" = no network.
	Tap string
	// MAC of the guest NIC; default derived from Name.
	MAC string
	// IP is the guest address with its prefix length, e.g. 10.213.7.11/24.
	IP netip.Prefix
	// NICs are further guest NICs (eth1, eth2, ... in order), each on its
	// own tap; their qemu netdev IDs are net1, net2, ... (Monitor's
	// "set_link net1 off").
	NICs []NIC
	// Drives are raw image files the guest sees as virtio disks
	// (/dev/vda, /dev/vdb, ...).
	Drives []string
	// EventPort adds a second virtio-serial port (EventPortName) whose host
	// side is a unix socket (DialEvents): guest daemons write their log
	// lines to it and the host stamps them on arrival.
	EventPort bool
	// IQN is the guest's InitiatorName.
	IQN string
	// NoISCSID keeps /init from starting iscsid.
	NoISCSID bool
	// Cmdline is appended to the kernel command line.
	Cmdline string
	// BootTimeout bounds the wait for the guest agent; default 90s.
	BootTimeout time.Duration
	// Logger; nil discards.
	Logger *slog.Logger
}

func (c *Config) defaults() error {
	if c.Name == "" || c.Image == nil || c.Dir == "" {
		return errors.New("vm: Config needs Name, Image and Dir")
	}
	if c.MemoryMiB == 0 {
		c.MemoryMiB = 256
	}
	if c.Accel == "" {
		c.Accel = "tcg"
	}
	if c.MAC == "" {
		c.MAC = MACFor(c.Name)
	}
	if c.BootTimeout == 0 {
		c.BootTimeout = 90 * time.Second
	}
	if len(c.Tap) > 15 {
		return fmt.Errorf("vm: tap name %q must be 1..15 bytes", c.Tap)
	}
	for _, n := range c.NICs {
		if n.Tap == "" || len(n.Tap) > 15 {
			return fmt.Errorf("vm: tap name %q of a further NIC must be 1..15 bytes", n.Tap)
		}
	}
	if n := len(c.socket("mon")); n > 107 {
		return fmt.Errorf("vm: socket path %s is %d bytes, over the 107 unix sockets allow: use a shorter Dir", c.socket("mon"), n)
	}
	return nil
}

// NIC is one further guest NIC.
type NIC struct {
	// Tap is its host side, an existing tap device in Config.Netns.
	Tap string
	// MAC; default derived from the guest's name and the NIC's index.
	MAC string
	// IP with its prefix length; invalid = the guest leaves it unconfigured.
	IP netip.Prefix
}

// EventPortName is the virtio-serial port name of Config.EventPort.
const EventPortName = "tandem.evt"

func (c *Config) socket(kind string) string { return filepath.Join(c.Dir, c.Name+"."+kind) }

// ConsolePath is where the guest's serial console is logged.
func (c *Config) ConsolePath() string { return filepath.Join(c.Dir, c.Name+".console.log") }

// MACFor derives a stable locally administered unicast MAC from a name.
func MACFor(name string) string {
	h := sha256.Sum256([]byte(name))
	return fmt.Sprintf("52:54:%02x:%02x:%02x:%02x", h[0], h[1], h[2], h[3])
}

// KernelCmdline is the guest kernel's command line for c.
func KernelCmdline(c Config) string {
	args := []string{"console=ttyS0", "panic=-1", "loglevel=4", "tandem.hostname=" + c.Name}
	if c.IP.IsValid() {
		args = append(args, "tandem.ip="+c.IP.String())
	}
	for i, n := range c.NICs {
		if n.IP.IsValid() {
			args = append(args, fmt.Sprintf("tandem.ip%d=%s", i+1, n.IP))
		}
	}
	if c.IQN != "" {
		args = append(args, "tandem.iqn="+c.IQN)
	}
	if c.NoISCSID {
		args = append(args, "tandem.iscsid=0")
	}
	if c.Cmdline != "" {
		args = append(args, c.Cmdline)
	}
	return strings.Join(args, " ")
}

// QemuArgs is qemu-system-x86_64's argument list for c (after defaults).
func QemuArgs(c Config) []string {
	accel := c.Accel
	if accel == "tcg" {
		accel = "tcg,tb-size=64" // smaller translation cache: ~250 MB resident per guest
	}
	a := []string{
		"-name", c.Name,
		"-nodefaults", "-no-user-config", "-display", "none", "-no-reboot",
		"-accel", accel,
		"-m", strconv.Itoa(c.MemoryMiB), "-smp", "1",
		"-kernel", c.Image.Kernel, "-initrd", c.Image.Initrd,
		"-append", KernelCmdline(c),
		"-serial", "file:" + c.ConsolePath(),
		"-monitor", "unix:" + c.socket("mon") + ",server=on,wait=off",
		"-chardev", "socket,id=ctl,path=" + c.socket("ctl") + ",server=on,wait=off",
		"-device", "virtio-serial-pci",
		"-device", "virtserialport,chardev=ctl,name=" + ControlPortName,
	}
	if c.Tap != "" {
		a = append(a,
			"-netdev", "tap,id=net0,ifname="+c.Tap+",script=no,downscript=no",
			"-device", "virtio-net-pci,netdev=net0,mac="+c.MAC)
	}
	for i, n := range c.NICs {
		mac := n.MAC
		if mac == "" {
			mac = MACFor(fmt.Sprintf("%s-nic%d", c.Name, i+1))
		}
		id := fmt.Sprintf("net%d", i+1)
		a = append(a,
			"-netdev", "tap,id="+id+",ifname="+n.Tap+",script=no,downscript=no",
			"-device", "virtio-net-pci,netdev="+id+",mac="+mac)
	}
	for i, d := range c.Drives {
		a = append(a, "-drive", fmt.Sprintf("file=%s,format=raw,if=virtio,index=%d", d, i))
	}
	if c.EventPort {
		a = append(a,
			"-chardev", "socket,id=evt,path="+c.socket("evt")+",server=on,wait=off",
			"-device", "virtserialport,chardev=evt,name="+EventPortName)
	}
	return a
}

// VM is a running guest.
type VM struct {
	cfg Config
	log *slog.Logger
	p   *proc.Process

	conn    net.Conn
	wmu     sync.Mutex
	mu      sync.Mutex
	pending map[uint64]chan Response
	nextID  uint64
	dead    error // set when the control channel broke

	closeOnce sync.Once
}

// Start boots a guest and waits until its agent answers.
func Start(ctx context.Context, cfg Config) (*VM, error) {
	if err := cfg.defaults(); err != nil {
		return nil, err
	}
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	log = log.With("vm", cfg.Name)
	if err := os.MkdirAll(cfg.Dir, 0o755); err != nil {
		return nil, fmt.Errorf("vm: run dir: %w", err)
	}
	for _, k := range []string{"ctl", "mon", "evt"} {
		_ = os.Remove(cfg.socket(k))
	}
	qemu, err := exec.LookPath("qemu-system-x86_64")
	if err != nil {
		return nil, errors.New("vm: qemu-system-x86_64 not found: apt-get install -y qemu-system-x86")
	}
	qlog := filepath.Join(cfg.Dir, cfg.Name+".qemu.log")
	_ = os.Remove(qlog)
	// Its own process group: a terminal's SIGINT reaches only the lab,
	// which then tears the guests down itself.
	p, err := proc.Start(qemu, QemuArgs(cfg), proc.Options{Log: qlog, Netns: cfg.Netns, Setpgid: true})
	if err != nil {
		return nil, fmt.Errorf("vm: start qemu: %w", err)
	}
	v := &VM{cfg: cfg, log: log, p: p, pending: map[uint64]chan Response{}}
	log.Info("qemu started", "pid", p.PID(), "netns", cfg.Netns, "accel", cfg.Accel, "console", cfg.ConsolePath())
	if err := v.boot(ctx); err != nil {
		v.Close()
		return nil, fmt.Errorf("%w\n%s", err, v.Diagnostics())
	}
	return v, nil
}

func (v *VM) boot(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, v.cfg.BootTimeout)
	defer cancel()
	// qemu creates the control socket early; connect before the guest
	// writes anything.
	var conn net.Conn
	for {
		c, err := net.Dial("unix", v.cfg.socket("ctl"))
		if err == nil {
			conn = c
			break
		}
		select {
		case <-v.p.Done():
			return fmt.Errorf("vm %s: qemu exited during start: %v", v.cfg.Name, v.p.Err())
		case <-ctx.Done():
			return fmt.Errorf("vm %s: control socket never appeared: %w", v.cfg.Name, ctx.Err())
		case <-time.After(20 * time.Millisecond):
		}
	}
	v.conn = conn
	go v.readLoop()
	// Ping until the agent answers. Pings sent before it opened the port
	// wait in qemu and are answered late; their IDs are then unknown and
	// dropped.
	for {
		pctx, pcancel := context.WithTimeout(ctx, time.Second)
		_, err := v.Exec(pctx, Request{Argv: []string{"true"}})
		pcancel()
		if err == nil {
			return nil
		}
		select {
		case <-v.p.Done():
			return fmt.Errorf("vm %s: qemu exited during boot: %v", v.cfg.Name, v.p.Err())
		default:
		}
		if ctx.Err() != nil {
			return fmt.Errorf("vm %s: guest agent did not answer within %s (see %s)", v.cfg.Name, v.cfg.BootTimeout, v.cfg.ConsolePath())
		}
	}
}

func (v *VM) readLoop() {
	lr := NewLineReader(v.conn)
	var err error
	for {
		var line []byte
		line, err = lr.Next()
		if err != nil {
			break
		}
		resp, derr := DecodeResponse(line)
		if derr != nil {
			v.log.Warn("bad control line", "err", derr)
			continue
		}
		v.mu.Lock()
		ch := v.pending[resp.ID]
		delete(v.pending, resp.ID)
		v.mu.Unlock()
		if ch != nil {
			ch <- resp
		}
	}
	if errors.Is(err, io.EOF) {
		err = errors.New("control channel closed")
	}
	v.mu.Lock()
	v.dead = fmt.Errorf("vm %s: %w", v.cfg.Name, err)
	for id, ch := range v.pending {
		close(ch)
		delete(v.pending, id)
	}
	v.mu.Unlock()
}

// Exec runs one request in the guest. A command that ran and failed is
// not an error here: see Response.Exit and Response.Err. The request's
// Timeout (if any) is enforced in the guest; ctx bounds the wait.
func (v *VM) Exec(ctx context.Context, req Request) (Response, error) {
	ch := make(chan Response, 1)
	v.mu.Lock()
	if v.dead != nil {
		err := v.dead
		v.mu.Unlock()
		return Response{}, err
	}
	v.nextID++
	req.ID = v.nextID
	v.pending[req.ID] = ch
	v.mu.Unlock()
	b, err := AppendLine(nil, req)
	if err == nil {
		v.wmu.Lock()
		_, err = v.conn.Write(b)
		v.wmu.Unlock()
	}
	if err != nil {
		v.forget(req.ID)
		return Response{}, fmt.Errorf("vm %s: send command: %w", v.cfg.Name, err)
	}
	select {
	case r, ok := <-ch:
		if !ok {
			v.mu.Lock()
			defer v.mu.Unlock()
			return Response{}, v.dead
		}
		return r, nil
	case <-ctx.Done():
		v.forget(req.ID)
		return Response{}, fmt.Errorf("vm %s: %q: %w", v.cfg.Name, strings.Join(req.Argv, " "), ctx.Err())
	}
}

func (v *VM) forget(id uint64) {
	v.mu.Lock()
	delete(v.pending, id)
	v.mu.Unlock()
}

// Run runs argv in the guest and returns its stdout; a non-zero exit is
// an *ExitError carrying the exit code and stderr.
func (v *VM) Run(ctx context.Context, argv ...string) (string, error) {
	r, err := v.Exec(ctx, Request{Argv: argv})
	if err != nil {
		return "", err
	}
	return string(r.Stdout), r.Err(argv)
}

// Monitor sends one human monitor command (e.g. "set_link net0 off") and
// returns its output.
func (v *VM) Monitor(ctx context.Context, command string) (string, error) {
	var d net.Dialer
	c, err := d.DialContext(ctx, "unix", v.cfg.socket("mon"))
	if err != nil {
		return "", fmt.Errorf("vm %s: monitor: %w", v.cfg.Name, err)
	}
	defer c.Close()
	if dl, ok := ctx.Deadline(); ok {
		_ = c.SetDeadline(dl)
	} else {
		_ = c.SetDeadline(time.Now().Add(10 * time.Second))
	}
	if _, err := io.WriteString(c, command+"\n"); err != nil {
		return "", fmt.Errorf("vm %s: monitor: %w", v.cfg.Name, err)
	}
	// The monitor echoes the command and prints "(qemu) " when done.
	var out []byte
	buf := make([]byte, 4096)
	for strings.Count(string(out), "(qemu) ") < 2 {
		n, err := c.Read(buf)
		out = append(out, buf[:n]...)
		if err != nil {
			return string(out), fmt.Errorf("vm %s: monitor: %w", v.cfg.Name, err)
		}
	}
	return string(out), nil
}

// DialEvents connects to the guest's event port (Config.EventPort); the
// caller reads its lines. qemu keeps one connection: dial once.
func (v *VM) DialEvents(ctx context.Context) (net.Conn, error) {
	if !v.cfg.EventPort {
		return nil, fmt.Errorf("vm %s: no event port: set Config.EventPort", v.cfg.Name)
	}
	var d net.Dialer
	c, err := d.DialContext(ctx, "unix", v.cfg.socket("evt"))
	if err != nil {
		return nil, fmt.Errorf("vm %s: event port: %w", v.cfg.Name, err)
	}
	return c, nil
}

// Name is the guest's name.
func (v *VM) Name() string { return v.cfg.Name }

// PID is qemu's process ID.
func (v *VM) PID() int { return v.p.PID() }

// Config is the guest's configuration (after defaults).
func (v *VM) Config() Config { return v.cfg }

// Done is closed when qemu has exited.
func (v *VM) Done() <-chan struct{} { return v.p.Done() }

// Diagnostics returns the ends of the console and qemu logs.
func (v *VM) Diagnostics() string {
	return proc.Tail(v.cfg.ConsolePath(), 30) + "\n" + proc.Tail(filepath.Join(v.cfg.Dir, v.cfg.Name+".qemu.log"), 10)
}

// Close kills qemu (a power cut; this is a throwaway guest) by its PID
// and waits for it. The tap stays: the lab owns it. Safe to call twice.
func (v *VM) Close() error {
	var err error
	v.closeOnce.Do(func() {
		err = v.p.Kill()
		if v.conn != nil {
			v.conn.Close()
		}
		for _, k := range []string{"ctl", "mon", "evt"} {
			_ = os.Remove(v.cfg.socket(k))
		}
	})
	return err
}
