// Package filesystem mounts a block device as a resource: fsck, then
// mount(2) on Start; umount(2) on Stop; on a busy mount ForceStop kills the
// processes holding it and, as a last resort, detaches it lazily.
package filesystem

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"golang.org/x/sys/unix"

	"github.com/tandem-ha/tandem/ha/resource"
	"github.com/tandem-ha/tandem/ha/resource/internal/command"
)

// Type is the Spec.Type of this package.
const Type = "filesystem"

func init() { resource.Register(Type, Params, New) }

// Params is the filesystem type's parameter table.
var Params = []resource.Param{
	{Key: "device", Required: true, Example: "/dev/vg0/data", Doc: "the block device, or ${disk.device} from an iscsi resource"},
	{Key: "directory", Required: true, Example: "/srv/data", Doc: "the mount point (absolute, not /)"},
	{Key: "fstype", Required: true, Example: "ext4", Doc: "the filesystem type"},
	{Key: "options", Example: "noatime", Doc: "mount options, comma separated"},
	{Key: "fsck", Example: "e2fsck -p", Doc: "the check run before mounting; none disables it (default e2fsck -p for ext2/3/4)"},
}

// ErrBusy is returned (wrapped) by Stop when the mount is in use; the agent
// then calls ForceStop.
var ErrBusy = errors.New("mount is busy")

// Config describes one filesystem.
type Config struct {
	Device    string // block device (or source for non-block filesystems)
	Directory string // absolute mount point, created if missing
	FSType    string // ext4, xfs...
	Options   string // mount(8) options, e.g. "noatime,errors=remount-ro"
	// Fsck is the checker run before mounting, the device appended; nil runs
	// none. Exit codes follow fsck(8): 0 and 1 (errors corrected) and 2
	// (corrected, reboot advised, which concerns only the root filesystem)
	// allow the mount; 4 and above fail Start.
	Fsck []string
	// KillGrace is how long ForceStop waits after SIGTERM before SIGKILL.
	KillGrace time.Duration
	// ProcRoot and MountInfo locate /proc and /proc/self/mountinfo (tests).
	ProcRoot, MountInfo string
}

// FS is a resource.Resource and resource.Forcer.
type FS struct {
	name  string
	cfg   Config
	flags uintptr
	data  string
	log   *slog.Logger
	// probing is non-nil while a readability probe is still running; a probe
	// stuck on a dead device is not started twice.
	mu      sync.Mutex
	probing chan struct{}
	// deviceRef is params.device when it refers to another resource's
	// output (${disk.device}, see resource.Env); Start resolves it into
	// cfg.Device.
	deviceRef string
}

// New builds an FS from spec params device, directory, fstype, options and
// fsck ("none" disables it; default "e2fsck -p" for ext2/3/4).
func New(spec resource.Spec, log *slog.Logger) (resource.Resource, error) {
	p := resource.NewParams(spec)
	cfg := Config{
		Device:    p.Required("device"),
		Directory: p.Required("directory"),
		FSType:    p.Required("fstype"),
		Options:   p.String("options", ""),
	}
	if cfg.Directory != "" {
		if !filepath.IsAbs(cfg.Directory) || filepath.Clean(cfg.Directory) == "/" {
			p.Fail("directory", fmt.Sprintf("%q is not an absolute path below /", cfg.Directory), "use a mount point such as /srv/data")
		}
		cfg.Directory = filepath.Clean(cfg.Directory)
	}
	if _, _, bad := ParseOptions(cfg.Options); bad != "" {
		p.Fail("options", fmt.Sprintf("contains %q", bad), "remove it; the resource mounts the device itself")
	}
	fsck := p.String("fsck", "")
	switch {
	case !p.Has("fsck") && DefaultFsck(cfg.FSType) != nil:
		cfg.Fsck = DefaultFsck(cfg.FSType)
	case fsck == "" || fsck == "none":
	default:
		cfg.Fsck = strings.Fields(fsck)
		if !filepath.IsAbs(cfg.Fsck[0]) {
			if _, err := exec.LookPath(cfg.Fsck[0]); err != nil {
				p.Fail("fsck", fmt.Sprintf("%q is not in $PATH", cfg.Fsck[0]), `install it, give its absolute path, or set fsck: none`)
			}
		}
	}
	if err := p.Err(); err != nil {
		return nil, err
	}
	return NewFS(spec.Name, cfg, log), nil
}

// DefaultFsck is the checker for fstype: "e2fsck -p" for ext2/3/4, else nil
// (xfs and btrfs check themselves at mount time).
func DefaultFsck(fstype string) []string {
	switch fstype {
	case "ext2", "ext3", "ext4":
		return []string{"e2fsck", "-p"}
	}
	return nil
}

