package testbin

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// fatalRecorder stands in for t where Build is expected to fail.
type fatalRecorder struct {
	testing.TB
	msg string
}

func (r *fatalRecorder) Helper() {}

func (r *fatalRecorder) Fatalf(format string, args ...any) { r.msg = fmt.Sprintf(format, args...) }

func TestBuildOncePerPathThenRemoved(t *testing.T) {
	t.Cleanup(removeAll)
	bin := Build(t, "./testdata/hello", "hello")
	assert.Equal(t, "hello", filepath.Base(bin))
	out, err := exec.Command(bin).Output()
	require.NoError(t, err)
	assert.Equal(t, "hello from testbin\n", string(out))

	fi, err := os.Stat(filepath.Dir(bin))
	require.NoError(t, err)
	assert.Equal(t, os.FileMode(0o755), fi.Mode().Perm(), "other users must reach the program")

	require.NoError(t, os.WriteFile(bin+".mark", nil, 0o644))
	assert.Equal(t, bin, Build(t, "./testdata/hello", "hello"), "a second call must reuse the build")
	assert.FileExists(t, bin+".mark", "a second call must not rebuild into a new folder")

	removeAll()
	assert.NoDirExists(t, filepath.Dir(bin))
}

func TestBuildFailureFailsTheTest(t *testing.T) {
	t.Cleanup(removeAll)
	r := &fatalRecorder{TB: t}
	Build(r, "./testdata/broken", "broken")
	assert.Contains(t, r.msg, "go build ./testdata/broken")
	assert.Contains(t, r.msg, "undefinedCall", "go's output must be shown")

	r2 := &fatalRecorder{TB: t}
	Build(r2, "./testdata/broken", "broken")
	assert.Equal(t, r.msg, r2.msg, "the failure is remembered, not rebuilt")
}
