package fsm

import (
	"errors"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestFailedKeepsItsCause: a lone node whose start fails ends Failed and
// its status says which resource failed, after the stops that followed
// succeeded; a later start clears the cause (the negative control).
func TestFailedKeepsItsCause(t *testing.T) {
	m, err := New(testConfig())
	require.NoError(t, err)
	complete(m, m.Step(Tick{Now: 0}))
	acts := m.Step(Tick{Now: DefaultInitDead})
	for len(acts) > 0 {
		var next []Action
		for _, r := range runs(acts) {
			res := ResourceResult{Name: r.Name, Op: r.Op, Status: ResRunning}
			if r.Name == "fs" && r.Op == OpStart {
				res.Err, res.Status = errors.New("mount failed"), ResFailed
			} else if r.Op == OpStop {
				res.Status = ResStopped
			}
			next = append(next, m.Step(res)...)
		}
		acts = next
	}
	st := m.Status()
	require.Equal(t, Failed, st.State)
	assert.Equal(t, "start of fs failed", st.Cause)
	assert.Equal(t, "fs", st.CauseResource)
	assert.Contains(t, st.Reason, "no peer can take it")

	complete(m, m.Step(Command{Kind: CmdTakeover}))
	st = m.Status()
	require.NotEqual(t, Failed, st.State, "takeover restarts the group")
	assert.Empty(t, st.Cause, "a new start clears the old cause")
}
