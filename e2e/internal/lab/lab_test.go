package lab

import (
	"os"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// fakeSuite runs script with /bin/sh in place of iscsi-test-cu; the script
// must exec its last long-running command so that killing the PID ends it.
func fakeSuite(script string, stall time.Duration, targetDone <-chan struct{}) SuiteRun {
	return RunSuite(SuiteOptions{Bin: "/bin/sh", Args: []string{"-c", script}, Stall: stall, Timeout: time.Minute, TargetDone: targetDone})
}

func TestRunSuiteFinishes(t *testing.T) {
	run := fakeSuite(`printf '\nSuite: S\n  Test: A ...passed\n  Test: B ...passed\n'`, time.Minute, nil)
	assert.Empty(t, run.Aborted)
	assert.NoError(t, run.ExitErr)
	assert.Contains(t, string(run.Stdout), "Test: B ...passed")
}

func TestRunSuiteStall(t *testing.T) {
	start := time.Now()
	run := fakeSuite(`printf '\nSuite: S\n  Test: Hang ...'; exec sleep 60`, 300*time.Millisecond, nil)
	assert.Contains(t, run.Aborted, "no new test started for 300ms (stuck in test Hang)")
	assert.Less(t, time.Since(start), 30*time.Second, "the suite was killed, not waited for")
	assert.Contains(t, string(run.Stdout), "Test: Hang ...")
}

func TestRunSuiteTargetDied(t *testing.T) {
	done := make(chan struct{})
	close(done)
	run := fakeSuite(`printf '\n  Test: A ...'; exec sleep 60`, time.Minute, done)
	assert.Contains(t, run.Aborted, "the target exited")
}

func TestCreateLUNFile(t *testing.T) {
	dir := t.TempDir()
	sparse := filepath.Join(dir, "sparse.img")
	require.NoError(t, CreateLUNFile(sparse, 64<<20, false))
	full := filepath.Join(dir, "full.img")
	require.NoError(t, CreateLUNFile(full, 4<<20, true))
	for path, size := range map[string]int64{sparse: 64 << 20, full: 4 << 20} {
		fi, err := os.Stat(path)
		require.NoError(t, err)
		assert.Equal(t, size, fi.Size())
	}
	var st syscall.Stat_t
	require.NoError(t, syscall.Stat(sparse, &st))
	assert.Less(t, st.Blocks*512, int64(1<<20), "sparse file has no blocks")
	require.NoError(t, syscall.Stat(full, &st))
	assert.GreaterOrEqual(t, st.Blocks*512, int64(4<<20), "preallocated file has its blocks")
}

func TestStartCommandAndStop(t *testing.T) {
	// A "target" that exits at once is reported with its log.
	_, err := StartCommand("echo broken target; exit 3", Options{Dir: t.TempDir(), IQN: "iqn.2024-01.io.tandem:t", Ready: 5 * time.Second})
	require.Error(t, err)
	assert.Contains(t, err.Error(), "exited before listening")
	assert.Contains(t, err.Error(), "broken target")
}