// NewFS returns an FS for cfg; it does not touch the host.
func NewFS(name string, cfg Config, log *slog.Logger) *FS {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	if cfg.KillGrace == 0 {
		cfg.KillGrace = 2 * time.Second
	}
	if cfg.ProcRoot == "" {
		cfg.ProcRoot = "/proc"
	}
	if cfg.MountInfo == "" {
		cfg.MountInfo = "/proc/self/mountinfo"
	}
	flags, data, _ := ParseOptions(cfg.Options)
	f := &FS{name: name, cfg: cfg, flags: flags, data: data, log: log}
	if len(resource.References(cfg.Device)) > 0 {
		f.deviceRef = cfg.Device
	}
	return f
}

// resolveDevice expands a ${name.key} device from the group's resource.Env.
func (f *FS) resolveDevice(ctx context.Context) error {
	if f.deviceRef == "" {
		return nil
	}
	dev, err := resource.Expand(ctx, f.deviceRef)
	if err != nil {
		return fmt.Errorf("filesystem %s: params.device: %w", f.name, err)
	}
	f.cfg.Device = dev
	return nil
}

// Name implements resource.Resource.
func (f *FS) Name() string { return f.name }

func (f *FS) mount() (Mount, bool, error) {
	fh, err := os.Open(f.cfg.MountInfo)
	if err != nil {
		return Mount{}, false, fmt.Errorf("filesystem %s: %w", f.name, err)
	}
	defer fh.Close()
	ms, err := ParseMountInfo(fh)
	if err != nil {
		return Mount{}, false, fmt.Errorf("filesystem %s: %w", f.name, err)
	}
	m, ok := find(ms, f.cfg.Directory)
	return m, ok, nil
}

// isOurs reports whether mount m is of our device: same device number for a
// block device, same source string otherwise (tmpfs, nfs).
func (f *FS) isOurs(m Mount) bool {
	var st unix.Stat_t
	if err := unix.Stat(f.cfg.Device, &st); err == nil && st.Mode&unix.S_IFMT == unix.S_IFBLK {
		return unix.Major(st.Rdev) == m.Major && unix.Minor(st.Rdev) == m.Minor
	}
	return m.Source == f.cfg.Device
}

// JudgeFsck turns an fsck(8) exit code into an error: 0, 1 and 2 pass.
func JudgeFsck(code int) error {
	switch {
	case code >= 0 && code <= 2:
		return nil
	case code&4 != 0:
		return errors.New("filesystem errors left uncorrected (exit 4); repair it by hand with fsck")
	case code&8 != 0:
		return errors.New("fsck operational error (exit 8); is the device present and not in use?")
	}
	return fmt.Errorf("fsck exit status %d; run it by hand to see why", code)
}

// Start checks and mounts the filesystem; an existing mount of the same
// device succeeds, a mount of another device on the directory is an error.
func (f *FS) Start(ctx context.Context) error {
	if err := f.resolveDevice(ctx); err != nil {
		return err
	}
	m, ok, err := f.mount()
	if err != nil {
		return err
	}
	if ok {
		if f.isOurs(m) {
			return nil
		}
		return fmt.Errorf("filesystem %s: %s already has %s mounted (unmount it or change params.directory)", f.name, f.cfg.Directory, m.Source)
	}
	if _, err := os.Stat(f.cfg.Device); err != nil && strings.HasPrefix(f.cfg.Device, "/") {
		return fmt.Errorf("filesystem %s: device: %w (is the volume attached and activated?)", f.name, err)
	}
	if err := os.MkdirAll(f.cfg.Directory, 0o755); err != nil {
		return fmt.Errorf("filesystem %s: create mount point: %w", f.name, err)
	}
	if len(f.cfg.Fsck) > 0 {
		args := append(append([]string(nil), f.cfg.Fsck[1:]...), f.cfg.Device)
		res, err := command.Run(ctx, f.cfg.Fsck[0], args...)
		if err != nil {
			return fmt.Errorf("filesystem %s: fsck: %w", f.name, err)
		}
		if err := JudgeFsck(res.ExitCode); err != nil {
			return fmt.Errorf("filesystem %s: %s %s: %w", f.name, strings.Join(f.cfg.Fsck, " "), f.cfg.Device, err)
		}
		if res.ExitCode != 0 {
			f.log.Warn("fsck corrected errors", "device", f.cfg.Device, "exit", res.ExitCode)
		}
	}
	if err := unix.Mount(f.cfg.Device, f.cfg.Directory, f.cfg.FSType, f.flags, f.data); err != nil {
		return fmt.Errorf("filesystem %s: mount %s on %s (%s): %w (check params.fstype and params.options, and dmesg)",
			f.name, f.cfg.Device, f.cfg.Directory, f.cfg.FSType, err)
	}
	f.log.Info("filesystem mounted", "device", f.cfg.Device, "directory", f.cfg.Directory)
	return nil
}

// Stop unmounts; a directory with nothing mounted is stopped already. A busy
// mount returns an error wrapping ErrBusy.
func (f *FS) Stop(ctx context.Context) error {
	// A restarted agent stops what an earlier process mounted: the device
	// may still be a ${name.key} reference, so resolve it first or the
	// mount would look like someone else's and stay.
	_ = f.resolveDevice(ctx)
	return f.unmount(0)
}

