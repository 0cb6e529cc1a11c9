package script

import (
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/tandem-ha/tandem/ha/resource"
)

func TestJudgeStatus(t *testing.T) {
	for _, tc := range []struct {
		desc, out string
		want      resource.Status
	}{
		{"running", "httpd is running", resource.StatusRunning},
		{"running capitalised", "Running", resource.StatusRunning},
		{"ok", "OK", resource.StatusRunning},
		{"ok embedded", "status: OK (pid 12)", resource.StatusRunning},
		{"lower ok is not OK", "ok", resource.StatusStopped},
		{"not running", "httpd is not running", resource.StatusStopped},
		{"not running upper", "NOT RUNNING", resource.StatusStopped},
		{"not currently running", "not currently running", resource.StatusStopped},
		{"notrunning has no space", "notrunning", resource.StatusRunning},
		{"not before running on later line", "not\nsure\nrunning", resource.StatusRunning},
		{"not space then running later", "is not up; was running", resource.StatusStopped},
		{"stopped", "stopped", resource.StatusStopped},
		{"empty", "", resource.StatusStopped},
		{"garbage", "??", resource.StatusStopped},
		{"not running beats OK", "OK but not running", resource.StatusStopped},
	} {
		t.Run(tc.desc, func(t *testing.T) {
			assert.Equal(t, tc.want, JudgeStatus(tc.out))
		})
	}
}

// writeScript creates a heartbeat-style script that keeps its state in a file.
func writeScript(t *testing.T, body string) string {
	t.Helper()
	dir := t.TempDir()
	p := filepath.Join(dir, "svc")
	require.NoError(t, os.WriteFile(p, []byte("#!/bin/sh\nSTATE="+dir+"/state\n"+body), 0o755))
	return p
}

const svc = `
case "$2" in
start) echo "$1" > "$STATE"; exit 0;;
stop) rm -f "$STATE"; exit 0;;
status) if [ -f "$STATE" ]; then echo "svc $(cat $STATE) running"; else echo "svc is not running"; fi; exit 0;;
esac
exit 2
`

func TestScriptLifecycle(t *testing.T) {
	path := writeScript(t, svc)
	r, err := resource.Build(resource.Spec{Type: Type, Name: "svc", Params: map[string]string{"path": path, "args": "arg1"}}, nil)
	require.NoError(t, err)
	ctx := context.Background()

	st, err := r.Monitor(ctx)
	require.NoError(t, err)
	assert.Equal(t, resource.StatusStopped, st)

	require.NoError(t, r.Start(ctx))
	require.NoError(t, r.Start(ctx), "start of a running script succeeds")
	st, err = r.Monitor(ctx)
	require.NoError(t, err)
	assert.Equal(t, resource.StatusRunning, st)
	b, _ := os.ReadFile(filepath.Join(filepath.Dir(path), "state"))
	assert.Equal(t, "arg1\n", string(b), "args come before the operation")

	require.NoError(t, r.Stop(ctx))
	require.NoError(t, r.Stop(ctx), "stop of a stopped script succeeds")
	st, err = r.Monitor(ctx)
	require.NoError(t, err)
	assert.Equal(t, resource.StatusStopped, st)
}

func TestScriptFailures(t *testing.T) {
	path := writeScript(t, `echo "cannot bind port" >&2; exit 1`)
	r, err := New(resource.Spec{Type: Type, Name: "bad", Params: map[string]string{"path": path}}, nil)
	require.NoError(t, err)
	err = r.Start(context.Background())
	require.Error(t, err)
	assert.Contains(t, err.Error(), "status 1")
	assert.Contains(t, err.Error(), "cannot bind port")

	slow := writeScript(t, "sleep 30\n")
	r, err = New(resource.Spec{Type: Type, Name: "slow", Params: map[string]string{"path": slow}}, nil)
	require.NoError(t, err)
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	require.ErrorIs(t, r.Stop(ctx), context.DeadlineExceeded)
	st, err := r.Monitor(ctx)
	assert.Error(t, err)
	assert.Equal(t, resource.StatusFailed, st)
}

func TestValidate(t *testing.T) {
	dir := t.TempDir()
	noexec := filepath.Join(dir, "noexec")
	require.NoError(t, os.WriteFile(noexec, []byte("#!/bin/sh\n"), 0o644))
	for _, tc := range []struct {
		desc   string
		params map[string]string
		want   []string
	}{
		{"missing path", nil, []string{"params.path", "is missing"}},
		{"relative", map[string]string{"path": "svc"}, []string{"params.path", "absolute"}},
		{"absent", map[string]string{"path": dir + "/nope"}, []string{"params.path", "no such file"}},
		{"not executable", map[string]string{"path": noexec}, []string{"params.path", "not executable", "chmod +x " + noexec}},
		{"directory", map[string]string{"path": dir}, []string{"not a regular file"}},
		{"unknown key", map[string]string{"path": "/bin/true", "argz": "x"}, []string{"params.argz", "did you mean args?"}},
	} {
		t.Run(tc.desc, func(t *testing.T) {
			err := resource.Spec{Type: Type, Name: "s", Params: tc.params}.Validate()
			require.Error(t, err)
			for _, w := range tc.want {
				assert.Contains(t, err.Error(), w)
			}
		})
	}
	assert.NoError(t, resource.Spec{Type: Type, Name: "s", Params: map[string]string{"path": "/bin/true"}}.Validate())
}
