package mqres

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
)

// ParseStanza reads `dspmqinf -o stanza QM` output (or an mqs.ini/qm.ini
// stanza): indented Key=Value lines under a "Name:" header. Keys of the
// stanza named section are returned; section "" takes every key.
func ParseStanza(out []byte, section string) map[string]string {
	kv := map[string]string{}
	in := section == ""
	sc := bufio.NewScanner(bytes.NewReader(out))
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") || strings.HasPrefix(line, ";") {
			continue
		}
		if strings.HasSuffix(line, ":") && !strings.Contains(line, "=") {
			in = section == "" || strings.TrimSuffix(line, ":") == section
			continue
		}
		if k, v, ok := strings.Cut(line, "="); ok && in {
			kv[strings.TrimSpace(k)] = strings.TrimSpace(v)
		}
	}
	return kv
}

// Paths are where a queue manager keeps its data and its log.
type Paths struct{ Data, Log string }

// QMPaths asks dspmqinf for the data path and reads the log path from the
// queue manager's qm.ini (Log: LogPath=), which lives in the data path.
func (r *Resource) QMPaths(ctx context.Context) (Paths, error) {
	ctx, cancel := context.WithTimeout(ctx, r.cfg.MonitorTimeout)
	defer cancel()
	res, err := r.run.Run(ctx, "dspmqinf", "-o", "stanza", r.cfg.QMgr)
	if err != nil {
		return Paths{}, fmt.Errorf("dspmqinf %s: %w", r.cfg.QMgr, err)
	}
	if res.Code != codeOK {
		return Paths{}, fmt.Errorf("dspmqinf %s exited %d: %s (is the queue manager known on this node? see `mq %s setup`)", r.cfg.QMgr, res.Code, msg(res), r.cfg.QMgr)
	}
	inf := ParseStanza(res.Stdout, "QueueManager")
	p := Paths{Data: inf["DataPath"]}
	if p.Data == "" {
		prefix, dir := inf["Prefix"], inf["Directory"]
		if prefix == "" || dir == "" {
			return Paths{}, fmt.Errorf("dspmqinf %s printed no DataPath nor Prefix/Directory", r.cfg.QMgr)
		}
		p.Data = filepath.Join(prefix, "qmgrs", dir)
	}
	ini, err := os.ReadFile(filepath.Join(p.Data, "qm.ini"))
	if err != nil {
		return p, fmt.Errorf("read qm.ini of %s: %w (is the shared filesystem mounted?)", r.cfg.QMgr, err)
	}
	p.Log = ParseStanza(ini, "Log")["LogPath"]
	if p.Log == "" {
		return p, fmt.Errorf("%s/qm.ini has no Log: LogPath", p.Data)
	}
	return p, nil
}

// Within reports whether path is mount or below it, lexically.
func Within(path, mount string) bool {
	rel, err := filepath.Rel(filepath.Clean(mount), filepath.Clean(path))
	return err == nil && rel != ".." && !strings.HasPrefix(rel, "../")
}

// CheckShared refuses a queue manager whose data or log path is not on the
// mounted shared filesystem: the classic mistake of crtmqm without -md/-ld,
// which puts them on /var/mqm of one node, where the peer cannot see them.
func (r *Resource) CheckShared(ctx context.Context) error {
	mount := r.cfg.SharedMount
	isMount := r.cfg.IsMount
	if isMount == nil {
		isMount = IsMountPoint
	}
	ok, err := isMount(mount)
	if err != nil {
		return fmt.Errorf("check shared filesystem %s: %w", mount, err)
	}
	if !ok {
		return fmt.Errorf("shared filesystem %s is not mounted: mount it (the filesystem resource must start before %s)", mount, r.cfg.QMgr)
	}
	p, err := r.QMPaths(ctx)
	if err != nil {
		return err
	}
	for _, c := range []struct{ what, path, flag, sub string }{
		{"data", p.Data, "-md", "qmgrs"}, {"log", p.Log, "-ld", "log"},
	} {
		if !Within(c.path, mount) || !sameDevice(c.path, mount) {
			return fmt.Errorf("queue manager %s has its %s path %s outside the shared filesystem %s: it was created on local disk; recreate it with crtmqm -md %s -ld %s %s (see `mq %s setup`)",
				r.cfg.QMgr, c.what, c.path, mount, filepath.Join(mount, "qmgrs"), filepath.Join(mount, "log"), r.cfg.QMgr, r.cfg.QMgr)
		}
	}
	return nil
}

// sameDevice guards against a path that is lexically below the mount point
// but reached through a symlink to local disk. Unstatable paths pass here;
// strmqm reports them better.
func sameDevice(path, mount string) bool {
	var a, b syscall.Stat_t
	if syscall.Stat(path, &a) != nil || syscall.Stat(mount, &b) != nil {
		return true
	}
	return a.Dev == b.Dev
}

// IsMountPoint reports whether path is a mount point per /proc/self/mountinfo.
func IsMountPoint(path string) (bool, error) {
	b, err := os.ReadFile("/proc/self/mountinfo")
	if err != nil {
		return false, err
	}
	return MountinfoHas(b, path), nil
}

// MountinfoHas reports whether mountinfo lists path as a mount point (field
// 5, with the kernel's octal escapes for space, tab, newline, backslash).
func MountinfoHas(mountinfo []byte, path string) bool {
	want := filepath.Clean(path)
	for _, line := range strings.Split(string(mountinfo), "\n") {
		f := strings.Fields(line)
		if len(f) < 5 {
			continue
		}
		mp := strings.NewReplacer(`\040`, " ", `\011`, "\t", `\012`, "\n", `\134`, `\`).Replace(f[4])
		if mp == want {
			return true
		}
	}
	return false
}
