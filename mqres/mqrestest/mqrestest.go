// Package mqrestest gives tests the MQ stand-in, a test double of IBM MQ's
// control commands (mqres/internal/mqstub over mqres/internal/stub): built
// once per test binary, never shipped by make build.
package mqrestest

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"testing"
)

var (
	buildOnce sync.Once
	buildDir  string
	buildErr  error
)

// Bin returns the directory holding mqstub and the MQ commands it answers
// to (crtmqm, strmqm, endmqm, dspmq, dspmqinf, addmqinf), built and
// installed once per test binary (Run removes it). The directory is
// world-readable: ocf-tester runs the agent as nobody. Each test gives the
// stand-in its own world through MQSTUB_PREFIX and MQSTUB_HOST.
func Bin(t testing.TB) string {
	t.Helper()
	buildOnce.Do(func() {
		dir, err := os.MkdirTemp("", "mqrestest-")
		if err != nil {
			buildErr = err
			return
		}
		buildDir = dir
		if err := os.Chmod(dir, 0o755); err != nil {
			buildErr = err
			return
		}
		stub := filepath.Join(dir, "mqstub")
		if out, err := exec.Command("go", "build", "-o", stub, "github.com/tandem-ha/tandem/mqres/internal/mqstub").CombinedOutput(); err != nil {
			buildErr = fmt.Errorf("go build mqstub: %v\n%s", err, out)
			return
		}
		if out, err := exec.Command(stub, "install", dir).CombinedOutput(); err != nil {
			buildErr = fmt.Errorf("mqstub install: %v\n%s", err, out)
		}
	})
	if buildErr != nil {
		t.Fatalf("mqrestest: %v", buildErr)
	}
	return buildDir
}

// Run runs the tests and removes what Bin built; call it from TestMain:
//
//	func TestMain(m *testing.M) { os.Exit(mqrestest.Run(m)) }
func Run(m *testing.M) int {
	code := m.Run()
	if buildDir != "" {
		os.RemoveAll(buildDir)
	}
	return code
}
