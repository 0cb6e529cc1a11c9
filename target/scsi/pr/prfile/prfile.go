// Package prfile stores the persistent reservation state of a logical
// unit in a file, so that APTPL registrations survive a power loss (SPC-4
// 5.12.5). Writes are atomic: a temporary file is written and synced,
// renamed over the old one, and the directory is synced, so a crash
// leaves either the old or the new state, never a mix. The state's own
// checksum (pr.ErrCorrupt) catches what the file system does not.
package prfile

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
)

// Save atomically replaces dir/name with state.
func Save(dir, name string, state []byte) error {
	final := filepath.Join(dir, name)
	tmp, err := os.CreateTemp(dir, "."+name+".tmp-*")
	if err != nil {
		return fmt.Errorf("prfile: create temporary file for %s: %w; check that the directory exists and is writable", final, err)
	}
	defer func() {
		if tmp != nil {
			tmp.Close()
			os.Remove(tmp.Name())
		}
	}()
	if _, err := tmp.Write(state); err != nil {
		return fmt.Errorf("prfile: write %s: %w", tmp.Name(), err)
	}
	if err := tmp.Sync(); err != nil {
		return fmt.Errorf("prfile: sync %s: %w", tmp.Name(), err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("prfile: close %s: %w", tmp.Name(), err)
	}
	if err := os.Rename(tmp.Name(), final); err != nil {
		return fmt.Errorf("prfile: rename %s to %s: %w", tmp.Name(), final, err)
	}
	tmp = nil
	return syncDir(dir)
}

// syncDir makes the rename durable.
func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return fmt.Errorf("prfile: open directory %s: %w", dir, err)
	}
	defer d.Close()
	if err := d.Sync(); err != nil {
		return fmt.Errorf("prfile: sync directory %s: %w", dir, err)
	}
	return nil
}

// Load returns the content of dir/name, or nil and no error when the file
// does not exist (a logical unit that never persisted its state).
// Validate the bytes with pr.State.UnmarshalBinary.
func Load(dir, name string) ([]byte, error) {
	b, err := os.ReadFile(filepath.Join(dir, name))
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("prfile: read %s: %w", filepath.Join(dir, name), err)
	}
	return b, nil
}
