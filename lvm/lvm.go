package lvm

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// DefaultTimeout bounds each lvm command. Metadata updates take well
// under a second; a command that takes this long waits on a lock another
// lvm holds or on a PV whose I/O does not return.
const DefaultTimeout = 30 * time.Second

// Options configure a Client. The zero value runs "lvm" from $PATH.
type Options struct {
	// Path is the lvm binary ("" means "lvm" from $PATH); every command
	// runs as "lvm <command> ...".
	Path string
	// Timeout bounds each command (0 means DefaultTimeout); a shorter
	// ctx deadline wins.
	Timeout time.Duration
	// NoDeviceMapper runs lvm2 in metadata-only mode for a kernel without
	// device-mapper: --driverloaded n on every command, and lvcreate -an
	// -Zn (no activation, no zeroing). LVs then have no device node.
	NoDeviceMapper bool
	// Config, when set, is passed as --config to every command (lvm.conf
	// syntax), e.g. a device filter.
	Config string
	// DevDir is where device nodes appear ("/dev"); Device looks for
	// DevDir/VG/LV.
	DevDir string
	// InUse says whether vg/lv backs something, typically a LUN of the
	// target, and who ("lun 3 of iqn..."). Remove, Deactivate and
	// shrinking refuse such an LV. nil means nothing outside lvm uses LVs.
	InUse func(vg, lv string) (user string, inUse bool)
	// Runner runs the commands (nil means ExecRunner{}).
	Runner Runner
	// Log gets one debug line per command; nil discards.
	Log *slog.Logger
}

// Client runs lvm2 commands. Use New.
type Client struct {
	o Options
}

// New returns a Client with o's defaults filled in.
func New(o Options) *Client {
	if o.Path == "" {
		o.Path = "lvm"
	}
	if o.Timeout <= 0 {
		o.Timeout = DefaultTimeout
	}
	if o.DevDir == "" {
		o.DevDir = "/dev"
	}
	if o.Runner == nil {
		o.Runner = ExecRunner{}
	}
	if o.Log == nil {
		o.Log = slog.New(slog.DiscardHandler)
	}
	return &Client{o: o}
}

// run executes "lvm <args>" under the timeout and turns a failure into an
// *OpError, classified from lvm's stderr.
func (c *Client) run(ctx context.Context, op string, args ...string) (Result, error) {
	argv := append([]string{c.o.Path}, args[0])
	if c.o.NoDeviceMapper {
		argv = append(argv, "--driverloaded", "n")
	}
	if c.o.Config != "" {
		argv = append(argv, "--config", c.o.Config)
	}
	argv = append(argv, args[1:]...)
	ctx, cancel := context.WithTimeout(ctx, c.o.Timeout)
	defer cancel()
	start := time.Now()
	res, err := c.o.Runner.Run(ctx, argv)
	c.o.Log.Debug("lvm", "op", op, "args", strings.Join(argv, " "), "rc", res.ExitCode, "took", time.Since(start).Round(time.Millisecond))
	if err == nil && res.ExitCode == 0 {
		return res, nil
	}
	oe := &OpError{Op: op, Args: argv, ExitCode: res.ExitCode, Stderr: string(res.Stderr)}
	switch {
	case ctx.Err() != nil:
		oe.ExitCode = -1
		oe.Err = fmt.Errorf("%w: %s did not finish", ErrTimeout, args[0])
		oe.Detail = fmt.Sprintf("killed it after %s (%v)", time.Since(start).Round(time.Millisecond), context.Cause(ctx))
		oe.Fix = "look for another lvm command holding the VG lock (ps, /run/lock/lvm) or a PV whose I/O hangs (an iSCSI path down?)"
	case err != nil:
		oe.Err = err
		if errors.Is(err, os.ErrNotExist) || strings.Contains(err.Error(), "executable file not found") {
			oe.Fix = "install lvm2 (apt-get install lvm2) or set Options.Path"
		}
	default:
		oe.Err, oe.Fix = classify(oe.Stderr)
		if oe.Err == nil {
			oe.Err = fmt.Errorf("%s exited with status %d", args[0], res.ExitCode)
		}
	}
	return res, oe
}

func sizeArg(n uint64) string { return strconv.FormatUint(n, 10) + "b" }

