package config

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"fmt"
	"maps"
	"slices"
	"strings"
)

// Diff lists what changes from a to b, one line per key, sorted: "+ key:
// value" added, "- key: value" removed, "~ key: old -> new" changed.
// Secrets never appear, only that they changed. The daemon logs it when
// it reloads its config.
func Diff(a, b *Config) []string {
	fa, fb := a.flatten(), b.flatten()
	var out []string
	for _, k := range slices.Sorted(maps.Keys(fa)) {
		va := fa[k]
		vb, ok := fb[k]
		switch {
		case !ok:
			out = append(out, "- "+k+": "+va)
		case va != vb:
			out = append(out, "~ "+k+": "+va+" -> "+vb)
		}
	}
	for _, k := range slices.Sorted(maps.Keys(fb)) {
		if _, ok := fa[k]; !ok {
			out = append(out, "+ "+k+": "+fb[k])
		}
	}
	return out
}

// RestartKeys are the settings a running daemon cannot change: its
// sockets, its state directory and the negotiation limits of sessions.
var RestartKeys = []string{"listen", "state_dir", "admin_socket", "metrics_address", "limits"}

// flatten renders c as key -> value. Targets and LUNs are keyed by name
// and id rather than position, so that reordering is no change.
func (c *Config) flatten() map[string]string {
	m := map[string]string{
		"listen":          strings.Join(c.Listen, ","),
		"state_dir":       c.StateDir,
		"admin_socket":    c.AdminSocket,
		"metrics_address": c.MetricsAddress,
		"limits":          fmt.Sprintf("%+v", c.Limits),
	}
	chap := func(key string, ch CHAP) {
		if !ch.Enabled() {
			return
		}
		m[key] = fmt.Sprintf("user=%s secret=%s mutual_user=%s mutual_secret=%s",
			ch.User, secretTag(ch.SecretFile, ch.Secret), ch.MutualUser, secretTag(ch.MutualSecretFile, ch.MutualSecret))
	}
	chap("discovery.chap", c.Discovery.CHAP)
	for _, t := range c.Targets {
		key := "targets[" + strings.ToLower(t.Name) + "]"
		m[key] = "alias=" + t.Alias
		if len(t.Initiators) > 0 {
			m[key+".initiators"] = strings.Join(t.Initiators, ",")
		}
		chap(key+".chap", t.CHAP)
		for _, l := range t.LUNs {
			m[fmt.Sprintf("%s.luns[%d]", key, l.ID)] = l.describe()
		}
	}
	return m
}

// describe is a LUN's settings on one line.
func (l LUN) describe() string {
	backing := "path=" + l.Path
	if l.LV != "" {
		backing = "lv=" + l.LV
	}
	s := fmt.Sprintf("%s size=%d block_size=%d thin=%t write_cache=%t read_only=%t serial=%s",
		backing, l.Size, l.BlockSize, l.Thin, l.WriteCache, l.ReadOnly, l.Serial)
	if l.Audit != "" {
		s += " audit=" + l.Audit
	}
	if l.Cache != "" {
		s += " cache=" + l.Cache
	}
	if l.Faults {
		s += " faults=true"
	}
	if l.Wait != 0 {
		s += " wait=" + l.Wait.String()
	}
	return s
}

// tagKey keys the secret tags: random per process, so a tag in a log
// tells nothing about the secret beyond "it changed".
var tagKey = func() []byte { k := make([]byte, 32); _, _ = rand.Read(k); return k }()

// secretTag names a secret without revealing it: its file and a short
// keyed hash, so that a rotated secret shows as a change.
func secretTag(file string, secret []byte) string {
	if secret == nil && file == "" {
		return "none"
	}
	h := hmac.New(sha256.New, tagKey)
	h.Write(secret)
	return fmt.Sprintf("%s#%x", file, h.Sum(nil)[:4])
}
