package lvmtest

import (
	"testing"

	"github.com/tandem-ha/tandem/internal/testbin"
)

// Binary builds the fake lvm binary (internal/fakelvm) once per test
// binary and returns its path; Run removes it. Its behaviour is set
// through the environment: see the command's doc.
func Binary(t testing.TB) string {
	t.Helper()
	return testbin.Build(t, "github.com/tandem-ha/tandem/lvm/internal/fakelvm", "lvm")
}

// Run runs the tests and removes the built fake; call it from TestMain:
//
//	func TestMain(m *testing.M) { os.Exit(lvmtest.Run(m)) }
func Run(m *testing.M) int { return testbin.Run(m) }
