package filesystem

import (
	"bufio"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
)

// Holders lists the processes under procRoot (normally /proc) that use a path
// at or below dir: their cwd, root or executable, an open file descriptor, or
// a mapped file. Like fuser -m, minus the device check: dir is the mount
// point, so everything under it is on the mount. Processes in another mount
// namespace see other paths and are missed; pid 1 and skip are never listed.
func Holders(procRoot, dir string, skip int) []int {
	ents, err := os.ReadDir(procRoot)
	if err != nil {
		return nil
	}
	var pids []int
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil || pid <= 1 || pid == skip {
			continue
		}
		if holds(filepath.Join(procRoot, e.Name()), dir) {
			pids = append(pids, pid)
		}
	}
	sort.Ints(pids)
	return pids
}

func under(p, dir string) bool {
	p = strings.TrimSuffix(p, " (deleted)")
	return p == dir || strings.HasPrefix(p, dir+"/")
}

func holds(pdir, dir string) bool {
	for _, l := range []string{"cwd", "root", "exe"} {
		if t, err := os.Readlink(filepath.Join(pdir, l)); err == nil && under(t, dir) {
			return true
		}
	}
	if fds, err := os.ReadDir(filepath.Join(pdir, "fd")); err == nil {
		for _, fd := range fds {
			if t, err := os.Readlink(filepath.Join(pdir, "fd", fd.Name())); err == nil && under(t, dir) {
				return true
			}
		}
	}
	f, err := os.Open(filepath.Join(pdir, "maps"))
	if err != nil {
		return false
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if p, ok := mapsPath(sc.Text()); ok && under(p, dir) {
			return true
		}
	}
	return false
}

// mapsPath returns the path column of a /proc/PID/maps line:
//
//	7f1c2a000000-7f1c2a021000 r-xp 00000000 08:01 131 /usr/lib/libc.so.6
func mapsPath(line string) (string, bool) {
	rest := line
	for i := 0; i < 5; i++ {
		rest = strings.TrimLeft(rest, " ")
		j := strings.IndexByte(rest, ' ')
		if j < 0 {
			return "", false
		}
		rest = rest[j:]
	}
	rest = strings.TrimLeft(rest, " ")
	if !strings.HasPrefix(rest, "/") {
		return "", false
	}
	return rest, true
}
