package internal

import (
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// The Makefile's tidy-check (part of make lint) must fail on an untidy
// module and on version skew between modules, and pass on tidy ones. The
// modules here depend only on each other, so tidy needs no network.

const depMod = "module example.com/dep\n\ngo 1.23\n"

const appMain = `package main

import "example.com/dep"

func main() { dep.F() }
`

func appMod(name, depVersion, comment string) string {
	return "module example.com/" + name + "\n\ngo 1.23\n\nrequire example.com/dep " + depVersion + comment +
		"\n\nreplace example.com/dep => ../dep\n"
}

func writeModule(t *testing.T, dir string, files map[string]string) string {
	t.Helper()
	require.NoError(t, os.MkdirAll(dir, 0o755))
	for name, body := range files {
		require.NoError(t, os.WriteFile(filepath.Join(dir, name), []byte(body), 0o644))
	}
	return dir
}

func tidyCheck(t *testing.T, dirs ...string) (string, error) {
	t.Helper()
	root, err := filepath.Abs("..")
	require.NoError(t, err)
	list := ""
	for _, d := range dirs {
		list += d + " "
	}
	cmd := exec.Command("make", "-s", "-C", root, "tidy-check", "TIDY_DIRS="+list)
	cmd.Env = append(os.Environ(), "GOPROXY=off", "GOTOOLCHAIN=local")
	out, err := cmd.CombinedOutput()
	return string(out), err
}

func lab(t *testing.T, app1Mod, app2Mod string) (dep, app1, app2 string) {
	t.Helper()
	tmp := t.TempDir()
	dep = writeModule(t, filepath.Join(tmp, "dep"), map[string]string{"go.mod": depMod, "dep.go": "package dep\n\nfunc F() {}\n"})
	app1 = writeModule(t, filepath.Join(tmp, "app1"), map[string]string{"go.mod": app1Mod, "main.go": appMain})
	app2 = writeModule(t, filepath.Join(tmp, "app2"), map[string]string{"go.mod": app2Mod, "main.go": appMain})
	return dep, app1, app2
}

func TestTidyCheckPassesTidyModules(t *testing.T) {
	dep, app1, app2 := lab(t, appMod("app1", "v0.0.0", ""), appMod("app2", "v0.0.0", ""))
	out, err := tidyCheck(t, dep, app1, app2)
	require.NoError(t, err, out)
}

func TestTidyCheckFailsOnUntidyModule(t *testing.T) {
	// app1 imports dep but marks it indirect, as target/go.mod once did for viper.
	dep, app1, app2 := lab(t, appMod("app1", "v0.0.0", " // indirect"), appMod("app2", "v0.0.0", ""))
	out, err := tidyCheck(t, dep, app1, app2)
	require.Error(t, err)
	assert.Contains(t, out, app1+": go mod tidy would change")
	assert.NotContains(t, out, app2+": go mod tidy would change")
}

func TestTidyCheckFailsOnMissingRequire(t *testing.T) {
	dep, app1, app2 := lab(t, "module example.com/app1\n\ngo 1.23\n", appMod("app2", "v0.0.0", ""))
	out, err := tidyCheck(t, dep, app1, app2)
	require.Error(t, err)
	assert.Contains(t, out, app1+": go mod tidy would change")
}

func TestTidyCheckFailsOnVersionSkew(t *testing.T) {
	dep, app1, app2 := lab(t, appMod("app1", "v0.0.0", ""), appMod("app2", "v0.0.1", ""))
	out, err := tidyCheck(t, dep, app1, app2)
	require.Error(t, err)
	assert.NotContains(t, out, "go mod tidy would change", "both modules are tidy on their own")
	assert.Contains(t, out, "example.com/dep: v0.0.0 v0.0.1")
}