// PVs lists the physical volumes.
func (c *Client) PVs(ctx context.Context) ([]PV, error) {
	res, err := c.run(ctx, "list PVs", "pvs", "--reportformat", "json", "--units", "b", "--nosuffix", "-o", pvFields)
	if err != nil {
		return nil, err
	}
	pvs, err := ParsePVs(res.Stdout)
	return pvs, c.badOutput("list PVs", err)
}

// VGs lists the volume groups.
func (c *Client) VGs(ctx context.Context) ([]VG, error) {
	return c.vgs(ctx, "list VGs")
}

func (c *Client) vgs(ctx context.Context, op string, names ...string) ([]VG, error) {
	res, err := c.run(ctx, op, append([]string{"vgs", "--reportformat", "json", "--units", "b", "--nosuffix", "-o", vgFields}, names...)...)
	if err != nil {
		return nil, err
	}
	vgs, err := ParseVGs(res.Stdout)
	return vgs, c.badOutput(op, err)
}

// VG returns one volume group; a missing one is ErrNotFound.
func (c *Client) VG(ctx context.Context, name string) (VG, error) {
	if err := ValidateVG("vg", name); err != nil {
		return VG{}, err
	}
	op := "show VG " + name
	vgs, err := c.vgs(ctx, op, name)
	if err != nil {
		return VG{}, err
	}
	for _, vg := range vgs {
		if vg.Name == name {
			return vg, nil
		}
	}
	return VG{}, &OpError{Op: op, ExitCode: -1, Err: ErrNotFound, Fix: "check the VG name (vgs lists them), or create it (vgcreate)"}
}

// LVs lists the LVs of vg ("" for all VGs), hidden ones excluded.
func (c *Client) LVs(ctx context.Context, vg string) ([]LV, error) {
	args := []string{"lvs", "--reportformat", "json", "--units", "b", "--nosuffix", "-o", lvFields}
	op := "list LVs"
	if vg != "" {
		if err := ValidateVG("vg", vg); err != nil {
			return nil, err
		}
		args, op = append(args, vg), "list LVs of "+vg
	}
	return c.lvs(ctx, op, args)
}

func (c *Client) lvs(ctx context.Context, op string, args []string) ([]LV, error) {
	res, err := c.run(ctx, op, args...)
	if err != nil {
		return nil, err
	}
	lvs, err := ParseLVs(res.Stdout)
	return lvs, c.badOutput(op, err)
}

// LV returns vg/lv; a missing one is ErrNotFound.
func (c *Client) LV(ctx context.Context, vg, lv string) (LV, error) {
	if err := validateVGLV(vg, lv); err != nil {
		return LV{}, err
	}
	op := "show LV " + vg + "/" + lv
	lvs, err := c.lvs(ctx, op, []string{"lvs", "--reportformat", "json", "--units", "b", "--nosuffix", "-o", lvFields, vg + "/" + lv})
	if err != nil {
		return LV{}, err
	}
	for _, l := range lvs {
		if l.VG == vg && l.Name == lv {
			return l, nil
		}
	}
	return LV{}, &OpError{Op: op, ExitCode: -1, Err: ErrNotFound, Fix: "check the LV name (lvs VG lists them)"}
}

func (c *Client) badOutput(op string, err error) error {
	if err == nil {
		return nil
	}
	return &OpError{Op: op, ExitCode: 0, Err: err, Fix: "run the command by hand and compare with lvmreport(7); an lvm older than 2.02.158 has no JSON reports"}
}

func validateVGLV(vg, lv string) error {
	if err := ValidateVG("vg", vg); err != nil {
		return err
	}
	if err := ValidateLV("lv", lv); err != nil {
		return err
	}
	return validatePair(vg, lv)
}

func validateSize(field string, n uint64) error {
	if n == 0 || n%512 != 0 {
		return fmt.Errorf("%s %d: must be a positive multiple of 512 bytes (lvm counts sectors): round it up", field, n)
	}
	return nil
}

// createArgs are lvcreate's flags common to every LV type: --yes wipes
// old signatures without asking (we have no terminal); without
// device-mapper nothing can be activated or zeroed.
func (c *Client) createArgs() []string {
	args := []string{"lvcreate", "--yes"}
	if c.o.NoDeviceMapper {
		args = append(args, "-an", "-Zn")
	}
	return args
}

