package vm

import (
	"strings"
)

// ParseLDD returns the absolute paths of the shared objects in ldd(1)
// output, the dynamic loader included, in order and without duplicates.
// Lines without a path (linux-vdso, "statically linked") are skipped; a
// library ldd could not find ("=> not found") is returned in missing so
// the caller can say which one.
func ParseLDD(out string) (libs, missing []string) {
	seen := map[string]bool{}
	for _, line := range strings.Split(out, "\n") {
		line = strings.TrimSpace(line)
		if line == "" {
			continue
		}
		var path string
		if name, rest, ok := strings.Cut(line, "=>"); ok {
			rest = strings.TrimSpace(rest)
			if strings.HasPrefix(rest, "not found") {
				missing = append(missing, strings.TrimSpace(name))
				continue
			}
			path, _, _ = strings.Cut(rest, " ")
		} else {
			path, _, _ = strings.Cut(line, " ")
		}
		if !strings.HasPrefix(path, "/") || seen[path] {
			continue
		}
		seen[path] = true
		libs = append(libs, path)
	}
	return libs, missing
}

// ParseShowDepends returns the module files, in load order and without
// duplicates, from the output of `modprobe --show-depends` for one or more
// modules ("insmod PATH [options]" lines; "builtin NAME" lines name
// modules compiled into the kernel and need no file).
func ParseShowDepends(out string) []string {
	var mods []string
	seen := map[string]bool{}
	for _, line := range strings.Split(out, "\n") {
		f := strings.Fields(line)
		if len(f) < 2 || f[0] != "insmod" || seen[f[1]] {
			continue
		}
		seen[f[1]] = true
		mods = append(mods, f[1])
	}
	return mods
}

// BusyboxLinks returns the applet paths (relative, e.g. "sbin/modprobe")
// from `busybox --list-full` output.
func BusyboxLinks(out string) []string {
	var links []string
	for _, line := range strings.Split(out, "\n") {
		line = strings.TrimSpace(line)
		// busybox lists itself (bin/busybox): linking it to itself loops.
		if line == "" || strings.HasPrefix(line, "/") || strings.Contains(line, "..") || strings.HasSuffix(line, "/busybox") {
			continue
		}
		links = append(links, line)
	}
	return links
}
