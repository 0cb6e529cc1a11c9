package mq

import (
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/tandem-ha/tandem/ha/resource"
	"github.com/tandem-ha/tandem/mqres"
)

func TestBuildDefaultsQueueManagerToName(t *testing.T) {
	s := resource.Spec{Type: "mq", Name: "QM1", StartTimeout: 7 * time.Second,
		Params: map[string]string{"user": "", "mqbin": t.TempDir()}}
	r, err := New(s, nil)
	require.NoError(t, err)
	a := r.(adapter)
	assert.Equal(t, "QM1", a.Name())
	assert.Equal(t, "QM1", a.Resource.Config().QMgr)
	assert.Equal(t, 7*time.Second, a.Resource.Config().StartTimeout)
}

func TestBuildRejectsBadParams(t *testing.T) {
	_, err := New(resource.Spec{Type: "mq", Name: "QM1", Params: map[string]string{"start_timeout": "soon"}}, nil)
	assert.Error(t, err)
}

func TestMonitorOfMissingInstallIsNotRunning(t *testing.T) {
	// No dspmq in mqbin: the resource must not claim the queue manager runs.
	r, err := New(resource.Spec{Type: "mq", Name: "QM1", Params: map[string]string{"user": "", "mqbin": t.TempDir()}}, nil)
	require.NoError(t, err)
	st, _ := r.Monitor(context.Background())
	assert.NotEqual(t, resource.StatusRunning, st)
}

func TestStatusTableCoversEveryState(t *testing.T) {
	for _, s := range []mqres.State{mqres.StateRunning, mqres.StateStopped, mqres.StateFailed} {
		_, ok := statusOf[s]
		assert.True(t, ok, s.String())
	}
}

func TestCheck(t *testing.T) {
	bin, shared := t.TempDir(), t.TempDir()
	spec := resource.Spec{Type: "mq", Name: "QM1", Params: map[string]string{"user": "", "mqbin": bin, "shared_mount": shared}}
	r, err := New(spec, nil)
	require.NoError(t, err)
	c := r.(resource.Checker)
	err = c.Check(context.Background())
	require.Error(t, err, "no MQ programs in mqbin")
	assert.Contains(t, err.Error(), "set params.mqbin")
	for _, p := range mqCommands {
		require.NoError(t, os.WriteFile(filepath.Join(bin, p), []byte("#!/bin/sh\n"), 0o755))
	}
	require.NoError(t, c.Check(context.Background()))

	spec.Params["shared_mount"] = filepath.Join(shared, "missing")
	r, err = New(spec, nil)
	require.NoError(t, err)
	assert.ErrorContains(t, r.(resource.Checker).Check(context.Background()), "mkdir -p")
}