// Create makes a linear LV of size bytes (rounded up to the VG's extent
// size) and returns it.
func (c *Client) Create(ctx context.Context, vg, lv string, size uint64) (LV, error) {
	if err := validateVGLV(vg, lv); err != nil {
		return LV{}, err
	}
	if err := validateSize("size", size); err != nil {
		return LV{}, err
	}
	op := "create " + vg + "/" + lv
	args := append(c.createArgs(), "--type", "linear", "-n", lv, "-L", sizeArg(size), vg)
	if _, err := c.run(ctx, op, args...); err != nil {
		return LV{}, c.explainSpace(ctx, err, vg, size)
	}
	return c.LV(ctx, vg, lv)
}

// CreateThinPool makes a thin pool of size bytes of data (lvm adds its
// metadata LV and a spare) and returns it.
func (c *Client) CreateThinPool(ctx context.Context, vg, pool string, size uint64) (LV, error) {
	if err := validateVGLV(vg, pool); err != nil {
		return LV{}, err
	}
	if err := validateSize("size", size); err != nil {
		return LV{}, err
	}
	op := "create thin pool " + vg + "/" + pool
	args := append(c.createArgs(), "--type", "thin-pool", "-n", pool, "-L", sizeArg(size), vg)
	if _, err := c.run(ctx, op, args...); err != nil {
		return LV{}, c.explainSpace(ctx, err, vg, size)
	}
	return c.LV(ctx, vg, pool)
}

// CreateThin makes a thin LV of virtual size bytes in pool; the pool
// allocates as it is written, so the size may exceed the pool's.
func (c *Client) CreateThin(ctx context.Context, vg, pool, lv string, size uint64) (LV, error) {
	if err := validateVGLV(vg, lv); err != nil {
		return LV{}, err
	}
	if err := ValidateLV("thin pool", pool); err != nil {
		return LV{}, err
	}
	if err := validateSize("size", size); err != nil {
		return LV{}, err
	}
	args := []string{"lvcreate", "--yes"}
	if c.o.NoDeviceMapper {
		args = append(args, "-an") // -Z is a thin pool's setting, refused here
	}
	args = append(args, "--type", "thin", "-n", lv, "-V", sizeArg(size), "--thinpool", pool, vg)
	_, err := c.run(ctx, "create thin "+vg+"/"+lv+" in "+pool, args...)
	if err != nil {
		return LV{}, err
	}
	return c.LV(ctx, vg, lv)
}

// explainSpace adds the VG's free space to an ErrNoSpace failure.
func (c *Client) explainSpace(ctx context.Context, err error, vg string, asked uint64) error {
	var oe *OpError
	if !errors.As(err, &oe) || !errors.Is(oe.Err, ErrNoSpace) {
		return err
	}
	if v, verr := c.VG(ctx, vg); verr == nil {
		oe.Detail = fmt.Sprintf("volume group %q has %s free, %s asked", vg, formatSize(v.Free), formatSize(asked))
	}
	return oe
}

// Resize sets vg/lv's size to size bytes (rounded up to the extent size;
// a thin LV's virtual size). Growing needs nothing. Shrinking destroys
// the data past the new end, so it is refused unless force is set, and
// refused even then when the LV is in use or open.
func (c *Client) Resize(ctx context.Context, vg, lv string, size uint64, force bool) (LV, error) {
	if err := validateVGLV(vg, lv); err != nil {
		return LV{}, err
	}
	if err := validateSize("size", size); err != nil {
		return LV{}, err
	}
	cur, err := c.LV(ctx, vg, lv)
	if err != nil {
		return LV{}, err
	}
	op := "resize " + vg + "/" + lv
	switch {
	case size == cur.Size:
		return cur, nil
	case size > cur.Size:
		if _, err := c.run(ctx, op, "lvextend", "-L", sizeArg(size), vg+"/"+lv); err != nil {
			if cur.Attr.Thin() {
				return LV{}, err
			}
			return LV{}, c.explainSpace(ctx, err, vg, size-cur.Size)
		}
		return c.LV(ctx, vg, lv)
	}
	if !force {
		return LV{}, &OpError{Op: op, ExitCode: -1, Err: ErrShrink,
			Detail: fmt.Sprintf("%s to %s would destroy the last %s", formatSize(cur.Size), formatSize(size), formatSize(cur.Size-size)),
			Fix:    "shrink the filesystem or data on it first, then force the resize"}
	}
	if err := c.refuseInUse(op, cur); err != nil {
		return LV{}, err
	}
	if _, err := c.run(ctx, op, "lvresize", "--yes", "-L", sizeArg(size), vg+"/"+lv); err != nil {
		return LV{}, err
	}
	return c.LV(ctx, vg, lv)
}

