package mqres

import (
	"context"
	"os"
	"os/user"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestExecRunnerUser(t *testing.T) {
	c, err := credential("")
	require.NoError(t, err)
	assert.Nil(t, c, "empty user: no switch")
	cur, err := user.Current()
	require.NoError(t, err)
	c, err = credential(cur.Username)
	require.NoError(t, err)
	assert.Nil(t, c, "already that user: no switch")
	_, err = credential("no-such-user-mqres")
	assert.ErrorContains(t, err, `set user to ""`)

	if os.Geteuid() != 0 {
		t.Skip("switching to nobody needs root")
	}
	res, err := ExecRunner{Dir: "/usr/bin", User: "nobody"}.Run(context.Background(), "id", "-un")
	require.NoError(t, err)
	assert.Equal(t, "nobody", strings.TrimSpace(string(res.Stdout)))
}

func TestExecRunnerTimeoutKillsGroup(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	begin := time.Now()
	// The shell's child sleep holds stdout: only a group kill ends it.
	res, err := ExecRunner{Dir: "/bin"}.Run(ctx, "sh", "-c", "sleep 30; echo late")
	require.ErrorIs(t, err, context.DeadlineExceeded)
	assert.Equal(t, -1, res.Code)
	assert.Less(t, time.Since(begin), 2*time.Second)

	res, err = ExecRunner{Dir: "/bin"}.Run(context.Background(), "sh", "-c", "echo AMQ8146E; exit 40")
	require.NoError(t, err, "a non-zero exit is a result")
	assert.Equal(t, 40, res.Code)
	_, err = ExecRunner{Dir: "/nonexistent"}.Run(context.Background(), "dspmq")
	assert.ErrorContains(t, err, "install path")
}
