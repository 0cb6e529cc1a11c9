package lsb

import (
	"context"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/tandem-ha/tandem/ha/resource"
)

func TestJudgeStatus(t *testing.T) {
	for _, tc := range []struct {
		code int
		want resource.Status
	}{
		{0, resource.StatusRunning},
		{1, resource.StatusStopped},
		{2, resource.StatusStopped},
		{3, resource.StatusStopped},
		{4, resource.StatusFailed},
		{5, resource.StatusFailed},
		{150, resource.StatusFailed},
		{255, resource.StatusFailed},
	} {
		assert.Equal(t, tc.want, JudgeStatus(tc.code), "status exit %d", tc.code)
	}
	assert.Equal(t, "program is not running", StatusMeaning(3))
	assert.Equal(t, "program is not installed", ActionMeaning(5))
	assert.Equal(t, "reserved for application use", ActionMeaning(151))
}

func writeInit(t *testing.T, body string) string {
	t.Helper()
	dir := t.TempDir()
	p := filepath.Join(dir, "svc")
	require.NoError(t, os.WriteFile(p, []byte("#!/bin/sh\nSTATE="+dir+"/state\n"+body), 0o755))
	return p
}

const initScript = `
case "$1" in
start) touch "$STATE"; exit 0;;
stop) rm -f "$STATE"; exit 0;;
status) [ -f "$STATE" ] && exit 0; exit 3;;
esac
exit 3
`

func TestLifecycle(t *testing.T) {
	r, err := resource.Build(resource.Spec{Type: Type, Name: "svc", Params: map[string]string{"path": writeInit(t, initScript)}}, nil)
	require.NoError(t, err)
	ctx := context.Background()
	st, err := r.Monitor(ctx)
	require.NoError(t, err)
	assert.Equal(t, resource.StatusStopped, st)
	require.NoError(t, r.Start(ctx))
	require.NoError(t, r.Start(ctx))
	st, err = r.Monitor(ctx)
	require.NoError(t, err)
	assert.Equal(t, resource.StatusRunning, st)
	require.NoError(t, r.Stop(ctx))
	require.NoError(t, r.Stop(ctx))
	st, err = r.Monitor(ctx)
	require.NoError(t, err)
	assert.Equal(t, resource.StatusStopped, st)
}

func TestFailures(t *testing.T) {
	ctx := context.Background()
	r, err := New(resource.Spec{Type: Type, Name: "svc", Params: map[string]string{"path": writeInit(t, `
case "$1" in
start) echo "no config" >&2; exit 6;;
stop) exit 1;;
status) exit 4;;
esac`)}}, nil)
	require.NoError(t, err)
	err = r.Start(ctx)
	require.Error(t, err)
	assert.Contains(t, err.Error(), "status 6 (program is not configured): no config")
	require.Error(t, r.Stop(ctx), "stop failed and status is unknown")
	st, err := r.Monitor(ctx)
	require.Error(t, err)
	assert.Equal(t, resource.StatusFailed, st)
	assert.Contains(t, err.Error(), "unknown")

	// A script that fails to stop a stopped service is forgiven when status says 3.
	r, err = New(resource.Spec{Type: Type, Name: "svc", Params: map[string]string{"path": writeInit(t, `
case "$1" in
stop) exit 7;;
status) exit 3;;
esac`)}}, nil)
	require.NoError(t, err)
	assert.NoError(t, r.Stop(ctx))
}

func TestValidate(t *testing.T) {
	err := resource.Spec{Type: Type, Name: "x", Params: map[string]string{"path": "surely-not-installed-svc"}}.Validate()
	require.Error(t, err)
	assert.Contains(t, err.Error(), "/etc/init.d/surely-not-installed-svc")
	assert.Contains(t, err.Error(), "params.path")
}
