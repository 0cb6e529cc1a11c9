// Package version is what every tandem binary says about itself: the
// version and commit `make dist` stamps in with the linker, and the Go
// toolchain that built it.
//
//	go build -ldflags "-X github.com/tandem-ha/tandem/internal/version.Version=v1.2.0 \
//	  -X github.com/tandem-ha/tandem/internal/version.Commit=<full hash>"
//
// An unstamped build (go build, go run, tests) falls back to the VCS
// revision Go records itself, and says "devel".
package version

import (
	"runtime"
	"runtime/debug"
	"strings"
)

// Stamped by the linker (-X); see the package doc.
var (
	// Version is `git describe --always --dirty` at build time.
	Version = ""
	// Commit is the full commit hash (`git rev-parse HEAD`).
	Commit = ""
)

// Info is one binary's version, as --version prints it.
type Info struct {
	Version string
	Commit  string
	Go      string // toolchain and platform: "go1.26.8 linux/amd64"
}

// Get returns this binary's Info.
func Get() Info {
	bi, _ := debug.ReadBuildInfo()
	return get(Version, Commit, bi)
}

func get(ver, commit string, bi *debug.BuildInfo) Info {
	in := Info{Version: ver, Commit: commit, Go: runtime.Version() + " " + runtime.GOOS + "/" + runtime.GOARCH}
	if bi != nil && in.Commit == "" {
		var modified bool
		for _, s := range bi.Settings {
			switch s.Key {
			case "vcs.revision":
				in.Commit = s.Value
			case "vcs.modified":
				modified = s.Value == "true"
			}
		}
		if in.Commit != "" && modified {
			in.Commit += "-dirty"
		}
	}
	if in.Version == "" {
		in.Version = "devel"
	}
	if in.Commit == "" {
		in.Commit = "unknown (built without VCS information: use make dist)"
	}
	return in
}

// String is the three lines --version prints after the program's name:
// version, commit and Go.
func (in Info) String() string {
	var b strings.Builder
	b.WriteString(in.Version + "\n")
	b.WriteString("commit " + in.Commit + "\n")
	b.WriteString("go " + in.Go + "\n")
	return b.String()
}
