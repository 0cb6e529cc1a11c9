package vm

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"time"
)

// Image is a bootable guest: a kernel and an initramfs.
type Image struct {
	Kernel        string // vmlinuz path
	Initrd        string // gzipped newc cpio path
	KernelVersion string // e.g. 6.1.0-56-amd64
	// Key identifies the initramfs inputs; equal keys, equal images.
	Key string
	// Reused is true when the initramfs came from the cache.
	Reused bool
}

// GoBinary is a Go main package built statically (CGO_ENABLED=0) into the
// guest's /bin/Name.
type GoBinary struct {
	Package string // import path, e.g. github.com/tandem-ha/tandem/e2e/cmd/guestsmoke
	Name    string
}

// File is extra content for the guest.
type File struct {
	Path string // absolute guest path
	Data []byte
	Mode os.FileMode
}

// ImageOptions say what goes into an image. The zero value plus CacheDir
// gives the standard iSCSI guest.
type ImageOptions struct {
	// CacheDir keeps the unpacked kernel, built Go binaries and initramfs
	// images; a second build with the same inputs reuses them.
	CacheDir string
	// KernelPackage is the Debian package to take the kernel from; empty =
	// whatever linux-image-amd64 depends on (apt-cache depends).
	KernelPackage string
	// Modules are loaded at boot, with their dependencies; default
	// DefaultModules.
	Modules []string
	// HostBinaries are copied from the host with the libraries ldd lists;
	// default DefaultHostBinaries.
	HostBinaries []string
	// GoBinaries are built from the workspace; vmagent is always added.
	GoBinaries []GoBinary
	// GoDir is where `go build` runs (inside the go.work workspace); empty
	// = the current directory.
	GoDir string
	// Files are extra guest files (after the defaults, so they override).
	Files []File
	// Logger; nil discards.
	Logger *slog.Logger
}

// DefaultModules are what iSCSI over virtio-net, ext4 and the control
// port need. crc32c_generic is listed explicitly: iscsi_tcp asks for
// "crc32c" at login and without udev nothing loads it (login then fails
// with "crc32c loading error"); crc32c-intel does not load under TCG.
var DefaultModules = []string{
	"virtio_pci", "virtio_net", "virtio_console",
	"crc32c_generic", "iscsi_tcp", "sd_mod", "ext4",
}

// DefaultHostBinaries is open-iscsi's userspace and e2fsprogs' mkfs and
// fsck (busybox mke2fs only makes ext2).
var DefaultHostBinaries = []string{
	"/usr/sbin/iscsid", "/usr/sbin/iscsiadm", "/usr/sbin/iscsistart",
	"/sbin/mke2fs", "/sbin/e2fsck",
}

// AgentPackage is the guest agent's import path.
const AgentPackage = "github.com/tandem-ha/tandem/e2e/vm/cmd/vmagent"

// ControlPortName is the virtio-serial port the agent serves.
const ControlPortName = "tandem.ctl"

// imageFormat changes whenever the layout below changes, so old cached
// images are not reused.
const imageFormat = "tandem-vm-image-1"

// entry is one file of the initramfs.
type entry struct {
	path string // guest path, absolute
	src  string // host file to copy, or
	data []byte // content
	link string // symlink target
	mode os.FileMode
	sum  string // content hash, filled by hashEntries
}

