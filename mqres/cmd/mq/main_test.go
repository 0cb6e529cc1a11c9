package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/tandem-ha/tandem/mqres"
	"github.com/tandem-ha/tandem/mqres/mqrestest"
)

// TestMain removes the MQ stand-in that mqrestest built.
func TestMain(m *testing.M) { os.Exit(mqrestest.Run(m)) }

// TestHeartbeatContract drives `mq QM start|stop|status` and the set-up
// helper against the MQ stand-in, as heartbeat's resource.d would.
func TestHeartbeatContract(t *testing.T) {
	dir := t.TempDir()
	bin := mqrestest.Bin(t)
	shared := filepath.Join(dir, "MQHA")
	require.NoError(t, os.MkdirAll(shared, 0o755))
	qm := "HB" + filepath.Base(dir)
	t.Cleanup(func() {
		procs, _ := mqres.ProcFS{}.Find(qm)
		for _, p := range procs {
			mqres.ProcFS{}.Kill(p.PID)
		}
	})
	node := func(name string) map[string]string {
		env := map[string]string{"MQ_BIN": bin, "MQ_USER": ""}
		t.Setenv("MQSTUB_PREFIX", filepath.Join(dir, name))
		t.Setenv("MQSTUB_HOST", name)
		return env
	}
	mq := func(env map[string]string, args ...string) (int, string, string) {
		var out, errb bytes.Buffer
		rc := run(args, func(k string) (string, bool) { v, ok := env[k]; return v, ok }, &out, &errb)
		return rc, out.String(), errb.String()
	}

	a := node("a")
	rc, out, _ := mq(a, "-shared", shared, qm, "setup")
	require.Equal(t, 0, rc)
	assert.Contains(t, out, "crtmqm -md "+shared+"/qmgrs -ld "+shared+"/log "+qm)
	rc, out, errs := mq(a, "-shared", shared, qm, "setup", "-run")
	require.Equal(t, 0, rc, errs)
	lines := strings.Split(strings.TrimSpace(out), "\n")
	addLine := lines[len(lines)-1]
	assert.True(t, strings.HasPrefix(addLine, "addmqinf "), addLine)

	rc, out, _ = mq(a, qm, "status")
	assert.Equal(t, exitNotRunning, rc)
	assert.Equal(t, "stopped\n", out)
	rc, _, errs = mq(a, qm, "start")
	require.Equal(t, 0, rc, errs)
	rc, out, _ = mq(a, qm, "status")
	assert.Equal(t, 0, rc)
	assert.Equal(t, "running\n", out)

	b := node("b")
	rc, _, errs = mq(b, qm, "join", addLine)
	require.Equal(t, 0, rc, errs)
	rc, out, _ = mq(b, qm, "status")
	assert.Equal(t, "stopped\n", out, "running elsewhere is stopped here")
	assert.Equal(t, exitNotRunning, rc)

	a = node("a")
	rc, _, errs = mq(a, qm, "stop")
	require.Equal(t, 0, rc, errs)
	rc, _, errs = mq(a, qm, "stop")
	require.Equal(t, 0, rc, "stop of a stopped queue manager: %s", errs)
	rc, out, _ = mq(a, qm, "status")
	assert.Equal(t, "stopped\n", out)

	rc, _, _ = mq(a, qm, "dance")
	assert.Equal(t, exitUsage, rc)
	rc, _, _ = mq(a, qm)
	assert.Equal(t, exitUsage, rc)
}