// refuseInUse returns ErrInUse when a LUN uses lv or its device is open.
func (c *Client) refuseInUse(op string, lv LV) error {
	if c.o.InUse != nil {
		if user, ok := c.o.InUse(lv.VG, lv.Name); ok {
			return &OpError{Op: op, ExitCode: -1, Err: ErrInUse, Detail: "used by " + user,
				Fix: "remove it from the target (or move the LUN to another LV) first"}
		}
	}
	if lv.Attr.Open {
		return &OpError{Op: op, ExitCode: -1, Err: ErrInUse, Detail: "its device is open (lv_attr " + lv.Attr.Raw + ")",
			Fix: "stop what holds " + lv.Path + " open first (a mount, a backstore; fuser -v " + lv.Path + ")"}
	}
	return nil
}

// Remove deletes vg/lv, unless a LUN uses it, its device is open, or it
// is a thin pool that still holds thin LVs.
func (c *Client) Remove(ctx context.Context, vg, lv string) error {
	cur, err := c.LV(ctx, vg, lv)
	if err != nil {
		return err
	}
	op := "remove " + vg + "/" + lv
	if err := c.refuseInUse(op, cur); err != nil {
		return err
	}
	if cur.Attr.ThinPool() {
		// lvremove --yes would take the pool's thin LVs with it, whoever
		// uses them.
		all, err := c.LVs(ctx, vg)
		if err != nil {
			return err
		}
		var thins []string
		for _, l := range all {
			if l.Pool == lv {
				thins = append(thins, l.Name)
			}
		}
		if len(thins) > 0 {
			return &OpError{Op: op, ExitCode: -1, Err: ErrInUse, Detail: "the thin pool holds thin LVs " + strings.Join(thins, ", "),
				Fix: "remove those first"}
		}
	}
	_, err = c.run(ctx, op, "lvremove", "--yes", vg+"/"+lv)
	return err
}

// Activate makes vg/lv's device node appear (lvchange -ay).
func (c *Client) Activate(ctx context.Context, vg, lv string) error {
	if err := validateVGLV(vg, lv); err != nil {
		return err
	}
	_, err := c.run(ctx, "activate "+vg+"/"+lv, "lvchange", "-ay", vg+"/"+lv)
	return err
}

// Deactivate removes vg/lv's device node (lvchange -an), unless a LUN
// uses it or it is open.
func (c *Client) Deactivate(ctx context.Context, vg, lv string) error {
	cur, err := c.LV(ctx, vg, lv)
	if err != nil {
		return err
	}
	op := "deactivate " + vg + "/" + lv
	if err := c.refuseInUse(op, cur); err != nil {
		return err
	}
	_, err = c.run(ctx, op, "lvchange", "-an", vg+"/"+lv)
	return err
}

// Device is an active LV's block device.
type Device struct {
	Path string // DevDir/VG/LV
	Size uint64 // bytes
}

// ErrNoDevice is returned (wrapped) by Device when the LV has no device
// node: it is inactive, or udev has not made the link.
var ErrNoDevice = errors.New("no device node")

// Device returns vg/lv's device path and size, for a backstore.
func (c *Client) Device(ctx context.Context, vg, lv string) (Device, error) {
	cur, err := c.LV(ctx, vg, lv)
	if err != nil {
		return Device{}, err
	}
	op := "find device of " + vg + "/" + lv
	p := filepath.Join(c.o.DevDir, vg, lv)
	switch {
	case c.o.NoDeviceMapper:
		return Device{}, &OpError{Op: op, ExitCode: -1, Err: ErrNoDevice, Detail: "lvm runs without device-mapper (NoDeviceMapper)",
			Fix: "run on a kernel with device-mapper (dm-mod) and without NoDeviceMapper"}
	case !cur.Attr.Active:
		return Device{}, &OpError{Op: op, ExitCode: -1, Err: ErrNoDevice, Detail: "the LV is not active (lv_attr " + cur.Attr.Raw + ")",
			Fix: "activate it (lvchange -ay " + vg + "/" + lv + ")"}
	}
	if _, err := os.Stat(p); err != nil {
		return Device{}, &OpError{Op: op, ExitCode: -1, Err: ErrNoDevice, Detail: p + " is missing though the LV is active",
			Fix: "check that udev runs (udevadm settle), or run vgmknodes " + vg}
	}
	return Device{Path: p, Size: cur.Size}, nil
}
