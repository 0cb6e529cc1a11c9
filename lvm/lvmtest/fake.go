// Package lvmtest is an lvm2 in memory for tests of code that provisions
// LVs (lvm, the target's LUN provisioning) on a machine without volume
// groups. Fake implements lvm.Runner: it understands the commands and
// flags package lvm sends, keeps VGs and LVs, prints lvmreport(7) JSON,
// and fails with lvm2 2.03's messages and exit codes (5 for a failed
// command, 3 for a bad command line): a name taken, a VG too small, an LV
// not found, an open LV, a thin pool without device-mapper. It can also
// hang a command until its deadline, like an lvm stuck on a lock, or
// print garbage instead of a report.
package lvmtest

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"

	"github.com/tandem-ha/tandem/lvm"
)

// DefaultExtentSize is lvm's default extent size, 4 MiB.
const DefaultExtentSize = 4 << 20

// VG is a volume group of the fake.
type VG struct {
	Name       string
	Size       uint64 // bytes, rounded down to extents
	ExtentSize uint64 // 0 means DefaultExtentSize
	LVs        []*LV
}

// LV is a logical volume of the fake.
type LV struct {
	Name string
	// Type is "linear", "thin-pool" or "thin".
	Type string
	// Size is the LV's size in bytes (a thin LV's virtual size).
	Size uint64
	Pool string
	// Active and Open are lv_attr bits 5 and 6.
	Active, Open bool
}

// Fake is an lvm2 in memory. Its fields may be set before use and read
// after; use Do to change them while another goroutine runs commands.
type Fake struct {
	mu  sync.Mutex
	VGs []*VG
	// Hang lists commands ("lvs", "lvcreate"...) that block until their
	// ctx ends.
	Hang map[string]bool
	// Stdout replaces what a command prints (garbage reports).
	Stdout map[string]string
	// DevDir, when set, gets DevDir/VG/LV files for active LVs, as udev
	// makes them.
	DevDir string
	// Calls records every argv.
	Calls [][]string
}

// New returns a Fake with vgs (each with DefaultExtentSize when unset).
func New(vgs ...VG) *Fake {
	f := &Fake{Hang: map[string]bool{}, Stdout: map[string]string{}}
	for _, v := range vgs {
		v := v
		if v.ExtentSize == 0 {
			v.ExtentSize = DefaultExtentSize
		}
		v.Size -= v.Size % v.ExtentSize
		f.VGs = append(f.VGs, &v)
	}
	return f
}

// Do runs fn with the fake locked.
func (f *Fake) Do(fn func(*Fake)) {
	f.mu.Lock()
	defer f.mu.Unlock()
	fn(f)
}

// LV returns vg/lv, nil when missing. Change it only while no command
// runs (or inside Do, with f.Find).
func (f *Fake) LV(vg, lv string) *LV {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.Find(vg, lv)
}

// Find is LV for use inside Do.
func (f *Fake) Find(vg, lv string) *LV {
	if v := f.vg(vg); v != nil {
		return v.lv(lv)
	}
	return nil
}

// Commands returns the command (argv[1]) of each call, in order.
func (f *Fake) Commands() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []string
	for _, c := range f.Calls {
		if len(c) > 1 {
			out = append(out, c[1])
		}
	}
	return out
}

func (f *Fake) vg(name string) *VG {
	for _, v := range f.VGs {
		if v.Name == name {
			return v
		}
	}
	return nil
}

func (v *VG) lv(name string) *LV {
	for _, l := range v.LVs {
		if l.Name == name {
			return l
		}
	}
	return nil
}

// allocated is what the VG's LVs take (thin LVs take from their pool).
func (v *VG) allocated() uint64 {
	var n uint64
	for _, l := range v.LVs {
		if l.Type != "thin" {
			n += l.Size
		}
	}
	return n
}

func (v *VG) free() uint64 { return v.Size - v.allocated() }

func (v *VG) extents(n uint64) uint64 { return (n + v.ExtentSize - 1) / v.ExtentSize }

// call is one parsed command line.
type call struct {
	cmd                      string
	noDM, yes                bool
	activate                 string // "y", "n" or ""
	typ, name, size, virtual string
	pool                     string
	fields                   []string
	pos                      []string
}

