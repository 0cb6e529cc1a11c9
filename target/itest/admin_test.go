package itest

import (
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/tandem-ha/tandem/target/admin"
	"github.com/tandem-ha/tandem/target/admin/adminclient"
	"github.com/tandem-ha/tandem/target/config"
)

const adminIQN = "iqn.2026-11.io.tandem:admin"

// TestAdminChangeSurvivesKill9: what the API answered is in the config
// file, so a SIGKILL right after the answer loses nothing.
func TestAdminChangeSurvivesKill9(t *testing.T) {
	dir := t.TempDir()
	cfg := newConfig(t, dir)
	cfg.Targets = []config.Target{{Name: adminIQN, LUNs: []config.LUN{sparseLUN(t, dir, "lun0", 0, 4<<20)}}}
	d := start(t, dir, cfg)
	c := adminReady(t, cfg.AdminSocket)

	require.NoError(t, c.AddLUN(ctx(t), adminIQN, admin.LUN{ID: 1, Path: filepath.Join(dir, "lun1.img"), Size: 2 << 20}))
	require.NoError(t, c.SetCHAP(ctx(t), adminIQN, admin.CHAP{User: "node", Secret: "0123456789abcdef"}))
	require.NoError(t, c.AddInitiator(ctx(t), adminIQN, "iqn.2026-11.io.tandem:node1"))
	require.NoError(t, c.CreateTarget(ctx(t), admin.TargetSpec{Name: adminIQN + "2"}))
	before, err := c.Targets(ctx(t))
	require.NoError(t, err)
	d.kill() // SIGKILL right after the last answer

	d2 := d.restart(t)
	require.False(t, d2.exited(), "restarted daemon exited; log:\n%s", d2.log())
	adminReady(t, cfg.AdminSocket)
	after, err := c.Targets(ctx(t))
	require.NoError(t, err)
	assert.Equal(t, before, after, "the restarted daemon serves exactly what the API answered")
	require.Len(t, after, 2)
	assert.Len(t, after[0].LUNs, 2)
	assert.Equal(t, "node", after[0].CHAPUser)
	assert.Equal(t, []string{"iqn.2026-11.io.tandem:node1"}, after[0].Initiators)
}

// TestSecondDaemonOnTheSameConfigIsRefused: the LUN lock stops it before
// it serves anything, naming the first daemon.
func TestSecondDaemonOnTheSameConfigIsRefused(t *testing.T) {
	dir := t.TempDir()
	cfg := newConfig(t, dir)
	cfg.Targets = []config.Target{{Name: adminIQN, LUNs: []config.LUN{sparseLUN(t, dir, "lun0", 0, 4<<20)}}}
	d := start(t, dir, cfg)
	adminReady(t, cfg.AdminSocket)

	d2 := startDaemon(t, d.cfgPath, "127.0.0.1:1") // nothing listens there: it returns when d2 exits
	code, exited := d2.wait(15 * time.Second)
	require.True(t, exited, "the second daemon must not run")
	assert.NotZero(t, code)
	assert.Contains(t, d2.log(), "in use")
	assert.Contains(t, d2.log(), "pid "+strconv.Itoa(d.cmd.Process.Pid), "the holder is named")
	assert.Contains(t, d2.log(), d.cfgPath, "with its config")
	assert.False(t, d.exited(), "the first daemon still serves")
	_, err := adminclient.New(cfg.AdminSocket).Targets(ctx(t))
	assert.NoError(t, err, "and keeps its admin socket")
}

// TestStartFailsOnAMissingLUN: no serving a target with a LUN missing.
func TestStartFailsOnAMissingLUN(t *testing.T) {
	dir := t.TempDir()
	cfg := newConfig(t, dir)
	cfg.Targets = []config.Target{{Name: adminIQN, LUNs: []config.LUN{
		{ID: 0, Path: filepath.Join(dir, "gone.img"), BlockSize: 512, Serial: "s0", WriteCache: true}}}}
	d := startDaemon(t, writeConfig(t, dir, cfg), cfg.Listen[0])
	code, exited := d.wait(15 * time.Second)
	require.True(t, exited, "tandem-target must exit; log:\n%s", d.log())
	assert.Equal(t, 1, code)
	assert.Contains(t, d.log(), "gone.img")
	assert.Contains(t, d.log(), "size", "the hint names a key that exists")
}

// TestSIGHUPWithAnInvalidFileChangesNothing: the daemon logs why, keeps
// serving, and does not die of the signal.
func TestSIGHUPWithAnInvalidFileChangesNothing(t *testing.T) {
	dir := t.TempDir()
	cfg := newConfig(t, dir)
	cfg.Targets = []config.Target{{Name: adminIQN, LUNs: []config.LUN{sparseLUN(t, dir, "lun0", 0, 4<<20)}}}
	d := start(t, dir, cfg)
	c := adminReady(t, cfg.AdminSocket)
	before, err := c.Targets(ctx(t))
	require.NoError(t, err)

	b, err := os.ReadFile(d.cfgPath)
	require.NoError(t, err)
	require.NoError(t, os.WriteFile(d.cfgPath, []byte(strings.Replace(string(b), "block_size: 512", "block_size: 1000", 1)), 0o644))
	require.NoError(t, d.cmd.Process.Signal(syscall.SIGHUP))
	waitLog(t, d, "config reload refused")
	assert.Contains(t, d.log(), "block_size: 1000 is not supported")
	assert.False(t, d.exited())
	after, err := c.Targets(ctx(t))
	require.NoError(t, err)
	assert.Equal(t, before, after)

	// Negative control: a valid edit is served after SIGHUP.
	require.NoError(t, os.WriteFile(d.cfgPath, []byte(strings.Replace(string(b), "luns:", "alias: edited\n    luns:", 1)), 0o644))
	require.NoError(t, d.cmd.Process.Signal(syscall.SIGHUP))
	waitLog(t, d, "alias=edited")
	after, err = c.Targets(ctx(t))
	require.NoError(t, err)
	assert.Equal(t, "edited", after[0].Alias)
}

// adminReady waits (up to a generous deadline) until the admin socket
// answers: the daemon opens it after its portals.
func adminReady(t *testing.T, sock string) *adminclient.Client {
	t.Helper()
	c := adminclient.New(sock)
	var err error
	for deadline := time.Now().Add(15 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		if _, err = c.Targets(ctx(t)); err == nil {
			return c
		}
	}
	t.Fatalf("admin socket %s did not answer within 15s: %v", sock, err)
	return nil
}

// waitLog waits (up to a generous deadline, not a timing assumption) for
// s in the daemon's log.
func waitLog(t *testing.T, d *daemon, s string) {
	t.Helper()
	for deadline := time.Now().Add(15 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		if strings.Contains(d.log(), s) {
			return
		}
	}
	t.Fatalf("%q not in the log within 15s:\n%s", s, d.log())
}
