package resource

import (
	"fmt"
	"log/slog"
	"slices"
	"sort"
	"strings"
	"sync"
)

// Factory builds a Resource from a Spec. It must only check the Spec (see
// the package documentation): Validate calls it with a nil logger.
type Factory func(Spec, *slog.Logger) (Resource, error)

type entry struct {
	f      Factory
	params []Param
}

var registry = struct {
	sync.RWMutex
	m map[string]entry
}{m: map[string]entry{}}

// Register makes a resource type available to Build, with its parameter
// table (the only keys its specs may set). Implementations call it from
// init; registering a type twice panics, as it is a programming error.
func Register(typ string, params []Param, f func(Spec, *slog.Logger) (Resource, error)) {
	registry.Lock()
	defer registry.Unlock()
	if _, dup := registry.m[typ]; dup {
		panic("resource: type " + typ + " registered twice")
	}
	registry.m[typ] = entry{f: f, params: slices.Clone(params)}
}

// ParamTable returns the parameter table of typ (nil for an unknown type).
func ParamTable(typ string) []Param {
	registry.RLock()
	defer registry.RUnlock()
	return slices.Clone(registry.m[typ].params)
}

// Types lists the registered resource types, sorted.
func Types() []string {
	registry.RLock()
	defer registry.RUnlock()
	ts := make([]string, 0, len(registry.m))
	for t := range registry.m {
		ts = append(ts, t)
	}
	sort.Strings(ts)
	return ts
}

func lookup(typ string) Factory {
	registry.RLock()
	defer registry.RUnlock()
	return registry.m[typ].f
}

// Build validates s and turns it into a Resource of type s.Type. A nil log
// discards the resource's log lines.
func Build(s Spec, log *slog.Logger) (Resource, error) {
	if err := s.validateCommon(); err != nil {
		return nil, err
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return lookup(s.Type)(s, log.With("resource", s.Name, "type", s.Type))
}

// Validate checks s without touching the host beyond reading files (a
// script must exist): the common fields, then the type's parameters. The
// error names the bad key and the fix.
func (s Spec) Validate() error {
	if err := s.validateCommon(); err != nil {
		return err
	}
	_, err := lookup(s.Type)(s, slog.New(slog.DiscardHandler))
	return err
}

func (s Spec) validateCommon() error {
	if strings.TrimSpace(s.Name) == "" {
		return &SpecError{Type: s.Type, Key: "name", Problem: "is empty", Fix: "give every resource a unique name"}
	}
	if strings.ContainsAny(s.Name, " \t\n/") {
		return s.Err("name", fmt.Sprintf("%q contains a space or slash", s.Name), "use letters, digits, '-', '_' or '.'")
	}
	if s.Type == "" {
		return s.Err("type", "is empty", "set type to one of "+strings.Join(Types(), ", "))
	}
	if lookup(s.Type) == nil {
		return s.Err("type", fmt.Sprintf("%q is not a known resource type", s.Type),
			"set type to one of "+strings.Join(Types(), ", ")+" (a program must import ha/resource/all to register them)")
	}
	for _, d := range []struct {
		key string
		v   int64
	}{
		{"monitor.interval", int64(s.Monitor.Interval)},
		{"monitor.timeout", int64(s.Monitor.Timeout)},
		{"start_timeout", int64(s.StartTimeout)},
		{"stop_timeout", int64(s.StopTimeout)},
		{"max_restarts", int64(s.MaxRestarts)},
	} {
		if d.v < 0 {
			return s.Err(d.key, "is negative", "use 0 for the default or a positive value")
		}
	}
	return s.checkParams()
}

// SpecError is a configuration error in one resource's Spec.
type SpecError struct {
	Name, Type string
	// Key is the offending key, e.g. "params.address" or "max_restarts".
	Key string
	// Problem says what is wrong, Fix how to repair it.
	Problem, Fix string
}

func (e *SpecError) Error() string {
	var b strings.Builder
	b.WriteString("resource")
	if e.Name != "" {
		fmt.Fprintf(&b, " %q", e.Name)
	}
	if e.Type != "" {
		fmt.Fprintf(&b, " (%s)", e.Type)
	}
	fmt.Fprintf(&b, ": %s %s", e.Key, e.Problem)
	if e.Fix != "" {
		b.WriteString("; ")
		b.WriteString(e.Fix)
	}
	return b.String()
}

// Err returns a *SpecError for key of s (e.g. "params.address").
func (s Spec) Err(key, problem, fix string) error {
	return &SpecError{Name: s.Name, Type: s.Type, Key: key, Problem: problem, Fix: fix}
}