func parse(argv []string) (call, error) {
	c := call{cmd: argv[1]}
	a := argv[2:]
	for i := 0; i < len(a); i++ {
		next := func() string {
			if i+1 < len(a) {
				i++
				return a[i]
			}
			return ""
		}
		switch a[i] {
		case "--driverloaded":
			c.noDM = next() == "n"
		case "--config", "--units":
			next()
		case "--reportformat":
			if next() != "json" {
				return c, fmt.Errorf("fake supports only json reports")
			}
		case "--nosuffix", "-Zn":
		case "--yes", "-y":
			c.yes = true
		case "-an", "-ay":
			c.activate = a[i][2:]
		case "-o":
			c.fields = strings.Split(next(), ",")
		case "--type":
			c.typ = next()
		case "-n":
			c.name = next()
		case "-L":
			c.size = next()
		case "-V":
			c.virtual = next()
		case "--thinpool":
			c.pool = next()
		default:
			if strings.HasPrefix(a[i], "-") {
				return c, fmt.Errorf("%s: unrecognized option '%s'", c.cmd, a[i])
			}
			c.pos = append(c.pos, a[i])
		}
	}
	return c, nil
}

// bytesArg reads "<n>b" as lvm does, refusing sizes that are not whole
// sectors.
func bytesArg(s string) (uint64, error) {
	n, err := strconv.ParseUint(strings.TrimSuffix(s, "b"), 10, 64)
	if err != nil || !strings.HasSuffix(s, "b") {
		return 0, fmt.Errorf("Invalid argument for --size: %s", s)
	}
	if n%512 != 0 {
		return 0, fmt.Errorf("Size is not a multiple of 512. Try using %d or %d.", n/512*512, (n/512+1)*512)
	}
	return n, nil
}