// BuildImage builds (or reuses) the guest image.
func BuildImage(ctx context.Context, o ImageOptions) (*Image, error) {
	if o.CacheDir == "" {
		return nil, errors.New("vm: ImageOptions.CacheDir is empty: give a build folder such as build/vm")
	}
	log := o.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	if o.Modules == nil {
		o.Modules = DefaultModules
	}
	if o.HostBinaries == nil {
		o.HostBinaries = DefaultHostBinaries
	}
	cache, err := filepath.Abs(o.CacheDir)
	if err != nil {
		return nil, err
	}
	if err := os.MkdirAll(cache, 0o755); err != nil {
		return nil, fmt.Errorf("vm: create cache dir: %w", err)
	}
	kroot, kver, kpkg, err := kernelTree(ctx, cache, o.KernelPackage, log)
	if err != nil {
		return nil, err
	}
	img := &Image{KernelVersion: kver, Kernel: filepath.Join(kroot, "boot", "vmlinuz-"+kver)}

	var ents []entry
	add := func(e entry) { ents = append(ents, e) }

	// busybox-static and its applets, first so that real tools added
	// later (mke2fs, e2fsck) replace the applets of the same name.
	bb, err := exec.LookPath("busybox")
	if err != nil {
		return nil, errors.New("vm: busybox not found: apt-get install -y busybox-static")
	}
	if out, err := run(ctx, "", "ldd", bb); err == nil && !strings.Contains(out, "not a dynamic") && !strings.Contains(out, "statically") {
		return nil, fmt.Errorf("vm: %s is dynamically linked: apt-get install -y busybox-static", bb)
	}
	add(entry{path: "/bin/busybox", src: bb, mode: 0o755})
	out, err := run(ctx, "", bb, "--list-full")
	if err != nil {
		return nil, fmt.Errorf("vm: busybox --list-full: %w", err)
	}
	for _, l := range BusyboxLinks(out) {
		add(entry{path: "/" + l, link: "/bin/busybox"})
	}

	// Kernel modules in load order, and the list /init loads.
	args := append([]string{"-d", kroot, "-S", kver, "--show-depends", "-a"}, o.Modules...)
	out, err = run(ctx, "", "modprobe", args...)
	if err != nil {
		return nil, fmt.Errorf("vm: resolve kernel modules (is kmod installed?): %w", err)
	}
	var order []string
	for _, m := range ParseShowDepends(out) {
		rel, err := filepath.Rel(kroot, m)
		if err != nil || strings.HasPrefix(rel, "..") {
			return nil, fmt.Errorf("vm: module %s is outside the kernel tree %s", m, kroot)
		}
		add(entry{path: "/" + rel, src: m, mode: 0o644})
		order = append(order, "/"+rel)
	}
	add(entry{path: "/etc/tandem/modules", data: []byte(strings.Join(order, "\n") + "\n"), mode: 0o644})
	for _, f := range []string{"modules.order", "modules.builtin", "modules.builtin.modinfo"} {
		p := filepath.Join(kroot, "lib/modules", kver, f)
		if _, err := os.Stat(p); err == nil {
			add(entry{path: "/lib/modules/" + kver + "/" + f, src: p, mode: 0o644})
		}
	}

	// Host binaries and their libraries.
	libs := map[string]bool{}
	for _, b := range o.HostBinaries {
		if _, err := os.Stat(b); err != nil {
			return nil, fmt.Errorf("vm: host binary %s missing: install open-iscsi and e2fsprogs: %w", b, err)
		}
		add(entry{path: b, src: b, mode: 0o755})
		out, err := run(ctx, "", "ldd", b)
		if err != nil {
			return nil, fmt.Errorf("vm: ldd %s: %w", b, err)
		}
		found, missing := ParseLDD(out)
		if len(missing) > 0 {
			return nil, fmt.Errorf("vm: %s needs libraries ldd cannot find: %s", b, strings.Join(missing, ", "))
		}
		for _, l := range found {
			if !libs[l] {
				libs[l] = true
				add(entry{path: l, src: l, mode: 0o755})
			}
		}
	}
	add(entry{path: "/sbin/mkfs.ext4", link: "/sbin/mke2fs"})
	add(entry{path: "/sbin/fsck.ext4", link: "/sbin/e2fsck"})
	if _, err := os.Stat("/etc/mke2fs.conf"); err == nil {
		add(entry{path: "/etc/mke2fs.conf", src: "/etc/mke2fs.conf", mode: 0o644})
	}

	// Go binaries.
	gos := append([]GoBinary{{Package: AgentPackage, Name: "vmagent"}}, o.GoBinaries...)
	for _, g := range gos {
		dst := filepath.Join(cache, "gobin", g.Name)
		if err := buildGo(ctx, o.GoDir, g.Package, dst); err != nil {
			return nil, err
		}
		add(entry{path: "/bin/" + g.Name, src: dst, mode: 0o755})
	}

	add(entry{path: "/init", data: []byte(initScript), mode: 0o755})
	add(entry{path: "/etc/iscsi/iscsid.conf", data: []byte(iscsidConf), mode: 0o600})
	add(entry{path: "/etc/passwd", data: []byte("root:x:0:0:root:/root:/bin/sh\n"), mode: 0o644})
	add(entry{path: "/etc/group", data: []byte("root:x:0:\n"), mode: 0o644})
	for _, f := range o.Files {
		add(entry{path: f.Path, data: f.Data, mode: f.Mode})
	}

	ents = dedupe(ents)
	key, err := hashEntries(ents, imageFormat+"\x00"+kpkg)
	if err != nil {
		return nil, err
	}
	img.Key = key
	img.Initrd = filepath.Join(cache, "initrd-"+key[:16]+".img")
	if _, err := os.Stat(img.Initrd); err == nil {
		img.Reused = true
		now := time.Now()
		_ = os.Chtimes(img.Initrd, now, now) // recently used: pruned last
		log.Info("reusing guest image", "initrd", img.Initrd)
		return img, nil
	}
	if err := writeInitrd(ctx, cache, kver, ents, img.Initrd); err != nil {
		return nil, err
	}
	pruneImages(cache, keepImages)
	log.Info("built guest image", "initrd", img.Initrd, "kernel", kver)
	return img, nil
}

