// Package mqrestest gives tests the MQ stand-in, a test double of IBM MQ's
// control commands (mqres/internal/mqstub over mqres/internal/stub): built
// once per test binary, never shipped by make build.
package mqrestest

import (
	"fmt"
	"os/exec"
	"path/filepath"
	"sync"
	"testing"

	"github.com/tandem-ha/tandem/internal/testbin"
)

var (
	installOnce sync.Once
	installErr  error
)

// Bin returns the directory holding mqstub and the MQ commands it answers
// to (crtmqm, strmqm, endmqm, dspmq, dspmqinf, addmqinf), built and
// installed once per test binary (Run removes it). The directory is
// world-readable: ocf-tester runs the agent as nobody. Each test gives the
// stand-in its own world through MQSTUB_PREFIX and MQSTUB_HOST.
func Bin(t testing.TB) string {
	t.Helper()
	stub := testbin.Build(t, "github.com/tandem-ha/tandem/mqres/internal/mqstub", "mqstub")
	dir := filepath.Dir(stub)
	installOnce.Do(func() {
		if out, err := exec.Command(stub, "install", dir).CombinedOutput(); err != nil {
			installErr = fmt.Errorf("mqstub install %s: %w\n%s", dir, err, out)
		}
	})
	if installErr != nil {
		t.Fatalf("mqrestest: %v", installErr)
	}
	return dir
}

// Run runs the tests and removes what Bin built; call it from TestMain:
//
//	func TestMain(m *testing.M) { os.Exit(mqrestest.Run(m)) }
func Run(m *testing.M) int { return testbin.Run(m) }