// Run implements lvm.Runner.
func (f *Fake) Run(ctx context.Context, argv []string) (lvm.Result, error) {
	f.mu.Lock()
	f.Calls = append(f.Calls, append([]string(nil), argv...))
	hang := len(argv) > 1 && f.Hang[argv[1]]
	f.mu.Unlock()
	if hang {
		<-ctx.Done()
		return lvm.Result{ExitCode: -1}, ctx.Err()
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if len(argv) < 2 {
		return fail(3, "No command given.")
	}
	c, err := parse(argv)
	if err != nil {
		return fail(3, err.Error()+"\n  Error during parsing of command line.")
	}
	var stdout string
	var res lvm.Result
	switch c.cmd {
	case "pvs", "vgs", "lvs":
		stdout, res = f.report(c)
	case "lvcreate":
		res = f.create(c)
	case "lvextend", "lvresize":
		res = f.resize(c)
	case "lvremove":
		res = f.remove(c)
	case "lvchange":
		res = f.change(c)
	default:
		return fail(3, fmt.Sprintf("No such command '%s'.  Try 'help'.", c.cmd))
	}
	if s, ok := f.Stdout[c.cmd]; ok {
		stdout = s
	}
	res.Stdout = []byte(stdout)
	if c.noDM {
		res.Stderr = append([]byte("  WARNING: Activation disabled. No device-mapper interaction will be attempted.\n"), res.Stderr...)
	}
	return res, nil
}

func fail(code int, msg string) (lvm.Result, error) {
	return lvm.Result{ExitCode: code, Stderr: []byte("  " + msg + "\n")}, nil
}

func failed(msg string) lvm.Result {
	r, _ := fail(5, msg)
	return r
}

// target resolves "vg/lv".
func (f *Fake) target(c call) (*VG, *LV, lvm.Result, bool) {
	if len(c.pos) != 1 {
		r, _ := fail(3, "Please specify a logical volume path.")
		return nil, nil, r, false
	}
	vgName, lvName, _ := strings.Cut(c.pos[0], "/")
	v := f.vg(vgName)
	if v == nil {
		return nil, nil, failed(fmt.Sprintf("Volume group \"%s\" not found\n  Cannot process volume group %s", vgName, vgName)), false
	}
	l := v.lv(lvName)
	if l == nil {
		return nil, nil, failed(fmt.Sprintf("Failed to find logical volume \"%s\"", c.pos[0])), false
	}
	return v, l, lvm.Result{}, true
}

func (f *Fake) create(c call) lvm.Result {
	if len(c.pos) != 1 {
		r, _ := fail(3, "Please provide a volume group name")
		return r
	}
	v := f.vg(c.pos[0])
	if v == nil {
		return failed(fmt.Sprintf("Volume group \"%s\" not found\n  Cannot process volume group %s", c.pos[0], c.pos[0]))
	}
	if v.lv(c.name) != nil {
		return failed(fmt.Sprintf("Logical Volume \"%s\" already exists in volume group \"%s\"", c.name, v.Name))
	}
	l := &LV{Name: c.name, Type: c.typ, Active: c.activate != "n" && !c.noDM}
	switch c.typ {
	case "linear", "thin-pool":
		n, err := bytesArg(c.size)
		if err != nil {
			r, _ := fail(3, err.Error())
			return r
		}
		if c.typ == "thin-pool" && c.noDM {
			return failed("Can't create thin-pool without using device-mapper kernel driver.")
		}
		if need := v.extents(n); need > v.free()/v.ExtentSize {
			return failed(fmt.Sprintf("Volume group \"%s\" has insufficient free space (%d extents): %d required.", v.Name, v.free()/v.ExtentSize, need))
		}
		l.Size = v.extents(n) * v.ExtentSize
	case "thin":
		n, err := bytesArg(c.virtual)
		if err != nil {
			r, _ := fail(3, err.Error())
			return r
		}
		if p := v.lv(c.pool); p == nil || p.Type != "thin-pool" {
			return failed(fmt.Sprintf("Pool %s not found in Volume group %s.", c.pool, v.Name))
		}
		l.Size, l.Pool = v.extents(n)*v.ExtentSize, c.pool
	default:
		r, _ := fail(3, "Invalid argument for --type: "+c.typ)
		return r
	}
	v.LVs = append(v.LVs, l)
	f.node(v, l)
	return lvm.Result{Stderr: []byte(fmt.Sprintf("  Logical volume \"%s\" created.\n", l.Name))}
}

func (f *Fake) resize(c call) lvm.Result {
	v, l, r, ok := f.target(c)
	if !ok {
		return r
	}
	n, err := bytesArg(c.size)
	if err != nil {
		r, _ := fail(3, err.Error())
		return r
	}
	n = v.extents(n) * v.ExtentSize
	switch {
	case n == l.Size:
		return failed(fmt.Sprintf("New size (%d extents) matches existing size (%d extents).", n/v.ExtentSize, n/v.ExtentSize))
	case n < l.Size && c.cmd == "lvextend":
		return failed(fmt.Sprintf("New size given (%d extents) not larger than existing size (%d extents)", n/v.ExtentSize, l.Size/v.ExtentSize))
	case n < l.Size && !c.yes:
		return failed(fmt.Sprintf("Logical volume %s/%s NOT reduced.", v.Name, l.Name))
	case n > l.Size && l.Type != "thin" && n-l.Size > v.free():
		return failed(fmt.Sprintf("Insufficient free space: %d extents needed, but only %d available", (n-l.Size)/v.ExtentSize, v.free()/v.ExtentSize))
	}
	l.Size = n
	return lvm.Result{Stderr: []byte(fmt.Sprintf("  Logical volume %s/%s successfully resized.\n", v.Name, l.Name))}
}

func (f *Fake) remove(c call) lvm.Result {
	v, l, r, ok := f.target(c)
	if !ok {
		return r
	}
	if l.Open {
		return failed(fmt.Sprintf("Logical volume %s/%s in use.", v.Name, l.Name))
	}
	for _, o := range v.LVs {
		if o.Pool == l.Name {
			return failed(fmt.Sprintf("Removing pool \"%s\" will remove 1 dependent volume(s). Proceed? [y/n]: n\n  Logical volume \"%s\" not removed.", l.Name, l.Name))
		}
	}
	for i, o := range v.LVs {
		if o == l {
			v.LVs = append(v.LVs[:i], v.LVs[i+1:]...)
			break
		}
	}
	l.Active = false
	f.node(v, l)
	return lvm.Result{Stderr: []byte(fmt.Sprintf("  Logical volume \"%s\" successfully removed.\n", l.Name))}
}

func (f *Fake) change(c call) lvm.Result {
	v, l, r, ok := f.target(c)
	if !ok {
		return r
	}
	if c.noDM {
		return lvm.Result{} // lvm2 does nothing and says nothing
	}
	if c.activate == "n" && l.Open {
		return failed(fmt.Sprintf("Logical volume %s/%s in use.", v.Name, l.Name))
	}
	l.Active = c.activate == "y"
	f.node(v, l)
	return lvm.Result{}
}

// node makes or removes DevDir/VG/LV as udev would.
func (f *Fake) node(v *VG, l *LV) {
	if f.DevDir == "" {
		return
	}
	p := filepath.Join(f.DevDir, v.Name, l.Name)
	if l.Active {
		_ = os.MkdirAll(filepath.Dir(p), 0o755)
		_ = os.WriteFile(p, nil, 0o600)
	} else {
		_ = os.Remove(p)
	}
}

// attr renders lv_attr as lvs does.
func attr(l *LV, noDM bool) string {
	b := []byte("-wi-------")
	switch l.Type {
	case "thin-pool":
		b[0], b[6], b[7] = 't', 't', 'z'
	case "thin":
		b[0], b[6], b[7] = 'V', 't', 'z'
	}
	switch {
	case noDM:
		b[4], b[5] = 'X', 'X'
	default:
		if l.Active {
			b[4] = 'a'
		}
		if l.Open {
			b[5] = 'o'
		}
	}
	return string(b)
}

func (f *Fake) report(c call) (string, lvm.Result) {
	var rows []map[string]string
	kind := c.cmd[:2]
	pick := func(all map[string]string) map[string]string {
		r := map[string]string{}
		for _, k := range c.fields {
			r[k] = all[k]
		}
		return r
	}
	var errs []string
	switch kind {
	case "pv":
		for i, v := range f.VGs {
			rows = append(rows, pick(map[string]string{"pv_name": fmt.Sprintf("/dev/fake%d", i), "vg_name": v.Name,
				"pv_size": u(v.Size), "pv_free": u(v.free()), "pv_attr": "a--"}))
		}
	case "vg":
		for _, v := range f.VGs {
			if len(c.pos) > 0 && !contains(c.pos, v.Name) {
				continue
			}
			rows = append(rows, pick(map[string]string{"vg_name": v.Name, "vg_size": u(v.Size), "vg_free": u(v.free()),
				"vg_extent_size": u(v.ExtentSize), "pv_count": "1", "lv_count": strconv.Itoa(len(v.LVs)), "vg_attr": "wz--n-"}))
		}
		for _, p := range c.pos {
			if f.vg(p) == nil {
				errs = append(errs, fmt.Sprintf("Volume group \"%s\" not found\n  Cannot process volume group %s", p, p))
			}
		}
	case "lv":
		for _, p := range c.pos {
			vgName, lvName, isLV := strings.Cut(p, "/")
			switch v := f.vg(vgName); {
			case v == nil:
				errs = append(errs, fmt.Sprintf("Volume group \"%s\" not found\n  Cannot process volume group %s", vgName, vgName))
			case isLV && v.lv(lvName) == nil:
				errs = append(errs, fmt.Sprintf("Failed to find logical volume \"%s\"", p))
			}
		}
		for _, v := range f.VGs {
			for _, l := range v.LVs {
				if len(c.pos) > 0 && !contains(c.pos, v.Name) && !contains(c.pos, v.Name+"/"+l.Name) {
					continue
				}
				rows = append(rows, pick(map[string]string{"lv_name": l.Name, "vg_name": v.Name, "lv_size": u(l.Size),
					"pool_lv": l.Pool, "lv_path": "/dev/" + v.Name + "/" + l.Name, "lv_attr": attr(l, c.noDM)}))
			}
		}
	}
	if rows == nil {
		rows = []map[string]string{}
	}
	out, _ := json.MarshalIndent(map[string]any{"report": []map[string]any{{kind: rows}}}, "  ", "    ")
	if len(errs) > 0 {
		return "  " + string(out) + "\n", failed(strings.Join(errs, "\n  "))
	}
	return "  " + string(out) + "\n", lvm.Result{}
}

func u(n uint64) string { return strconv.FormatUint(n, 10) }

func contains(ss []string, s string) bool {
	for _, x := range ss {
		if x == s {
			return true
		}
	}
	return false
}
