package backstore

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"

	"golang.org/x/sys/unix"
)

func maybeLock(f *os.File, opts Options) error {
	if !opts.Lock {
		return nil
	}
	typ := int16(unix.F_WRLCK)
	if opts.ReadOnly {
		typ = unix.F_RDLCK // a read-only fd cannot take a write lock
	}
	return lock(f, typ)
}

// lock takes an OFD lock (fcntl F_OFD_SETLK) of type typ over the whole
// of f. An OFD lock belongs to the open file description, not the process:
// two opens in one daemon conflict just as two daemons do, and the lock
// lasts until the last descriptor of it is closed.
func lock(f *os.File, typ int16) error {
	lk := unix.Flock_t{Type: typ, Whence: 0, Start: 0, Len: 0}
	err := unix.FcntlFlock(f.Fd(), unix.F_OFD_SETLK, &lk)
	if errors.Is(err, unix.EAGAIN) || errors.Is(err, unix.EACCES) {
		return fmt.Errorf("%w: %s is held by %s: stop that LUN or daemon first, or serve another file",
			ErrLocked, f.Name(), holder(f))
	}
	if err != nil {
		return fmt.Errorf("backstore: lock %s: %w", f.Name(), err)
	}
	return nil
}

// holder names who holds the lock on f. F_OFD_GETLK reports pid -1 for
// OFD locks, so it looks through /proc for a descriptor of the same file
// whose fdinfo lists a lock, and names that process and its command line
// (for tandem-target, its --config).
func holder(f *os.File) string {
	st, err := f.Stat()
	if err != nil {
		return "another open file description"
	}
	want, ok := st.Sys().(*syscall.Stat_t)
	if !ok {
		return "another open file description"
	}
	procs, _ := filepath.Glob("/proc/[0-9]*/fd")
	for _, fdDir := range procs {
		pidDir := filepath.Dir(fdDir)
		ents, err := os.ReadDir(fdDir)
		if err != nil {
			continue
		}
		for _, e := range ents {
			var got syscall.Stat_t
			if syscall.Stat(filepath.Join(fdDir, e.Name()), &got) != nil || !sameFile(want, &got) {
				continue
			}
			info, err := os.ReadFile(filepath.Join(pidDir, "fdinfo", e.Name()))
			if err != nil || !bytes.Contains(info, []byte("OFDLCK")) {
				continue
			}
			pid, _ := strconv.Atoi(filepath.Base(pidDir))
			if pid == os.Getpid() && e.Name() == strconv.Itoa(int(f.Fd())) {
				continue // our own new descriptor
			}
			cmd, _ := os.ReadFile(filepath.Join(pidDir, "cmdline"))
			who := strings.TrimSpace(strings.ReplaceAll(string(cmd), "\x00", " "))
			if pid == os.Getpid() {
				return fmt.Sprintf("this process (pid %d: %s), for another LUN", pid, who)
			}
			return fmt.Sprintf("pid %d (%s)", pid, who)
		}
	}
	return "another process (not found in /proc: in another pid namespace?)"
}

func sameFile(a, b *syscall.Stat_t) bool {
	if a.Mode&syscall.S_IFMT == syscall.S_IFBLK {
		return b.Mode&syscall.S_IFMT == syscall.S_IFBLK && a.Rdev == b.Rdev
	}
	return a.Dev == b.Dev && a.Ino == b.Ino
}

// dupFile returns a second descriptor of f's open file description, so
// that it shares f's lock.
func dupFile(f *os.File) (*os.File, error) {
	fd, err := unix.FcntlInt(f.Fd(), unix.F_DUPFD_CLOEXEC, 0)
	if err != nil {
		return nil, fmt.Errorf("backstore: dup %s: %w", f.Name(), err)
	}
	return os.NewFile(uintptr(fd), f.Name()), nil
}
