package agent

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
)

// The storage-fenced marker: a node the storage fenced stays Fenced across
// restarts of its agent until tandemctl rejoin. It lives in the state
// directory as one file holding the reason.

const fencedMarker = "fenced"

// readFenced returns the persisted fencing reason of dir, "" when none.
func readFenced(dir string) (string, error) {
	b, err := os.ReadFile(filepath.Join(dir, fencedMarker))
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return "", nil
	case err != nil:
		return "", fmt.Errorf("read the fenced marker: %w (fix the permissions of state_dir %s, or remove the file once the node may rejoin)", err, dir)
	}
	reason := strings.TrimSpace(string(b))
	if reason == "" {
		reason = "storage fenced this node (reason not recorded)"
	}
	return reason, nil
}

// writeFenced persists reason atomically: a temporary file written and
// synced, renamed over the marker, then the directory synced, so a power
// cut leaves the old marker or the new one, never a torn one. An empty
// reason removes the marker (and syncs the directory).
func writeFenced(dir, reason string) error {
	path := filepath.Join(dir, fencedMarker)
	if reason == "" {
		if err := os.Remove(path); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return fmt.Errorf("remove the fenced marker: %w", err)
		}
		return syncDir(dir)
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("create state_dir %s: %w", dir, err)
	}
	f, err := os.CreateTemp(dir, fencedMarker+".*.tmp")
	if err != nil {
		return fmt.Errorf("write the fenced marker: %w", err)
	}
	tmp := f.Name()
	_, err = f.WriteString(reason + "\n")
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp, path)
	}
	if err != nil {
		os.Remove(tmp)
		return fmt.Errorf("write the fenced marker in %s: %w", dir, err)
	}
	return syncDir(dir)
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("sync state_dir %s: %w", dir, err)
	}
	defer d.Close()
	if err := d.Sync(); err != nil {
		return fmt.Errorf("sync state_dir %s: %w", dir, err)
	}
	return nil
}

// persistFenced records the machine's storage fencing (reason, "" when
// not fenced) in the background: the loop, and with it the heartbeat,
// never waits on the disk. Writes happen in the order of the changes; a
// change superseded before its turn is skipped.
func (a *Agent) persistFenced(reason string) {
	if reason == a.marker {
		return
	}
	a.marker = reason
	a.markerSeq++
	seq := a.markerSeq
	a.markerWG.Add(1)
	go func() {
		defer a.markerWG.Done()
		a.markerMu.Lock()
		defer a.markerMu.Unlock()
		if seq <= a.markerDone {
			return
		}
		a.markerDone = seq
		if err := writeFenced(a.cfg.StateDir, reason); err != nil {
			a.log.Error("fenced marker not persisted: a restarted agent would not know it was fenced", "err", err)
		}
	}()
}
