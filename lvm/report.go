package lvm

import (
	"encoding/json"
	"fmt"
	"strconv"
)

// PV is a physical volume (a row of pvs).
type PV struct {
	Name string // device path, /dev/sdb
	VG   string // "" when in no VG
	Size uint64 // bytes usable for extents
	Free uint64 // bytes not allocated
	Attr string // pv_attr, e.g. "a--"
}

// VG is a volume group (a row of vgs).
type VG struct {
	Name       string
	Size       uint64 // bytes
	Free       uint64 // bytes
	ExtentSize uint64 // bytes; LV sizes are rounded up to a multiple
	PVCount    int
	LVCount    int
	Attr       string // vg_attr, e.g. "wz--n-"
}

// LV is a logical volume (a row of lvs).
type LV struct {
	Name string
	VG   string
	Size uint64 // bytes; the virtual size for a thin LV
	Pool string // the thin pool of a thin LV, else ""
	Path string // /dev/VG/LV as lvm reports it
	Attr Attr
}

// Attr is lv_attr decoded (lvs(8), "The lv_attr bits are").
type Attr struct {
	Raw string // the ten characters, e.g. "-wi-ao----"
	// Type is bit 1: '-' plain, 'V' thin volume, 't' thin pool, 'T' thin
	// pool data, 'e' pool metadata or spare, 'o' origin, 's' snapshot...
	Type byte
	// Active is bit 5 'a'; ActiveUnknown is 'X' (lvm could not ask the
	// kernel: no device-mapper).
	Active, ActiveUnknown bool
	// Open is bit 6 'o': something (a mount, the target) holds the device
	// open; OpenUnknown is 'X'.
	Open, OpenUnknown bool
	// Partial is bit 9 'p': a PV under it is missing.
	Partial bool
}

// Thin reports whether the LV is a thin volume.
func (a Attr) Thin() bool { return a.Type == 'V' }

// ThinPool reports whether the LV is a thin pool.
func (a Attr) ThinPool() bool { return a.Type == 't' }

// ParseAttr decodes lv_attr. Shorter strings (older lvm) decode as far as
// they go.
func ParseAttr(s string) Attr {
	a := Attr{Raw: s}
	at := func(i int) byte {
		if i < len(s) {
			return s[i]
		}
		return '-'
	}
	a.Type = at(0)
	a.Active, a.ActiveUnknown = at(4) == 'a', at(4) == 'X'
	a.Open, a.OpenUnknown = at(5) == 'o', at(5) == 'X'
	a.Partial = at(8) == 'p'
	return a
}

// Fields asked of each report, in the order of the structs above.
var (
	pvFields = "pv_name,vg_name,pv_size,pv_free,pv_attr"
	vgFields = "vg_name,vg_size,vg_free,vg_extent_size,pv_count,lv_count,vg_attr"
	lvFields = "lv_name,vg_name,lv_size,pool_lv,lv_path,lv_attr"
)

// report is lvmreport(7)'s JSON: {"report": [{"pv": [{...}], ...}]}, every
// value a string.
type report struct {
	Report []map[string][]map[string]string `json:"report"`
}

// rows returns the rows of kind ("pv", "vg", "lv") in a JSON report.
func rows(out []byte, kind string) ([]map[string]string, error) {
	var r report
	if err := json.Unmarshal(out, &r); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrBadOutput, err)
	}
	if len(r.Report) == 0 {
		return nil, fmt.Errorf("%w: no \"report\" array", ErrBadOutput)
	}
	var all []map[string]string
	for _, sect := range r.Report {
		rs, ok := sect[kind]
		if !ok {
			return nil, fmt.Errorf("%w: no %q section", ErrBadOutput, kind)
		}
		all = append(all, rs...)
	}
	return all, nil
}

// fieldReader reads typed fields from one row, keeping the first error.
type fieldReader struct {
	row map[string]string
	err error
}

func (f *fieldReader) str(k string) string {
	v, ok := f.row[k]
	if !ok && f.err == nil {
		f.err = fmt.Errorf("%w: field %s missing", ErrBadOutput, k)
	}
	return v
}

func (f *fieldReader) bytes(k string) uint64 {
	s := f.str(k)
	if f.err != nil {
		return 0
	}
	n, err := strconv.ParseUint(s, 10, 64)
	if err != nil {
		f.err = fmt.Errorf("%w: field %s = %q is not a byte count (were --units b --nosuffix given?)", ErrBadOutput, k, s)
	}
	return n
}

func (f *fieldReader) int(k string) int {
	return int(f.bytes(k))
}

// ParsePVs reads a "pvs --reportformat json --units b --nosuffix" report.
func ParsePVs(out []byte) ([]PV, error) {
	rs, err := rows(out, "pv")
	if err != nil {
		return nil, err
	}
	pvs := make([]PV, 0, len(rs))
	for _, r := range rs {
		f := fieldReader{row: r}
		pv := PV{Name: f.str("pv_name"), VG: f.str("vg_name"), Size: f.bytes("pv_size"), Free: f.bytes("pv_free"), Attr: f.str("pv_attr")}
		if f.err != nil {
			return nil, f.err
		}
		pvs = append(pvs, pv)
	}
	return pvs, nil
}

// ParseVGs reads a "vgs --reportformat json --units b --nosuffix" report.
func ParseVGs(out []byte) ([]VG, error) {
	rs, err := rows(out, "vg")
	if err != nil {
		return nil, err
	}
	vgs := make([]VG, 0, len(rs))
	for _, r := range rs {
		f := fieldReader{row: r}
		vg := VG{Name: f.str("vg_name"), Size: f.bytes("vg_size"), Free: f.bytes("vg_free"), ExtentSize: f.bytes("vg_extent_size"),
			PVCount: f.int("pv_count"), LVCount: f.int("lv_count"), Attr: f.str("vg_attr")}
		if f.err != nil {
			return nil, f.err
		}
		vgs = append(vgs, vg)
	}
	return vgs, nil
}

// ParseLVs reads an "lvs --reportformat json --units b --nosuffix" report.
func ParseLVs(out []byte) ([]LV, error) {
	rs, err := rows(out, "lv")
	if err != nil {
		return nil, err
	}
	lvs := make([]LV, 0, len(rs))
	for _, r := range rs {
		f := fieldReader{row: r}
		lv := LV{Name: f.str("lv_name"), VG: f.str("vg_name"), Size: f.bytes("lv_size"), Pool: f.str("pool_lv"),
			Path: f.str("lv_path"), Attr: ParseAttr(f.str("lv_attr"))}
		if f.err != nil {
			return nil, f.err
		}
		lvs = append(lvs, lv)
	}
	return lvs, nil
}

// formatSize renders n bytes for people: "10 GiB", "1.2 GiB", "512 B".
func formatSize(n uint64) string {
	units := []string{"B", "KiB", "MiB", "GiB", "TiB", "PiB", "EiB"}
	v, i := float64(n), 0
	for v >= 1024 && i < len(units)-1 {
		v /= 1024
		i++
	}
	s := strconv.FormatFloat(v, 'f', 1, 64)
	if len(s) > 2 && s[len(s)-2:] == ".0" {
		s = s[:len(s)-2]
	}
	return s + " " + units[i]
}
