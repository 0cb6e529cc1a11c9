package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/tandem-ha/tandem/lvm"
	"github.com/tandem-ha/tandem/lvm/lvmtest"
	"github.com/tandem-ha/tandem/target/admin"
	"github.com/tandem-ha/tandem/target/config"
	"github.com/tandem-ha/tandem/target/daemon"
	"github.com/tandem-ha/tandem/target/iscsi"
)

// startTarget runs a daemon (the real Manager and admin API over a unix
// socket) on a config file, with lvm2 replaced by fake.
func startTarget(t *testing.T, fake *lvmtest.Fake) (sock, cfgPath string) {
	t.Helper()
	dir := t.TempDir()
	sock = filepath.Join(dir, "a.sock")
	cfgPath = filepath.Join(dir, "target.yaml")
	require.NoError(t, os.WriteFile(cfgPath, []byte("listen: [\"127.0.0.1:3260\"]\nstate_dir: state\nadmin_socket: a.sock\n"), 0o644))
	cfg, err := config.Load(cfgPath)
	require.NoError(t, err)
	m := daemon.New(iscsi.NewServer(iscsi.Config{}), daemon.Options{ConfigPath: cfgPath,
		LVM: lvm.New(lvm.Options{Runner: fake, DevDir: fake.DevDir})})
	require.NoError(t, m.Start(context.Background(), cfg))
	l, err := admin.Listen(sock)
	require.NoError(t, err)
	srv := &http.Server{Handler: daemon.NewAPIHandler(m, nil)}
	go func() { _ = srv.Serve(l) }()
	t.Cleanup(func() { _ = srv.Close(); _ = m.Close() })
	lvmRunner, lvmDevDir = fake, fake.DevDir
	t.Cleanup(func() { lvmRunner, lvmDevDir = nil, "" })
	return sock, cfgPath
}

func run(t *testing.T, args ...string) (string, error) {
	t.Helper()
	root := newRoot()
	var out bytes.Buffer
	root.SetOut(&out)
	root.SetErr(&out)
	root.SetArgs(args)
	err := root.Execute()
	return out.String(), err
}

func TestProvisionIsIdempotent(t *testing.T) {
	fake := lvmtest.New(lvmtest.VG{Name: "vg0", Size: 1 << 30})
	fake.DevDir = t.TempDir()
	sock, cfgPath := startTarget(t, fake)
	// The fake's device node is an empty file: make the LV first and give
	// its node the LV's size, as a kernel would.
	out, err := run(t, "--target-socket", sock, "volume", "create", "vg0/mq", "64MiB")
	require.NoError(t, err, out)
	require.NoError(t, os.Truncate(filepath.Join(fake.DevDir, "vg0", "mq"), 64<<20))

	args := []string{"--target-socket", sock, "--json", "provision", "--volume", "vg0/mq", "--size", "64MiB",
		"--target", "iqn.2026-11.io.tandem:mq", "--initiator", "iqn.2026-11.io.tandem:mqmaster",
		"--initiator", "iqn.2026-11.io.tandem:mqslave", "--chap-user", "mq"}
	out, err = run(t, args...)
	require.NoError(t, err, out)
	var r result
	require.NoError(t, json.Unmarshal([]byte(out), &r))
	assert.True(t, r.Changed)
	assert.Len(t, r.Secret, 24, "the generated secret is shown once")
	cfg, err := config.Load(cfgPath)
	require.NoError(t, err)
	require.Len(t, cfg.Targets, 1)
	assert.Equal(t, "vg0/mq", cfg.Targets[0].LUNs[0].LV)
	assert.Len(t, cfg.Targets[0].Initiators, 2)
	assert.Equal(t, []byte(r.Secret), cfg.Targets[0].CHAP.Secret)
	before, err := os.ReadFile(cfgPath)
	require.NoError(t, err)

	out, err = run(t, args...)
	require.NoError(t, err, out)
	r = result{}
	require.NoError(t, json.Unmarshal([]byte(out), &r))
	assert.False(t, r.Changed, out)
	assert.Contains(t, r.Message, "nothing to change")
	assert.Empty(t, r.Secret, "a second run does not rotate the secret")
	after, err := os.ReadFile(cfgPath)
	require.NoError(t, err)
	assert.Equal(t, before, after, "a second run changes nothing")

	// The LV a LUN serves cannot be removed.
	_, err = run(t, "--target-socket", sock, "volume", "remove", "vg0/mq")
	require.ErrorIs(t, err, lvm.ErrInUse)
	assert.ErrorContains(t, err, "lun 0 of iqn.2026-11.io.tandem:mq")

	// volume resize grows the LV and the LUN takes the size.
	require.NoError(t, os.Truncate(filepath.Join(fake.DevDir, "vg0", "mq"), 128<<20))
	out, err = run(t, "--target-socket", sock, "volume", "resize", "vg0/mq", "+64MiB")
	require.NoError(t, err, out)
	assert.Contains(t, out, "now serves the new size")
	out, err = run(t, "--target-socket", sock, "--json", "lun", "list", "iqn.2026-11.io.tandem:mq")
	require.NoError(t, err, out)
	var luns []admin.LUN
	require.NoError(t, json.Unmarshal([]byte(out), &luns))
	assert.Equal(t, int64(128<<20), luns[0].Size)
}

