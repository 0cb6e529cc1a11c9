package dist

import (
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"time"
)

// Binary is one static binary make dist builds.
type Binary struct {
	Name  string // file name
	Pkg   string // Go package, relative to the repository root
	Cobra bool   // has clidoc's gen-docs: man pages and completions
	Dir   string // install directory
}

// Binaries are every binary a package ships. mq and ocf-ibmmq are plain
// flag/argv programs (heartbeat and OCF call them): no man page or
// completion is generated for them; their usage is in their doc comments.
var Binaries = []Binary{
	{Name: "tandem-target", Pkg: "./target/cmd/tandem-target", Cobra: true, Dir: "/usr/sbin"},
	{Name: "tandem-agent", Pkg: "./ha/cmd/tandem-agent", Cobra: true, Dir: "/usr/sbin"},
	{Name: "tandemctl", Pkg: "./tools/cmd/tandemctl", Cobra: true, Dir: "/usr/bin"},
	{Name: "ocf-ibmmq", Pkg: "./mqres/cmd/ocf-ibmmq", Dir: "/usr/lib/tandem"},
	{Name: "mq", Pkg: "./mqres/cmd/mq", Dir: "/usr/lib/tandem"},
}

// Bundled are the binaries the offline bundle carries outside packages.
var Bundled = []string{"tandem-target", "tandem-agent", "tandemctl"}

// File types (nfpm's).
const (
	typeFile    = ""
	typeConfig  = "config|noreplace" // dpkg conffile, rpm %config(noreplace): upgrades keep the user's
	typeDir     = "dir"
	typeSymlink = "symlink"
)

// File is one entry of a package. Src is relative to the staging
// directory (Stage), or the link target of a symlink.
type File struct {
	Src, Dst string
	Type     string
	Mode     uint32
	Packager string // "deb" or "rpm" only; "" = both
}

// Package is one deb/rpm package.
type Package struct {
	Name        string
	Description string
	Unit        string // systemd unit the maintainer scripts handle; "" = none
	Files       []File
}

// Packages is what ships where. man lists each cobra binary's generated
// man pages (file names under the staging directory's doc/NAME/man/).
func Packages(man map[string][]string) []Package {
	bin := func(name string) File {
		for _, b := range Binaries {
			if b.Name == name {
				return File{Src: "bin/" + name, Dst: b.Dir + "/" + name, Mode: 0o755}
			}
		}
		panic("dist: no binary " + name)
	}
	docs := func(name string) []File {
		var fs []File
		for _, p := range man[name] {
			fs = append(fs, File{Src: "doc/" + name + "/man/" + p + ".gz", Dst: "/usr/share/man/man1/" + p + ".gz", Mode: 0o644})
		}
		c := "doc/" + name + "/completion/" + name
		return append(fs,
			File{Src: c + ".bash", Dst: "/usr/share/bash-completion/completions/" + name, Mode: 0o644},
			File{Src: c + ".zsh", Dst: "/usr/share/zsh/vendor-completions/_" + name, Mode: 0o644, Packager: "deb"},
			File{Src: c + ".zsh", Dst: "/usr/share/zsh/site-functions/_" + name, Mode: 0o644, Packager: "rpm"},
			File{Src: c + ".fish", Dst: "/usr/share/fish/vendor_completions.d/" + name + ".fish", Mode: 0o644},
		)
	}
	unit := func(name string) File {
		return File{Src: "systemd/" + name + ".service", Dst: "/usr/lib/systemd/system/" + name + ".service", Mode: 0o644}
	}
	target := Package{Name: "tandem-target", Unit: "tandem-target.service",
		Description: "tandem userspace iSCSI target with SCSI persistent reservations",
		Files: append([]File{bin("tandem-target"), unit("tandem-target"),
			{Src: "config/target.yaml", Dst: "/etc/tandem/target.yaml", Type: typeConfig, Mode: 0o644},
			{Dst: "/var/lib/tandem", Type: typeDir, Mode: 0o700},
		}, docs("tandem-target")...)}
	agent := Package{Name: "tandem-agent", Unit: "tandem-agent.service",
		Description: "tandem node agent: heartbeats, failover, fencing and the IBM MQ resource",
		Files: append([]File{bin("tandem-agent"), unit("tandem-agent"),
			{Src: "config/agent.yaml", Dst: "/etc/tandem/agent.yaml", Type: typeConfig, Mode: 0o644},
			bin("ocf-ibmmq"),
			{Src: "ocf/ibmmq", Dst: "/usr/lib/ocf/resource.d/tandem/ibmmq", Mode: 0o755},
			bin("mq"),
			// heartbeat's resource.d, for users who keep heartbeat a while.
			{Src: "/usr/lib/tandem/mq", Dst: "/etc/ha.d/resource.d/mq", Type: typeSymlink},
		}, docs("tandem-agent")...)}
	ctl := Package{Name: "tandemctl", Description: "tandem operator command line",
		Files: append([]File{bin("tandemctl")}, docs("tandemctl")...)}
	return []Package{target, agent, ctl}
}

var describeRE = regexp.MustCompile(`^v?(\d+\.\d+\.\d+)(?:-(\d+)-g([0-9a-f]+))?(-dirty)?$`)
var hashRE = regexp.MustCompile(`^([0-9a-f]{4,40})(-dirty)?$`)

// PackageVersion turns `git describe --always --dirty` into a version dpkg
// and rpm both order correctly (digits first, no '-'): v1.2.3 → 1.2.3,
// v1.2.3-4-gabc → 1.2.3+4.gabc, and without a tag, abc → 0.0.0+git
// YYYYMMDDhhmmss.abc from the commit time, so newer commits sort later.
func PackageVersion(describe string, commitTime time.Time) (string, error) {
	if m := describeRE.FindStringSubmatch(describe); m != nil {
		v := m[1]
		if m[2] != "" {
			v += "+" + m[2] + ".g" + m[3]
		}
		if m[4] != "" {
			v += map[bool]string{true: ".dirty", false: "+dirty"}[strings.Contains(v, "+")]
		}
		return v, nil
	}
	if m := hashRE.FindStringSubmatch(describe); m != nil {
		v := "0.0.0+git" + commitTime.UTC().Format("20060102150405") + "." + m[1]
		if m[2] != "" {
			v += ".dirty"
		}
		return v, nil
	}
	return "", fmt.Errorf("version %q: not a git describe output (vX.Y.Z[-N-gHASH][-dirty] or HASH[-dirty]): tag the commit vX.Y.Z or pass --version", describe)
}

// Epoch parses SOURCE_DATE_EPOCH.
func Epoch(s string) (time.Time, error) {
	n, err := strconv.ParseInt(strings.TrimSpace(s), 10, 64)
	if err != nil || n < 0 {
		return time.Time{}, fmt.Errorf("SOURCE_DATE_EPOCH %q: want seconds since 1970 (git log -1 --format=%%ct)", s)
	}
	return time.Unix(n, 0).UTC(), nil
}