func (f *FS) unmount(flags int) error {
	// A directory may carry stacked mounts of our device; peel them all.
	for range 8 {
		m, ok, err := f.mount()
		if err != nil {
			return err
		}
		if !ok {
			return nil
		}
		if !f.isOurs(m) {
			f.log.Warn("not unmounting another device's mount", "directory", f.cfg.Directory, "source", m.Source)
			return nil
		}
		err = unix.Unmount(f.cfg.Directory, flags)
		switch {
		case err == nil, errors.Is(err, unix.EINVAL), errors.Is(err, unix.ENOENT):
			f.log.Info("filesystem unmounted", "directory", f.cfg.Directory, "lazy", flags&unix.MNT_DETACH != 0)
		case errors.Is(err, unix.EBUSY):
			return fmt.Errorf("filesystem %s: unmount %s: %w (processes still use it; ForceStop kills them)", f.name, f.cfg.Directory, ErrBusy)
		default:
			return fmt.Errorf("filesystem %s: unmount %s: %w", f.name, f.cfg.Directory, err)
		}
	}
	return fmt.Errorf("filesystem %s: %s still mounted after 8 unmounts", f.name, f.cfg.Directory)
}

// ForceStop kills the processes using the mount (SIGTERM, then SIGKILL after
// KillGrace), unmounts, and as a last resort detaches the mount lazily
// (MNT_DETACH): the device then stays busy until its last user is gone, which
// is why only ForceStop does it.
func (f *FS) ForceStop(ctx context.Context) error {
	_ = f.resolveDevice(ctx)
	if _, ok, err := f.mount(); err != nil || !ok {
		return err
	}
	self := os.Getpid()
	for _, sig := range []unix.Signal{unix.SIGTERM, unix.SIGKILL} {
		pids := Holders(f.cfg.ProcRoot, f.cfg.Directory, self)
		if len(pids) == 0 {
			break
		}
		f.log.Warn("killing processes that hold the mount", "directory", f.cfg.Directory, "signal", sig.String(), "pids", pids)
		for _, pid := range pids {
			_ = unix.Kill(pid, sig)
		}
		f.waitGone(ctx, f.cfg.KillGrace)
	}
	err := f.unmount(0)
	if err == nil || !errors.Is(err, ErrBusy) {
		return err
	}
	f.log.Warn("mount still busy, detaching it lazily", "directory", f.cfg.Directory)
	return f.unmount(unix.MNT_DETACH)
}

// waitGone polls until no process holds the mount, grace passes or ctx ends.
func (f *FS) waitGone(ctx context.Context, grace time.Duration) {
	t := time.NewTicker(50 * time.Millisecond)
	defer t.Stop()
	deadline := time.NewTimer(grace)
	defer deadline.Stop()
	for len(Holders(f.cfg.ProcRoot, f.cfg.Directory, os.Getpid())) > 0 {
		select {
		case <-ctx.Done():
			return
		case <-deadline.C:
			return
		case <-t.C:
		}
	}
}

// Monitor reports running when the device is mounted on the directory and
// the directory answers a stat before ctx ends; stopped when nothing is
// mounted there; failed when something else is, or the stat hangs or fails.
func (f *FS) Monitor(ctx context.Context) (resource.Status, error) {
	_ = f.resolveDevice(ctx) // keeps the last device when the publisher has not run (agent restart)
	m, ok, err := f.mount()
	if err != nil {
		return resource.StatusFailed, err
	}
	if !ok {
		return resource.StatusStopped, nil
	}
	if !f.isOurs(m) {
		return resource.StatusFailed, fmt.Errorf("filesystem %s: %s has %s mounted, not %s", f.name, f.cfg.Directory, m.Source, f.cfg.Device)
	}
	if err := f.probe(ctx); err != nil {
		return resource.StatusFailed, err
	}
	return resource.StatusRunning, nil
}

// probe reads the first entry of the mount point in a goroutine, so a hung
// device cannot hang the monitor (reading, unlike stat, reaches the device
// when the inode is cached); a stuck probe is waited for, not duplicated.
func (f *FS) probe(ctx context.Context) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.probeLocked(ctx)
}

func (f *FS) probeLocked(ctx context.Context) error {
	if f.probing == nil {
		done := make(chan struct{})
		var err error
		go func() {
			defer close(done)
			d, oerr := os.Open(f.cfg.Directory)
			if oerr != nil {
				err = oerr
				return
			}
			defer d.Close()
			if _, rerr := d.Readdirnames(1); rerr != nil && rerr != io.EOF {
				err = rerr
			}
		}()
		select {
		case <-done:
			if err != nil {
				return fmt.Errorf("filesystem %s: read %s: %w", f.name, f.cfg.Directory, err)
			}
			return nil
		case <-ctx.Done():
			f.probing = done
			return fmt.Errorf("filesystem %s: reading %s hangs: %w", f.name, f.cfg.Directory, ctx.Err())
		}
	}
	select {
	case <-f.probing:
		f.probing = nil
		return f.probeLocked(ctx)
	default:
		return fmt.Errorf("filesystem %s: reading %s still hangs", f.name, f.cfg.Directory)
	}
}
