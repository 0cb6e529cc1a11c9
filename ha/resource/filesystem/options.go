package filesystem

import (
	"strings"

	"golang.org/x/sys/unix"
)

// mountFlags maps mount(8) options to mount(2) flags. A set value adds the
// flag, a clear value (the negated option) removes it.
var mountFlags = map[string]struct {
	set   bool
	flags uintptr
}{
	"ro":          {true, unix.MS_RDONLY},
	"rw":          {false, unix.MS_RDONLY},
	"nosuid":      {true, unix.MS_NOSUID},
	"suid":        {false, unix.MS_NOSUID},
	"nodev":       {true, unix.MS_NODEV},
	"dev":         {false, unix.MS_NODEV},
	"noexec":      {true, unix.MS_NOEXEC},
	"exec":        {false, unix.MS_NOEXEC},
	"sync":        {true, unix.MS_SYNCHRONOUS},
	"async":       {false, unix.MS_SYNCHRONOUS},
	"dirsync":     {true, unix.MS_DIRSYNC},
	"noatime":     {true, unix.MS_NOATIME},
	"atime":       {false, unix.MS_NOATIME},
	"nodiratime":  {true, unix.MS_NODIRATIME},
	"diratime":    {false, unix.MS_NODIRATIME},
	"relatime":    {true, unix.MS_RELATIME},
	"norelatime":  {false, unix.MS_RELATIME},
	"strictatime": {true, unix.MS_STRICTATIME},
	"lazytime":    {true, unix.MS_LAZYTIME},
	"nolazytime":  {false, unix.MS_LAZYTIME},
	"silent":      {true, unix.MS_SILENT},
	"loud":        {false, unix.MS_SILENT},
}

// userspaceOnly are fstab options that mount(8) consumes itself; passing them
// to the kernel fails the mount with EINVAL.
var userspaceOnly = map[string]bool{
	"defaults": true, "auto": true, "noauto": true, "nofail": true, "_netdev": true,
	"user": true, "nouser": true, "users": true, "owner": true, "group": true,
}

// ParseOptions splits a mount(8) option string into mount(2) flags and the
// filesystem-specific data string. It returns the first option that cannot
// be used here (bind, remount, move change what Start means).
func ParseOptions(opts string) (flags uintptr, data string, bad string) {
	var rest []string
	for _, o := range strings.Split(opts, ",") {
		o = strings.TrimSpace(o)
		switch {
		case o == "":
			continue
		case o == "bind" || o == "rbind" || o == "remount" || o == "move":
			return 0, "", o
		case userspaceOnly[o], strings.HasPrefix(o, "x-"), strings.HasPrefix(o, "comment="):
			continue
		}
		if f, ok := mountFlags[o]; ok {
			if f.set {
				flags |= f.flags
			} else {
				flags &^= f.flags
			}
			continue
		}
		rest = append(rest, o)
	}
	return flags, strings.Join(rest, ","), ""
}
