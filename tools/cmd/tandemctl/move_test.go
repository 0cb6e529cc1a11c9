package main

import (
	"bytes"
	"context"
	"encoding/json"
	"path/filepath"
	"sync"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/tandem-ha/tandem/ha/control"
)

func st(node, peer string, alive bool, cause string) control.Status {
	return control.Status{Node: control.NodeStatus{Name: "alpha", State: node, Cause: cause},
		Peer: control.NodeStatus{Name: "beta", State: peer, Alive: alive}}
}

func TestMoveJudge(t *testing.T) {
	tests := []struct {
		desc       string
		kind       control.Command
		before, st control.Status
		done       bool
		err        string
	}{
		{desc: "standby under way", kind: control.CmdStandby, st: st("stopping", "standby", true, "")},
		{desc: "standby done", kind: control.CmdStandby, st: st("standby", "active", true, ""), done: true},
		{desc: "standby, peer not yet active", kind: control.CmdStandby, st: st("standby", "starting", true, "")},
		{desc: "standby, peer failed", kind: control.CmdStandby, st: st("standby", "failed", true, ""), err: "peer beta failed"},
		{desc: "takeover done", kind: control.CmdTakeover, st: st("active", "standby", true, ""), done: true},
		{desc: "takeover under way", kind: control.CmdTakeover, st: st("starting", "standby", true, "")},
		{desc: "takeover, old cause", kind: control.CmdTakeover, before: st("standby", "active", true, "start of mq failed"),
			st: st("standby", "stopping", true, "start of mq failed")},
		{desc: "takeover, new failure", kind: control.CmdTakeover, st: st("standby", "starting", true, "start of fs failed: mount"),
			err: "the group failed here and went back to beta: start of fs failed: mount"},
		{desc: "failed", kind: control.CmdTakeover, st: st("failed", "dead", false, "start of vip failed"), err: "this node failed: start of vip failed"},
		{desc: "fenced", kind: control.CmdStandby, st: st("fenced", "active", true, ""), err: "fenced"},
	}
	for _, tc := range tests {
		t.Run(tc.desc, func(t *testing.T) {
			done, err := moveJudge(tc.kind, tc.before, tc.st)
			assert.Equal(t, tc.done, done)
			if tc.err == "" {
				assert.NoError(t, err)
			} else {
				assert.ErrorContains(t, err, tc.err)
			}
		})
	}
}

// moving is an agent whose group moves a few status calls after a command.
type moving struct {
	mu    sync.Mutex
	calls int
	after int // status calls after the command until done
	cmd   control.Command
}

func (m *moving) Status() control.Status {
	m.mu.Lock()
	defer m.mu.Unlock()
	switch {
	case m.cmd == "":
		return st("active", "standby", true, "")
	case m.calls < m.after:
		m.calls++
		return st("stopping", "standby", true, "")
	}
	return st("standby", "active", true, "")
}

func (m *moving) Command(_ context.Context, c control.Command) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.cmd = c
	return nil
}

func TestStandbyWait(t *testing.T) {
	sock := filepath.Join(t.TempDir(), "a.sock")
	b := &moving{after: 3}
	s, err := control.Listen(sock, b, nil)
	require.NoError(t, err)
	go s.Serve()
	defer s.Close()

	var out bytes.Buffer
	c := newRoot()
	c.SetOut(&out)
	c.SetArgs([]string{"standby", "--wait", "--json", "--socket", sock})
	require.NoError(t, c.Execute())
	var r moveResult
	require.NoError(t, json.Unmarshal(out.Bytes(), &r))
	assert.True(t, r.Done)
	assert.Equal(t, 3, b.calls, "waited through the stopping states")
	assert.Equal(t, "active", r.Status.Peer.State)

	// Negative control: a move that never completes ends with an error at
	// the timeout, naming the last state.
	b2 := &moving{after: 1 << 30}
	sock2 := filepath.Join(t.TempDir(), "b.sock")
	s2, err := control.Listen(sock2, b2, nil)
	require.NoError(t, err)
	go s2.Serve()
	defer s2.Close()
	c = newRoot()
	c.SetOut(&bytes.Buffer{})
	c.SetArgs([]string{"standby", "--wait", "--timeout", "300ms", "--socket", sock2})
	err = c.Execute()
	require.Error(t, err)
	assert.Contains(t, err.Error(), "not done within 300ms")
	assert.Contains(t, err.Error(), "this node stopping")
}

func TestStatusShowsFailedCause(t *testing.T) {
	var out bytes.Buffer
	printStatus(&out, st("failed", "dead", false, "start of mq failed: start: strmqm exited 71"))
	assert.Contains(t, out.String(), "FAILED: start of mq failed: start: strmqm exited 71")
	out.Reset()
	printStatus(&out, st("active", "standby", true, ""))
	assert.NotContains(t, out.String(), "FAILED")
}