// keepImages is how many initramfs images the cache keeps: a few, since
// different programs (the lab's own test, the smoke run) build different
// images and should not evict each other.
const keepImages = 4

// pruneImages removes all but the keep most recently used images.
func pruneImages(cache string, keep int) {
	paths, _ := filepath.Glob(filepath.Join(cache, "initrd-*.img"))
	type img struct {
		path string
		mod  time.Time
	}
	var imgs []img
	for _, p := range paths {
		if st, err := os.Stat(p); err == nil {
			imgs = append(imgs, img{p, st.ModTime()})
		}
	}
	sort.Slice(imgs, func(a, b int) bool { return imgs[a].mod.After(imgs[b].mod) })
	for i := keep; i < len(imgs); i++ {
		_ = os.Remove(imgs[i].path)
	}
}

// dedupe keeps the last entry of each path (later ones override).
func dedupe(ents []entry) []entry {
	last := map[string]int{}
	for i, e := range ents {
		last[e.path] = i
	}
	var out []entry
	for i, e := range ents {
		if last[e.path] == i {
			out = append(out, e)
		}
	}
	return out
}

// hashEntries fills each entry's sum and returns the key over all of them,
// in path order, so the key depends on the content only.
func hashEntries(ents []entry, salt string) (string, error) {
	for i := range ents {
		e := &ents[i]
		h := sha256.New()
		switch {
		case e.link != "":
			io.WriteString(h, "link:"+e.link)
		case e.src != "":
			f, err := os.Open(e.src)
			if err != nil {
				return "", fmt.Errorf("vm: read %s: %w", e.src, err)
			}
			_, err = io.Copy(h, f)
			f.Close()
			if err != nil {
				return "", fmt.Errorf("vm: read %s: %w", e.src, err)
			}
		default:
			h.Write(e.data)
		}
		e.sum = hex.EncodeToString(h.Sum(nil))
	}
	idx := make([]int, len(ents))
	for i := range idx {
		idx[i] = i
	}
	sort.Slice(idx, func(a, b int) bool { return ents[idx[a]].path < ents[idx[b]].path })
	h := sha256.New()
	io.WriteString(h, salt+"\n")
	for _, i := range idx {
		fmt.Fprintf(h, "%s %o %s\n", ents[i].path, ents[i].mode, ents[i].sum)
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}

// writeInitrd stages the entries in a folder, runs depmod on it and packs
// it with cpio and gzip into dst (atomically, through a temporary name).
func writeInitrd(ctx context.Context, cache, kver string, ents []entry, dst string) error {
	stage, err := os.MkdirTemp(cache, "stage-")
	if err != nil {
		return fmt.Errorf("vm: staging dir: %w", err)
	}
	defer os.RemoveAll(stage)
	for _, d := range []string{"proc", "sys", "dev", "tmp", "run/lock", "var/lock", "var/lib/iscsi", "etc/iscsi/nodes",
		"etc/iscsi/send_targets", "etc/iscsi/ifaces", "mnt", "root", "usr/bin", "usr/sbin", "bin", "sbin"} {
		if err := os.MkdirAll(filepath.Join(stage, d), 0o755); err != nil {
			return fmt.Errorf("vm: staging dir: %w", err)
		}
	}
	for _, e := range ents {
		p := filepath.Join(stage, e.path)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			return fmt.Errorf("vm: staging %s: %w", e.path, err)
		}
		switch {
		case e.link != "":
			err = os.Symlink(e.link, p)
		case e.src != "":
			err = copyFile(e.src, p, e.mode)
		default:
			err = os.WriteFile(p, e.data, e.mode)
		}
		if err != nil {
			return fmt.Errorf("vm: staging %s: %w", e.path, err)
		}
	}
	if _, err := run(ctx, "", "depmod", "-b", stage, kver); err != nil {
		return fmt.Errorf("vm: depmod for the guest: %w", err)
	}
	tmp := fmt.Sprintf("%s.tmp-%d", dst, os.Getpid())
	out, err := os.Create(tmp)
	if err != nil {
		return fmt.Errorf("vm: create %s: %w", tmp, err)
	}
	defer os.Remove(tmp)
	// find | cpio -o -H newc | gzip: the kernel unpacks newc archives.
	cmd := exec.CommandContext(ctx, "/bin/sh", "-c", "find . -print0 | LC_ALL=C sort -z | cpio --null -o -H newc --quiet -R 0:0 | gzip -1")
	cmd.Dir = stage
	cmd.Stdout = out
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Run(); err != nil {
		out.Close()
		return fmt.Errorf("vm: pack initramfs (are cpio and gzip installed?): %w: %s", err, strings.TrimSpace(stderr.String()))
	}
	if err := out.Close(); err != nil {
		return fmt.Errorf("vm: write initramfs: %w", err)
	}
	return os.Rename(tmp, dst)
}

