package version

import (
	"runtime"
	"runtime/debug"
	"testing"

	"github.com/stretchr/testify/assert"
)

func TestGet(t *testing.T) {
	vcs := &debug.BuildInfo{Settings: []debug.BuildSetting{
		{Key: "vcs.revision", Value: "abc123"}, {Key: "vcs.modified", Value: "true"}}}
	goLine := runtime.Version() + " " + runtime.GOOS + "/" + runtime.GOARCH
	for _, tc := range []struct {
		desc, ver, commit string
		bi                *debug.BuildInfo
		want              Info
	}{
		{desc: "stamped by make dist", ver: "v1.2.0-3-gabc123", commit: "abc123full", bi: vcs,
			want: Info{Version: "v1.2.0-3-gabc123", Commit: "abc123full", Go: goLine}},
		{desc: "go build in a dirty tree", bi: vcs,
			want: Info{Version: "devel", Commit: "abc123-dirty", Go: goLine}},
		{desc: "no VCS information", bi: &debug.BuildInfo{},
			want: Info{Version: "devel", Commit: "unknown (built without VCS information: use make dist)", Go: goLine}},
		{desc: "no build info", want: Info{Version: "devel", Commit: "unknown (built without VCS information: use make dist)", Go: goLine}},
	} {
		t.Run(tc.desc, func(t *testing.T) {
			assert.Equal(t, tc.want, get(tc.ver, tc.commit, tc.bi))
		})
	}
}

func TestString(t *testing.T) {
	in := Info{Version: "v1", Commit: "c0ffee", Go: "go1.26.8 linux/amd64"}
	assert.Equal(t, "v1\ncommit c0ffee\ngo go1.26.8 linux/amd64\n", in.String())
}
