package config

import (
	"bytes"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
)

// Save writes c to path so that a crash at any moment leaves either the
// old or the new file, never a mix: the YAML goes to a temporary file in
// the same directory, which is fsynced and renamed over path, and the
// directory is fsynced. The previous file is kept as path.bak (a hard
// link, so path itself never goes missing). header, if any, is written
// first (comment lines).
func Save(path string, c *Config, header string) error {
	b, err := c.Marshal()
	if err != nil {
		return err
	}
	if header != "" {
		b = append([]byte(header), b...)
	}
	return writeAtomic(path, b, 0o644, true)
}

// writeAtomic writes b to path through a fsynced temporary file and a
// rename, then fsyncs the directory; with backup, the old path is kept as
// path.bak.
func writeAtomic(path string, b []byte, mode os.FileMode, backup bool) error {
	dir := filepath.Dir(path)
	if st, err := os.Stat(path); err == nil {
		mode = st.Mode().Perm() // keep what the operator chose
	}
	tmp, err := os.CreateTemp(dir, "."+filepath.Base(path)+".tmp-*")
	if err != nil {
		return fmt.Errorf("write %s: %w (is the directory writable by the daemon?)", path, err)
	}
	done := false
	defer func() {
		if !done {
			_ = os.Remove(tmp.Name())
		}
	}()
	_, err = tmp.Write(b)
	err = errors.Join(err, tmp.Chmod(mode), tmp.Sync(), tmp.Close())
	if err != nil {
		return fmt.Errorf("write %s: %w", tmp.Name(), err)
	}
	if backup {
		bak := path + ".bak"
		if err := os.Remove(bak); err != nil && !errors.Is(err, os.ErrNotExist) {
			return fmt.Errorf("replace %s: %w", bak, err)
		}
		if err := os.Link(path, bak); err != nil && !errors.Is(err, os.ErrNotExist) {
			return fmt.Errorf("keep the previous config as %s: %w", bak, err)
		}
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		return fmt.Errorf("replace %s: %w", path, err)
	}
	done = true
	d, err := os.Open(dir)
	if err != nil {
		return fmt.Errorf("open %s to sync it: %w", dir, err)
	}
	defer d.Close()
	if err := d.Sync(); err != nil {
		return fmt.Errorf("sync directory %s: %w", dir, err)
	}
	return nil
}

// WriteSecret writes a CHAP secret to path, mode 0600 from the start, with
// the same crash safety as Save (no backup: old secrets are not kept).
func WriteSecret(path string, secret []byte) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return fmt.Errorf("secret directory: %w", err)
	}
	return writeAtomic(path, append(slices.Clone(secret), '\n'), 0o600, false)
}

// SecretBytes is the entropy of a generated CHAP secret: 16 random bytes
// (128 bits, above RFC 7143 section 12.1.3's 96), written as 24 base64
// characters, well inside MinSecretLength..MaxSecretLength and printable
// so that it can be typed into iscsid.conf.
const SecretBytes = 16

// GenerateSecret returns a new CHAP secret from crypto/rand.
func GenerateSecret() []byte {
	b := make([]byte, SecretBytes)
	_, _ = rand.Read(b) // never fails (crypto/rand documents it)
	out := make([]byte, base64.StdEncoding.EncodedLen(len(b)))
	base64.StdEncoding.Encode(out, b)
	return out
}

// Clone returns a deep copy of c.
func (c *Config) Clone() *Config {
	n := *c
	n.Listen = slices.Clone(c.Listen)
	n.Discovery.CHAP = c.Discovery.CHAP.clone()
	n.Targets = make([]Target, len(c.Targets))
	for i, t := range c.Targets {
		t.Initiators = slices.Clone(t.Initiators)
		t.CHAP = t.CHAP.clone()
		t.LUNs = slices.Clone(t.LUNs)
		n.Targets[i] = t
	}
	return &n
}

func (c CHAP) clone() CHAP {
	c.Secret = bytes.Clone(c.Secret)
	c.MutualSecret = bytes.Clone(c.MutualSecret)
	return c
}

// Target returns the target named name (compared as RFC 3722 does, case
// folded) and its index, or nil.
func (c *Config) Target(name string) (*Target, int) {
	for i := range c.Targets {
		if equalNames(c.Targets[i].Name, name) {
			return &c.Targets[i], i
		}
	}
	return nil, -1
}

// LUN returns the LUN with id and its index, or nil.
func (t *Target) LUN(id uint64) (*LUN, int) {
	for i := range t.LUNs {
		if t.LUNs[i].ID == id {
			return &t.LUNs[i], i
		}
	}
	return nil, -1
}

// Fingerprint is a hash of a config file's bytes: the daemon compares it
// before writing, to notice a file edited by hand since it was read.
func Fingerprint(b []byte) [32]byte { return sha256.Sum256(b) }

// ApplyDefaults fills the per-LUN defaults (block size, serial) that Load
// fills, for configs built in code.
func (c *Config) ApplyDefaults() { c.applyDefaults() }
