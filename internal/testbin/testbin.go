// Package testbin builds the programs that tests exec (fake iscsiadm, fake
// lvm, the MQ stand-in, tandem-target) once per test binary, each in its own
// temporary folder that Run removes. The xtest packages of the modules
// (iscsiadmtest, lvmtest, mqrestest, targettest) reach it; tests call those.
package testbin

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"testing"
)

type build struct {
	once sync.Once
	bin  string
	err  error
}

var (
	mu     sync.Mutex
	builds = map[string]*build{}
	dirs   []string // what Run removes
)

// Build returns the path of the main package importPath, built with `go
// build` as a program called name, once per test binary and import path
// (Run removes it). The folder holding it is world-readable: some tests
// run the program as another user (ocf-tester runs the agent as nobody).
// A failed build fails t with go's output.
func Build(t testing.TB, importPath, name string) string {
	t.Helper()
	mu.Lock()
	b, ok := builds[importPath]
	if !ok {
		b = &build{}
		builds[importPath] = b
	}
	mu.Unlock()
	b.once.Do(func() { b.bin, b.err = compile(importPath, name) })
	if b.err != nil {
		t.Fatalf("testbin: %v", b.err)
	}
	return b.bin
}

func compile(importPath, name string) (string, error) {
	dir, err := os.MkdirTemp("", name+"-")
	if err != nil {
		return "", fmt.Errorf("build %s: %w (set TMPDIR to a writable folder)", name, err)
	}
	mu.Lock()
	dirs = append(dirs, dir)
	mu.Unlock()
	if err := os.Chmod(dir, 0o755); err != nil {
		return "", fmt.Errorf("build %s: %w", name, err)
	}
	bin := filepath.Join(dir, name)
	out, err := exec.Command("go", "build", "-o", bin, importPath).CombinedOutput()
	if err != nil {
		return "", fmt.Errorf("go build %s: %w\n%s(run the tests with go on PATH, inside the tandem workspace)", importPath, err, out)
	}
	return bin, nil
}

// Run runs the tests and removes every program Build built; the xtest
// packages' Run calls it from TestMain:
//
//	func TestMain(m *testing.M) { os.Exit(lvmtest.Run(m)) }
func Run(m *testing.M) int {
	code := m.Run()
	removeAll()
	return code
}

func removeAll() {
	mu.Lock()
	defer mu.Unlock()
	for _, d := range dirs {
		os.RemoveAll(d)
	}
	dirs = nil
	builds = map[string]*build{}
}
