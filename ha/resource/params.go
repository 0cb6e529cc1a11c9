package resource

import (
	"fmt"
	"sort"
	"strconv"
	"strings"
	"time"
)

// Params reads the params of a Spec for a factory. Like netlink's
// AttributeDecoder it keeps the first error, reported by Err, so a factory
// reads every key and checks once. Err also rejects keys nobody read, which
// catches typos such as "adress".
type Params struct {
	spec Spec
	read map[string]bool
	err  error
}

// NewParams starts reading s.Params.
func NewParams(s Spec) *Params {
	return &Params{spec: s, read: map[string]bool{}}
}

func (p *Params) fail(key, problem, fix string) {
	if p.err == nil {
		p.err = p.spec.Err("params."+key, problem, fix)
	}
}

// String returns params[key], or def when the key is absent.
func (p *Params) String(key, def string) string {
	p.read[key] = true
	if v, ok := p.spec.Params[key]; ok {
		return strings.TrimSpace(v)
	}
	return def
}

// Has reports whether key is set (even to "").
func (p *Params) Has(key string) bool {
	p.read[key] = true
	_, ok := p.spec.Params[key]
	return ok
}

// Required returns params[key]; an absent or blank value is an error whose
// fix is example.
func (p *Params) Required(key, example string) string {
	v := p.String(key, "")
	if v == "" {
		p.fail(key, "is missing", "set it, e.g. "+key+": "+example)
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

// Err returns the first error, or an error for a key that was never read.
func (p *Params) Err() error {
	if p.err != nil {
		return p.err
	}
	var unknown []string
	for k := range p.spec.Params {
		if !p.read[k] {
			unknown = append(unknown, k)
		}
	}
	if len(unknown) == 0 {
		return nil
	}
	sort.Strings(unknown)
	known := make([]string, 0, len(p.read))
	for k := range p.read {
		known = append(known, k)
	}
	sort.Strings(known)
	return p.spec.Err("params."+unknown[0], "is not a "+p.spec.Type+" parameter",
		"remove it or fix its spelling (known: "+strings.Join(known, ", ")+")")
}
