package resource

import (
	"context"
	"fmt"
	"regexp"
	"sort"
	"strings"
	"sync"
)

// Env carries values that a resource publishes for the resources after it
// in the group: the iscsi resource publishes "<its name>.device" (the
// /dev/sdX it logged in to), and a later resource's params refer to it as
// ${<name>.device}, e.g. a filesystem's `device: ${disk.device}`. The
// publisher Sets at Start and Deletes at Stop; the reader calls Expand at
// Start, since the value exists only once the publisher has run (the group
// starts in order, so it has).
//
// The runtime gives a group one Env through the ctx of every operation
// (WithEnv). Without one, EnvFrom falls back to one Env per process, which
// is right for an agent that runs one group.
type Env struct {
	mu sync.RWMutex
	m  map[string]string
}

// NewEnv returns an empty Env.
func NewEnv() *Env { return &Env{m: map[string]string{}} }

// Set publishes key (by convention "<resource name>.<what>").
func (e *Env) Set(key, value string) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.m[key] = value
}

// Delete withdraws key.
func (e *Env) Delete(key string) {
	e.mu.Lock()
	defer e.mu.Unlock()
	delete(e.m, key)
}

// Get returns key's value.
func (e *Env) Get(key string) (string, bool) {
	e.mu.RLock()
	defer e.mu.RUnlock()
	v, ok := e.m[key]
	return v, ok
}

// Keys lists the published keys, sorted.
func (e *Env) Keys() []string {
	e.mu.RLock()
	defer e.mu.RUnlock()
	ks := make([]string, 0, len(e.m))
	for k := range e.m {
		ks = append(ks, k)
	}
	sort.Strings(ks)
	return ks
}

type envKey struct{}

var processEnv = NewEnv()

// WithEnv returns ctx carrying e for the operations of one group.
func WithEnv(ctx context.Context, e *Env) context.Context {
	return context.WithValue(ctx, envKey{}, e)
}

// EnvFrom returns the Env of ctx, or the process-wide one.
func EnvFrom(ctx context.Context) *Env {
	if e, ok := ctx.Value(envKey{}).(*Env); ok && e != nil {
		return e
	}
	return processEnv
}

var refRE = regexp.MustCompile(`\$\{([A-Za-z0-9_.-]+)\}`)

// References lists the ${key} references in s.
func References(s string) []string {
	var keys []string
	for _, m := range refRE.FindAllStringSubmatch(s, -1) {
		keys = append(keys, m[1])
	}
	return keys
}

// Expand replaces each ${key} in s with its value in EnvFrom(ctx). A key
// nobody published is an error that names it and the usual fix.
func Expand(ctx context.Context, s string) (string, error) {
	if !strings.Contains(s, "${") {
		return s, nil
	}
	env := EnvFrom(ctx)
	var missing string
	out := refRE.ReplaceAllStringFunc(s, func(ref string) string {
		key := ref[2 : len(ref)-1]
		v, ok := env.Get(key)
		if !ok && missing == "" {
			missing = key
		}
		return v
	})
	if missing != "" {
		name, _, _ := strings.Cut(missing, ".")
		return "", fmt.Errorf("${%s} is not set: list resource %q before this one in the group and check that it started (published: %s)",
			missing, name, strings.Join(env.Keys(), ", "))
	}
	return out, nil
}
