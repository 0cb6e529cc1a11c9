package vmcmd

import (
	"context"
	"errors"
	"flag"
	"net/netip"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestRegisterTakesTheCommandsDefaults(t *testing.T) {
	var f Flags
	fs := flag.NewFlagSet("x", flag.ContinueOnError)
	f.Register(fs, netip.MustParsePrefix("10.213.9.0/24"), 5*time.Minute)
	require.NoError(t, fs.Parse([]string{"-accel", "kvm", "-keep"}))
	assert.Equal(t, Flags{TargetBin: "bin/tandem-target", Subnet: "10.213.9.0/24", Accel: "kvm", Keep: true, Timeout: 5 * time.Minute}, f)
}

func TestSetup(t *testing.T) {
	bin := filepath.Join(t.TempDir(), "tandem-target")
	require.NoError(t, os.WriteFile(bin, nil, 0o755))
	ok := Flags{TargetBin: bin, CacheDir: t.TempDir(), Subnet: "10.213.9.0/24"}
	for _, tc := range []struct {
		desc  string
		edit  func(*Flags)
		wantE string
	}{
		{desc: "valid", edit: func(*Flags) {}},
		{desc: "bad subnet", edit: func(f *Flags) { f.Subnet = "10.213.9.0" }, wantE: "-subnet"},
		{desc: "missing target", edit: func(f *Flags) { f.TargetBin = bin + ".missing" }, wantE: "run make build"},
	} {
		t.Run(tc.desc, func(t *testing.T) {
			f := ok
			tc.edit(&f)
			e, err := f.Setup(context.Background())
			if tc.wantE != "" {
				require.Error(t, err)
				assert.Contains(t, err.Error(), tc.wantE)
				return
			}
			require.NoError(t, err)
			assert.Equal(t, bin, e.TargetBin)
			assert.Equal(t, netip.MustParsePrefix("10.213.9.0/24"), e.Subnet)
			assert.Equal(t, ok.CacheDir, e.CacheDir)
			assert.NotNil(t, e.Log)
		})
	}
}

func TestRunDirKeptOnFailureOrKeep(t *testing.T) {
	t.Setenv("TMPDIR", t.TempDir())
	for _, tc := range []struct {
		desc     string
		keep     bool
		err      error
		wantKept bool
	}{
		{desc: "success", wantKept: false},
		{desc: "failure", err: errors.New("boom"), wantKept: true},
		{desc: "success with -keep", keep: true, wantKept: true},
	} {
		t.Run(tc.desc, func(t *testing.T) {
			dir, done, err := Flags{Keep: tc.keep}.RunDir("tdmtest")
			require.NoError(t, err)
			assert.DirExists(t, dir)
			done(tc.err)
			if tc.wantKept {
				assert.DirExists(t, dir)
			} else {
				assert.NoDirExists(t, dir)
			}
		})
	}
}

func TestTargetLogPath(t *testing.T) {
	assert.Equal(t, "/run/x/target.log", Target{Dir: "/run/x"}.LogPath())
}