func TestProvisionThinLUN(t *testing.T) {
	fake := lvmtest.New(lvmtest.VG{Name: "vg0", Size: 1 << 30,
		LVs: []*lvmtest.LV{{Name: "pool", Type: "thin-pool", Size: 512 << 20, Active: true}}})
	fake.DevDir = t.TempDir()
	sock, cfgPath := startTarget(t, fake)
	out, err := run(t, "--target-socket", sock, "volume", "create", "vg0/thin", "64MiB", "--thin-pool", "pool")
	require.NoError(t, err, out)
	require.NoError(t, os.Truncate(filepath.Join(fake.DevDir, "vg0", "thin"), 64<<20))
	out, err = run(t, "--target-socket", sock, "provision", "--volume", "vg0/thin", "--size", "64MiB", "--thin-pool", "pool",
		"--target", "iqn.2026-11.io.tandem:mq", "--lun", "0")
	require.NoError(t, err, out)
	out, err = run(t, "--target-socket", sock, "volume", "create", "vg0/lin", "64MiB")
	require.NoError(t, err, out)
	require.NoError(t, os.Truncate(filepath.Join(fake.DevDir, "vg0", "lin"), 64<<20))
	out, err = run(t, "--target-socket", sock, "provision", "--volume", "vg0/lin", "--size", "64MiB",
		"--target", "iqn.2026-11.io.tandem:mq", "--lun", "1")
	require.NoError(t, err, out)

	cfg, err := config.Load(cfgPath)
	require.NoError(t, err)
	require.Len(t, cfg.Targets, 1)
	require.Len(t, cfg.Targets[0].LUNs, 2)
	assert.True(t, cfg.Targets[0].LUNs[0].Thin, "a LUN on a thin LV passes UNMAP on to the pool")
	assert.False(t, cfg.Targets[0].LUNs[1].Thin, "a linear LV's LUN stays thick")
}

func TestStorageCommands(t *testing.T) {
	fake := lvmtest.New(lvmtest.VG{Name: "vg0", Size: 1 << 30})
	fake.DevDir = t.TempDir()
	sock, _ := startTarget(t, fake)
	dir := t.TempDir()
	const iqn = "iqn.2026-11.io.tandem:disk"
	steps := [][]string{
		{"target", "create", iqn},
		{"lun", "add", iqn, "0", "--path", filepath.Join(dir, "l0"), "--size", "1MiB"},
		{"lun", "resize", iqn, "0", "2MiB"},
		{"acl", "add", iqn, "iqn.2026-11.io.tandem:n1"},
		{"acl", "remove", iqn, "iqn.2026-11.io.tandem:n1"},
		{"chap", "set", iqn, "--user", "u", "--mutual-user", "t", "--secret-file", filepath.Join(dir, "s")},
		{"chap", "rotate", iqn},
		{"chap", "set", "--discovery", "--user", "d"},
		{"lun", "remove", iqn, "0"},
		{"target", "remove", iqn},
	}
	for _, s := range steps {
		out, err := run(t, append([]string{"--target-socket", sock}, s...)...)
		require.NoError(t, err, "%v: %s", s, out)
	}
	st, err := os.Stat(filepath.Join(dir, "s"))
	require.NoError(t, err)
	assert.Equal(t, os.FileMode(0o600), st.Mode().Perm())

	// A refusal carries the daemon's message naming the field.
	_, err = run(t, "--target-socket", sock, "target", "create", "disk1")
	require.Error(t, err)
	assert.ErrorContains(t, err, "targets[0].name")
	var ae interface{ Is(error) bool }
	require.True(t, errors.As(err, &ae))
	assert.True(t, errors.Is(err, admin.ErrInvalid))
}

func TestNodeConfig(t *testing.T) {
	out, err := run(t, "node-config", "--portal", "10.0.0.1:3260", "--target", "iqn.2026-11.io.tandem:mq", "--chap-user", "mq")
	require.NoError(t, err, out)
	assert.Contains(t, out, "type: iscsi")
	assert.Contains(t, out, "type: fence")
	assert.Contains(t, out, "iscsiadm -m node -T iqn.2026-11.io.tandem:mq -p 10.0.0.1:3260 --login")
	assert.NotContains(t, out, "-v secret", "no secret on a command line")
}
