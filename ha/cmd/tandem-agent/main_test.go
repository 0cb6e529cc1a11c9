package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/tandem-ha/tandem/ha/config"
	"github.com/tandem-ha/tandem/ha/resource"
)

// agentConfig is a one-node config on loopback: the peer never runs.
func agentConfig(t *testing.T, dir string) config.Config {
	key := filepath.Join(dir, "authkey")
	require.NoError(t, os.WriteFile(key, []byte("0123456789abcdef0123"), 0o600))
	return config.Config{
		Cluster: "hup", Nodes: []string{"alpha", "beta"}, Node: "alpha", KeyFile: key,
		Timing: config.Timing{Keepalive: 50 * time.Millisecond, DeadTime: 200 * time.Millisecond, InitDead: 200 * time.Millisecond},
		Links: []config.Link{{Name: "lo", Mode: config.ModeUnicast, Port: freeUDPPort(t),
			Addresses: map[string]string{"alpha": "127.0.0.1", "beta": "127.0.0.2"}}},
		ControlSocket:  filepath.Join(dir, "agent.sock"),
		StateDir:       filepath.Join(dir, "state"),
		MetricsAddress: "off",
		SelfFence:      config.SelfFence{Action: config.FenceExit},
		Log:            config.Log{Level: "info", Format: "text"},
	}
}

func agentCmd(t *testing.T, args ...string) *exec.Cmd {
	exe, err := os.Executable()
	require.NoError(t, err)
	cmd := exec.Command(exe, args...)
	cmd.Env = append(os.Environ(), asAgent+"=1")
	return cmd
}

// TestSIGHUPReloadsAndSurvives: SIGHUP applies the log level, names what
// needs a restart, keeps the running config when the file is broken, and
// never ends the agent.
func TestSIGHUPReloadsAndSurvives(t *testing.T) {
	dir := t.TempDir()
	cfg := agentConfig(t, dir)
	path := filepath.Join(dir, "agent.yaml")
	require.NoError(t, cfg.WriteFile(path))
	logPath := filepath.Join(dir, "agent.log")
	logf, err := os.Create(logPath)
	require.NoError(t, err)
	defer logf.Close()
	cmd := agentCmd(t, "--config", path, "--no-guard", "--no-realtime")
	cmd.Stdout, cmd.Stderr = logf, logf
	require.NoError(t, cmd.Start())
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		<-exited
		if t.Failed() {
			b, _ := os.ReadFile(logPath)
			t.Logf("agent log:\n%s", b)
		}
	})
	logHas := func(s string) func() bool {
		return func() bool { b, _ := os.ReadFile(logPath); return strings.Contains(string(b), s) }
	}
	require.Eventually(t, logHas("agent started"), 60*time.Second, 10*time.Millisecond)

	cfg.Log.Level = "debug"
	cfg.Timing.Keepalive = 60 * time.Millisecond
	require.NoError(t, cfg.WriteFile(path))
	require.NoError(t, cmd.Process.Signal(syscall.SIGHUP))
	require.Eventually(t, logHas("SIGHUP: log level applied"), 60*time.Second, 10*time.Millisecond)
	require.Eventually(t, logHas("applied at the agent's next start: timing"), 60*time.Second, 10*time.Millisecond)

	require.NoError(t, os.WriteFile(path, []byte("nodes: [\n"), 0o644))
	require.NoError(t, cmd.Process.Signal(syscall.SIGHUP))
	require.Eventually(t, logHas("SIGHUP: config not reloaded, the running one stays"), 60*time.Second, 10*time.Millisecond)

	select {
	case err := <-exited:
		t.Fatalf("the agent ended after SIGHUP: %v", err)
	default:
	}
	require.NoError(t, cmd.Process.Signal(syscall.SIGTERM))
	require.NoError(t, <-exited, "a clean exit on SIGTERM")
	exited <- nil // for the cleanup
}

// TestCheckRunsResourceChecks: --check fails on a VIP outside its
// interface's subnets (netlink reads need no privilege) and passes on one
// inside (the negative control).
func TestCheckRunsResourceChecks(t *testing.T) {
	dir := t.TempDir()
	cfg := agentConfig(t, dir)
	vip := resource.Spec{Type: "vip", Name: "vip", Params: map[string]string{"address": "192.0.2.10/24", "interface": "lo"}}
	cfg.Resources = []resource.Spec{vip}
	path := filepath.Join(dir, "agent.yaml")
	require.NoError(t, cfg.WriteFile(path))
	out, err := agentCmd(t, "--config", path, "--check").CombinedOutput()
	require.Error(t, err, "%s", out)
	assert.Contains(t, string(out), "192.0.2.10/24 is in no subnet of interface lo")

	vip.Params["address"] = "127.0.0.10/8"
	cfg.Resources = []resource.Spec{vip}
	require.NoError(t, cfg.WriteFile(path))
	out, err = agentCmd(t, "--config", path, "--check").CombinedOutput()
	require.NoError(t, err, "%s", out)
	assert.Contains(t, string(out), "is valid")
}

func TestParamsCommand(t *testing.T) {
	out, err := agentCmd(t, "params", "mq").CombinedOutput()
	require.NoError(t, err, "%s", out)
	assert.Contains(t, string(out), "shared_mount")
	out, err = agentCmd(t, "params", "nope").CombinedOutput()
	require.Error(t, err)
	assert.Contains(t, string(out), "is not a resource type")
}
