// Package unixsock opens the private unix sockets of tandem's daemons
// (tandem-target's admin socket, tandem-agent's control socket): mode 0600
// from the moment the socket exists, never taking over a socket that a live
// process still serves, and removing one that a dead process left behind.
package unixsock

import (
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"sync"
	"syscall"
	"time"
)

// ErrInUse is returned (wrapped in an *InUseError) when another process
// still accepts connections on the socket.
var ErrInUse = errors.New("socket in use")

// InUseError names the live socket and, where the kernel tells, the process
// that serves it.
type InUseError struct {
	Path string
	PID  int    // 0 when unknown
	Comm string // the process's name from /proc, "" when unknown
}

func (e *InUseError) Error() string {
	who := "another process"
	if e.PID > 0 {
		who = fmt.Sprintf("pid %d", e.PID)
		if e.Comm != "" {
			who += " (" + e.Comm + ")"
		}
	}
	return fmt.Sprintf("socket %s is in use by %s: stop that process or choose another socket path", e.Path, who)
}

func (e *InUseError) Unwrap() error { return ErrInUse }

// probeTimeout bounds the dial that tells a live socket from a stale one;
// a local accept queue answers at once, so this only matters when the
// other process is wedged.
const probeTimeout = time.Second

// umaskMu serialises the umask dance: the umask is process-wide, so two
// concurrent Listens must not restore each other's value.
var umaskMu sync.Mutex

// Listen creates the unix socket at path with mode 0600 and its directory
// (mode 0755) when missing. A socket file that nobody accepts on is stale
// and is removed; a live one is refused with an *InUseError; any other
// kind of file at path is refused and left alone.
func Listen(path string) (*net.UnixListener, error) {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return nil, fmt.Errorf("create the directory of socket %s: %w", path, err)
	}
	if err := removeStale(path); err != nil {
		return nil, err
	}
	l, err := listenPrivate(path)
	if err != nil {
		return nil, fmt.Errorf("listen on socket %s: %w; is another daemon starting with the same socket path?", path, err)
	}
	return l, nil
}

// removeStale clears path for a new socket, or says why it cannot.
func removeStale(path string) error {
	fi, err := os.Lstat(path)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("inspect socket path %s: %w", path, err)
	}
	if fi.Mode()&os.ModeSocket == 0 {
		return fmt.Errorf("socket path %s exists and is not a socket (%s): remove it or choose another socket path", path, fi.Mode().Type())
	}
	c, err := net.DialTimeout("unix", path, probeTimeout)
	if err == nil {
		pid, comm := peer(c)
		_ = c.Close()
		return &InUseError{Path: path, PID: pid, Comm: comm}
	}
	if !errors.Is(err, syscall.ECONNREFUSED) {
		return fmt.Errorf("probe socket %s: %w; remove it if no process serves it", path, err)
	}
	if err := os.Remove(path); err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("remove stale socket %s: %w", path, err)
	}
	return nil
}

// listenPrivate binds with umask 0177 so the socket is born 0600: with a
// chmod after bind another user could connect in between. The umask is
// process-wide, so it is held only around the bind; files other goroutines
// create in that instant also get 0600 at most, never a wider mode.
func listenPrivate(path string) (*net.UnixListener, error) {
	umaskMu.Lock()
	defer umaskMu.Unlock()
	old := syscall.Umask(0o177)
	defer syscall.Umask(old)
	return net.ListenUnix("unix", &net.UnixAddr{Name: path, Net: "unix"})
}
