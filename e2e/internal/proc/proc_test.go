package proc

import (
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestStartLogsAndExits(t *testing.T) {
	log := filepath.Join(t.TempDir(), "out.log")
	require.NoError(t, os.WriteFile(log, []byte("before\n"), 0o644))
	p, err := Start("sh", []string{"-c", "echo out; echo err >&2; exit 3"}, Options{Log: log})
	require.NoError(t, err)
	<-p.Done()
	assert.False(t, p.Running())
	assert.ErrorContains(t, p.Err(), "exit status 3")
	b, err := os.ReadFile(log)
	require.NoError(t, err)
	assert.Equal(t, "before\nout\nerr\n", string(b), "output is appended, both streams")
}

func TestStopEscalatesToKill(t *testing.T) {
	log := filepath.Join(t.TempDir(), "out.log")
	// Ignores SIGTERM: only the SIGKILL after the grace ends it.
	p, err := Start("sh", []string{"-c", "trap '' TERM; echo ready; while :; do sleep 1; done"}, Options{Log: log})
	require.NoError(t, err)
	require.Eventually(t, func() bool { b, _ := os.ReadFile(log); return len(b) > 0 }, 10*time.Second, 10*time.Millisecond)
	require.NoError(t, p.Stop(50*time.Millisecond))
	assert.False(t, p.Running())
	assert.ErrorContains(t, p.Err(), "signal: killed")
}

func TestStopTerminates(t *testing.T) {
	p, err := Start("sleep", []string{"60"}, Options{Log: filepath.Join(t.TempDir(), "log")})
	require.NoError(t, err)
	require.NoError(t, p.Stop(time.Minute))
	assert.ErrorContains(t, p.Err(), "signal: terminated")
	require.NoError(t, p.Stop(time.Minute), "stopping an exited process is a no-op")
}

func TestNilIsNotRunning(t *testing.T) {
	var p *Process
	assert.False(t, p.Running())
	assert.True(t, p.Signal(9, 0))
}

func TestStartNeedsLog(t *testing.T) {
	_, err := Start("true", nil, Options{})
	assert.ErrorContains(t, err, "set Options.Log")
}

func TestTail(t *testing.T) {
	path := filepath.Join(t.TempDir(), "f")
	require.NoError(t, os.WriteFile(path, []byte("1\n2\n3\n"), 0o644))
	assert.Equal(t, "--- "+path+" (last lines) ---\n2\n3", Tail(path, 2))
	assert.Empty(t, Tail(path+".missing", 2))
}
