package lvmtest

import (
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"testing"
)

var (
	buildOnce sync.Once
	buildDir  string
	buildBin  string
	buildErr  error
	buildOut  []byte
)

// Binary builds the fake lvm binary (internal/fakelvm) once per test
// binary and returns its path; Run removes it. Its behaviour is set
// through the environment: see the command's doc.
func Binary(t testing.TB) string {
	t.Helper()
	buildOnce.Do(func() {
		dir, err := os.MkdirTemp("", "fakelvm-")
		if err != nil {
			buildErr = err
			return
		}
		buildDir, buildBin = dir, filepath.Join(dir, "lvm")
		buildOut, buildErr = exec.Command("go", "build", "-o", buildBin,
			"github.com/tandem-ha/tandem/lvm/internal/fakelvm").CombinedOutput()
	})
	if buildErr != nil {
		t.Fatalf("build fake lvm: %v\n%s", buildErr, buildOut)
	}
	return buildBin
}

// Run runs the tests and removes the built fake; call it from TestMain:
//
//	func TestMain(m *testing.M) { os.Exit(lvmtest.Run(m)) }
func Run(m *testing.M) int {
	code := m.Run()
	if buildDir != "" {
		os.RemoveAll(buildDir)
	}
	return code
}