func copyFile(src, dst string, mode os.FileMode) error {
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	out, err := os.OpenFile(dst, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, mode)
	if err != nil {
		return err
	}
	if _, err := io.Copy(out, in); err != nil {
		out.Close()
		return err
	}
	return out.Close()
}

// kernelTree returns the unpacked kernel package (downloading it with
// apt-get download and unpacking it with dpkg-deb on first use), its
// version and package name.
func kernelTree(ctx context.Context, cache, pkg string, log *slog.Logger) (root, ver, name string, err error) {
	if pkg == "" {
		out, err := run(ctx, "", "apt-cache", "depends", "linux-image-amd64")
		if err != nil {
			return "", "", "", fmt.Errorf("vm: find the guest kernel package (run apt-get update): %w", err)
		}
		if pkg = ParseAptDepends(out, "linux-image-"); pkg == "" {
			return "", "", "", fmt.Errorf("vm: apt-cache depends linux-image-amd64 names no linux-image package:\n%s", out)
		}
	}
	dir := filepath.Join(cache, "kernel", pkg)
	root = filepath.Join(dir, "root")
	done := filepath.Join(dir, ".done")
	if _, err := os.Stat(done); err != nil {
		log.Info("downloading guest kernel", "package", pkg)
		_ = os.RemoveAll(dir)
		if err := os.MkdirAll(dir, 0o755); err != nil {
			return "", "", "", fmt.Errorf("vm: kernel dir: %w", err)
		}
		if _, err := run(ctx, dir, "apt-get", "download", pkg); err != nil {
			return "", "", "", fmt.Errorf("vm: download %s (run apt-get update): %w", pkg, err)
		}
		debs, _ := filepath.Glob(filepath.Join(dir, "*.deb"))
		if len(debs) != 1 {
			return "", "", "", fmt.Errorf("vm: expected one .deb in %s after apt-get download, found %d", dir, len(debs))
		}
		if _, err := run(ctx, "", "dpkg-deb", "-x", debs[0], root); err != nil {
			return "", "", "", fmt.Errorf("vm: unpack %s: %w", debs[0], err)
		}
		_ = os.Remove(debs[0])
		if err := os.WriteFile(done, nil, 0o644); err != nil {
			return "", "", "", err
		}
	}
	vers, _ := filepath.Glob(filepath.Join(root, "lib/modules/*"))
	if len(vers) != 1 {
		return "", "", "", fmt.Errorf("vm: expected one kernel version under %s/lib/modules, found %d: delete %s", root, len(vers), dir)
	}
	ver = filepath.Base(vers[0])
	if _, err := os.Stat(filepath.Join(root, "lib/modules", ver, "modules.dep")); err != nil {
		if _, err := run(ctx, "", "depmod", "-b", root, ver); err != nil {
			return "", "", "", fmt.Errorf("vm: depmod for the guest kernel: %w", err)
		}
	}
	return root, ver, pkg, nil
}

