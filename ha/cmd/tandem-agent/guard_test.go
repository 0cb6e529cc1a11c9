package main

import (
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/tandem-ha/tandem/ha/config"
	"github.com/tandem-ha/tandem/ha/resource"
)

// The test binary doubles as tandem-agent (and, through os.Executable, as
// its guard) when this variable is set.
const asAgent = "TANDEM_AGENT_TEST_AS_AGENT"

func TestMain(m *testing.M) {
	if os.Getenv(asAgent) == "1" {
		main()
		os.Exit(0)
	}
	os.Exit(m.Run())
}

// recorder is a heartbeat-style script that appends start/stop to a file.
const recorder = `#!/bin/sh
case "$1" in
start)  echo start >> %[1]s/ops; touch %[1]s/running ;;
stop)   echo stop >> %[1]s/ops; rm -f %[1]s/running ;;
status) if [ -e %[1]s/running ]; then echo running; else echo stopped; fi ;;
esac
`

// An agent killed with SIGKILL cannot stop its group; its guard does.
func TestGuardStopsGroupAfterKill9(t *testing.T) {
	dir := t.TempDir()
	script := filepath.Join(dir, "svc")
	require.NoError(t, os.WriteFile(script, []byte(strings.ReplaceAll(recorder, "%[1]s", dir)), 0o755))
	key := filepath.Join(dir, "authkey")
	require.NoError(t, os.WriteFile(key, []byte("0123456789abcdef0123"), 0o600))
	port := freeUDPPort(t)

	spec := resource.Spec{Type: "script", Name: "svc", Params: map[string]string{"path": script},
		StopTimeout: 10 * time.Second, StartTimeout: 10 * time.Second}
	spec.Monitor.Interval = time.Hour // the test is about start and stop
	cfg := config.Config{
		Cluster: "guard", Nodes: []string{"alpha", "beta"}, Node: "alpha", KeyFile: key,
		// The peer never runs: alpha starts alone after initdead.
		Timing: config.Timing{Keepalive: 50 * time.Millisecond, DeadTime: 200 * time.Millisecond, InitDead: 200 * time.Millisecond},
		Links: []config.Link{{Name: "lo", Mode: config.ModeUnicast, Port: port,
			Addresses: map[string]string{"alpha": "127.0.0.1", "beta": "127.0.0.2"}}},
		Resources:     []resource.Spec{spec},
		ControlSocket: filepath.Join(dir, "agent.sock"),
		SelfFence:     config.SelfFence{Action: config.FenceExit},
		Log:           config.Log{Level: "debug", Format: "text"},
	}
	path := filepath.Join(dir, "agent.yaml")
	require.NoError(t, cfg.WriteFile(path))

	logPath := filepath.Join(dir, "agent.log")
	logf, err := os.Create(logPath)
	require.NoError(t, err)
	defer logf.Close()
	exe, err := os.Executable()
	require.NoError(t, err)
	cmd := exec.Command(exe, "--config", path)
	cmd.Env = append(os.Environ(), asAgent+"=1")
	cmd.Stdout, cmd.Stderr = logf, logf
	require.NoError(t, cmd.Start())
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
		killGuard(t, logPath)
		if t.Failed() {
			b, _ := os.ReadFile(logPath)
			t.Logf("agent and guard log:\n%s", b)
		}
	})

	ops := func() string { b, _ := os.ReadFile(filepath.Join(dir, "ops")); return string(b) }
	// Leftovers stopped at startup, then started alone: no deadline in the
	// assertion is about the agent's speed, only about the test giving up.
	require.Eventually(t, func() bool { return ops() == "stop\nstart\n" }, 60*time.Second, 10*time.Millisecond,
		"ops: %q", ops())
	require.Eventually(t, func() bool { return guardPID(logPath) > 0 }, 60*time.Second, 10*time.Millisecond)
	// Active, so the start script has finished: a kill during it would
	// leave it racing with the guard's stop.
	require.Eventually(t, func() bool {
		b, _ := os.ReadFile(logPath)
		return strings.Contains(string(b), `reason="group running"`)
	}, 60*time.Second, 10*time.Millisecond)

	require.NoError(t, syscall.Kill(cmd.Process.Pid, syscall.SIGKILL))
	_ = cmd.Wait()
	require.Eventually(t, func() bool { return ops() == "stop\nstart\nstop\n" }, 60*time.Second, 10*time.Millisecond,
		"ops: %q", ops())
	require.Eventually(t, func() bool {
		b, _ := os.ReadFile(logPath)
		return strings.Contains(string(b), "resource group released after the agent died")
	}, 60*time.Second, 10*time.Millisecond, "the guard reports the release")
	assert.Equal(t, "stop\nstart\nstop\n", ops(), "the guard never starts anything")
	assert.NoFileExists(t, filepath.Join(dir, "running"))
}

func freeUDPPort(t *testing.T) int {
	c, err := net.ListenPacket("udp4", "127.0.0.1:0")
	require.NoError(t, err)
	defer c.Close()
	return c.LocalAddr().(*net.UDPAddr).Port
}

var guardStarted = regexp.MustCompile(`msg="guard started" pid=(\d+)`)

// guardPID is the guard's PID from the agent's log, 0 before it started.
func guardPID(logPath string) int {
	b, _ := os.ReadFile(logPath)
	m := guardStarted.FindSubmatch(b)
	if m == nil {
		return 0
	}
	pid, _ := strconv.Atoi(string(m[1]))
	return pid
}

// killGuard ends the guard this test's agent started, should it still run
// (it exits on its own once the group is released).
func killGuard(t *testing.T, logPath string) {
	pid := guardPID(logPath)
	if pid <= 0 {
		return
	}
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/cmdline")
	if err != nil || !strings.Contains(string(b), "guard") {
		return // gone (or the PID was reused by someone else's process)
	}
	t.Logf("guard %d still running: killing it", pid)
	_ = syscall.Kill(pid, syscall.SIGKILL)
}
