package resource

import (
	"fmt"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"
)

// Param is one row of a resource type's parameter table, the one list of
// the type's keys (as target/scsi/dispatch.go's opcode table): Validate
// refuses any other key with a did-you-mean hint, Params.Required takes
// its example from it, tandem-agent params prints it, and a factory
// reading a key missing from it panics (a programming error).
type Param struct {
	Key string
	// Required: Validate refuses a spec without it; Example shows a value.
	Required bool
	Example  string
	// Doc says what the key does, its units and its default.
	Doc string
}

// Params reads the params of a Spec for a factory. Like netlink's
// AttributeDecoder it keeps the first error, reported by Err, so a factory
// reads every key and checks once.
type Params struct {
	spec  Spec
	table map[string]Param
	err   error
}

// NewParams starts reading s.Params against the table of s.Type.
func NewParams(s Spec) *Params {
	p := &Params{spec: s, table: map[string]Param{}}
	for _, r := range ParamTable(s.Type) {
		p.table[r.Key] = r
	}
	return p
}

func (p *Params) row(key string) Param {
	r, ok := p.table[key]
	if !ok {
		panic("resource: type " + p.spec.Type + " reads param " + key + " missing from its table")
	}
	return r
}

func (p *Params) fail(key, problem, fix string) {
	if p.err == nil {
		p.err = p.spec.Err("params."+key, problem, fix)
	}
}

// String returns params[key], or def when the key is absent.
func (p *Params) String(key, def string) string {
	p.row(key)
	if v, ok := p.spec.Params[key]; ok {
		return strings.TrimSpace(v)
	}
	return def
}

// Has reports whether key is set (even to "").
func (p *Params) Has(key string) bool {
	p.row(key)
	_, ok := p.spec.Params[key]
	return ok
}

// Required returns params[key]; an absent or blank value is an error whose
// fix is the table's example.
func (p *Params) Required(key string) string {
	v := p.String(key, "")
	if v == "" {
		p.fail(key, "is missing", "set it, e.g. "+key+": "+p.row(key).Example)
	}
	return v
}

// Int returns params[key] as a non-negative integer, or def.
func (p *Params) Int(key string, def int) int {
	v := p.String(key, "")
	if v == "" {
		return def
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < 0 {
		p.fail(key, fmt.Sprintf("%q is not a non-negative integer", v), "write a number such as "+strconv.Itoa(def))
		return def
	}
	return n
}

// Duration returns params[key] as a positive time.Duration, or def.
func (p *Params) Duration(key string, def time.Duration) time.Duration {
	v := p.String(key, "")
	if v == "" {
		return def
	}
	d, err := time.ParseDuration(v)
	if err != nil || d <= 0 {
		p.fail(key, fmt.Sprintf("%q is not a positive duration", v), "write it with a unit, e.g. "+def.String())
		return def
	}
	return d
}

// Fail records a problem with key found by the factory itself.
func (p *Params) Fail(key, problem, fix string) { p.fail(key, problem, fix) }

// Err returns the first error. Unknown keys were refused before the
// factory ran (Spec.Validate, Build: checkParams).
func (p *Params) Err() error { return p.err }

// checkParams refuses a key missing from the type's table, naming the
// nearest known key (a missing required key is the factory's Required).
func (s Spec) checkParams() error {
	table := ParamTable(s.Type)
	known := make([]string, 0, len(table))
	for _, r := range table {
		known = append(known, r.Key)
	}
	keys := make([]string, 0, len(s.Params))
	for k := range s.Params {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		if slices.Contains(known, k) {
			continue
		}
		fix := "remove it or fix its spelling"
		if m := nearest(k, known); m != "" {
			fix = "did you mean " + m + "? (" + fix + ")"
		}
		list := strings.Join(known, ", ")
		if list == "" {
			list = "none"
		}
		return s.Err("params."+k, "is not a "+s.Type+" parameter", fix+"; "+s.Type+" takes: "+list)
	}
	return nil
}

// nearest returns the known key closest to k when it is a plausible typo:
// equal without '_' and '-' and case, or within an edit distance of 2
// (a third of the key for short ones).
func nearest(k string, known []string) string {
	norm := func(s string) string { return strings.ToLower(strings.NewReplacer("_", "", "-", "").Replace(s)) }
	best, bestD := "", 3
	for _, c := range known {
		if norm(c) == norm(k) {
			return c
		}
		d := editDistance(k, c)
		if d < bestD && d <= max(1, len(c)/3) {
			best, bestD = c, d
		}
	}
	return best
}

// editDistance is the optimal string alignment distance between a and b
// (Levenshtein's plus the swap of two neighbours, a common typo).
func editDistance(a, b string) int {
	d := make([][]int, len(a)+1)
	for i := range d {
		d[i] = make([]int, len(b)+1)
		d[i][0] = i
	}
	for j := range d[0] {
		d[0][j] = j
	}
	for i := 1; i <= len(a); i++ {
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			d[i][j] = min(d[i-1][j]+1, d[i][j-1]+1, d[i-1][j-1]+cost)
			if i > 1 && j > 1 && a[i-1] == b[j-2] && a[i-2] == b[j-1] {
				d[i][j] = min(d[i][j], d[i-2][j-2]+1)
			}
		}
	}
	return d[len(a)][len(b)]
}