// ParseAptDepends returns the first dependency starting with prefix in
// `apt-cache depends` output ("  Depends: linux-image-6.1.0-56-amd64").
func ParseAptDepends(out, prefix string) string {
	for _, line := range strings.Split(out, "\n") {
		k, v, ok := strings.Cut(strings.TrimSpace(line), ":")
		v = strings.TrimSpace(v)
		if ok && strings.TrimPrefix(k, "|") == "Depends" && strings.HasPrefix(v, prefix) && !strings.ContainsAny(v, " <>") {
			return v
		}
	}
	return ""
}

func buildGo(ctx context.Context, dir, pkg, dst string) error {
	if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
		return err
	}
	// Build to a private name and rename: two runs may share the cache.
	tmp := fmt.Sprintf("%s.tmp-%d", dst, os.Getpid())
	defer os.Remove(tmp)
	cmd := exec.CommandContext(ctx, "go", "build", "-trimpath", "-o", tmp, pkg)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0", "GOOS=linux", "GOARCH=amd64")
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("vm: go build %s for the guest: %w\n%s", pkg, err, out)
	}
	return os.Rename(tmp, dst)
}

// run runs a host command and returns its stdout; the error carries
// stderr.
func run(ctx context.Context, dir, name string, args ...string) (string, error) {
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Dir = dir
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		return stdout.String(), fmt.Errorf("%s %s: %w: %s", name, strings.Join(args, " "), err, strings.TrimSpace(stderr.String()))
	}
	return stdout.String(), nil
}

// DefaultCacheDir is build/vm next to the go.work file of the workspace
// the current directory is in.
func DefaultCacheDir(ctx context.Context) (string, error) {
	out, err := run(ctx, "", "go", "env", "GOWORK")
	if err != nil {
		return "", fmt.Errorf("vm: find the workspace: %w", err)
	}
	w := strings.TrimSpace(out)
	if w == "" || w == "off" {
		return "", errors.New("vm: not inside the go.work workspace: run from the repository or set ImageOptions.CacheDir")
	}
	return filepath.Join(filepath.Dir(w), "build", "vm"), nil
}
