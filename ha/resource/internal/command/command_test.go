package command

import (
	"context"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"golang.org/x/sys/unix"
)

func TestRunExitCodeAndOutput(t *testing.T) {
	res, err := Run(context.Background(), "/bin/sh", "-c", "echo out; echo err >&2; exit 3")
	require.NoError(t, err)
	assert.Equal(t, 3, res.ExitCode)
	assert.Equal(t, "out\n", string(res.Stdout))
	assert.Equal(t, "err\n", string(res.Stderr))
	assert.Equal(t, "err", res.StderrLine())
}

func TestRunMissingProgram(t *testing.T) {
	res, err := Run(context.Background(), "/nonexistent/prog")
	require.Error(t, err)
	assert.Equal(t, -1, res.ExitCode)
}

// A script that backgrounds a child holding stdout must not block Run.
func TestRunDaemonKeepsStdout(t *testing.T) {
	pidFile := filepath.Join(t.TempDir(), "pid")
	start := time.Now()
	res, err := Run(context.Background(), "/bin/sh", "-c", "sleep 30 & echo $! >"+pidFile+"; echo started")
	require.NoError(t, err)
	assert.Equal(t, 0, res.ExitCode)
	assert.Less(t, time.Since(start), 4*time.Second)
	b, err := os.ReadFile(pidFile)
	require.NoError(t, err)
	pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
	require.NoError(t, err)
	assert.True(t, alive(pid), "the daemon must survive a successful run")
	_ = unix.Kill(pid, unix.SIGKILL)
}

// On timeout the whole process group dies, grandchildren included.
func TestRunTimeoutKillsGroup(t *testing.T) {
	pidFile := filepath.Join(t.TempDir(), "pid")
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	_, err := Run(ctx, "/bin/sh", "-c", "sleep 30 & echo $! >"+pidFile+"; wait")
	require.ErrorIs(t, err, context.DeadlineExceeded)
	b, rerr := os.ReadFile(pidFile)
	require.NoError(t, rerr)
	pid, _ := strconv.Atoi(strings.TrimSpace(string(b)))
	require.Eventually(t, func() bool { return !alive(pid) }, 2*time.Second, 20*time.Millisecond,
		"grandchild %d survived the timeout", pid)
}

// alive is false for a gone process and for a zombie: a killed grandchild is
// reparented to a reaper that may take its time.
func alive(pid int) bool {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return false
	}
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	return i < 0 || i+2 >= len(s) || s[i+2] != 'Z'
}
