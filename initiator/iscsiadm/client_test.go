package iscsiadm_test

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/tandem-ha/tandem/initiator/iscsiadm"
	"github.com/tandem-ha/tandem/initiator/iscsiadm/iscsiadmtest"
)

const (
	iqn    = "iqn.2026-11.io.tandem:disk"
	portal = "10.200.0.1:3260"
	secret = "target-secret-123"
	mutual = "mutual-secret-456"
)

var tgt = iscsiadm.Target{Portal: portal, Target: iqn}

func lab(t *testing.T, mutate ...func(*iscsiadmtest.State)) (*iscsiadm.Client, *iscsiadmtest.Fake, *bytes.Buffer) {
	st := iscsiadmtest.State{Targets: []iscsiadmtest.Target{{
		Portal: portal, Tag: "1", Name: iqn, User: "node-a", Secret: secret,
		MutualUser: "tgt", MutualSecret: mutual, LUNs: []uint64{0},
	}}}
	for _, m := range mutate {
		m(&st)
	}
	fake := iscsiadmtest.New(t, st)
	var logs bytes.Buffer
	c := iscsiadm.New(fake.Bin, slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug})))
	c.Env, c.DevDir, c.PollInterval = fake.Env(), fake.DevDir, 5*time.Millisecond
	return c, fake, &logs
}

func ctx(t *testing.T) context.Context {
	c, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	t.Cleanup(cancel)
	return c
}

// indexOf returns the position of the first call containing all of want.
func indexOf(calls [][]string, want ...string) int {
	for i, c := range calls {
		j := strings.Join(c, " ")
		ok := true
		for _, w := range want {
			ok = ok && strings.Contains(j, w)
		}
		if ok {
			return i
		}
	}
	return -1
}

func TestAttachMutualCHAPAndLogout(t *testing.T) {
	c, fake, logs := lab(t)
	setup := iscsiadm.Setup{Target: tgt, Discover: true,
		Auth:               &iscsiadm.CHAP{Username: "node-a", Password: secret, UsernameIn: "tgt", PasswordIn: mutual},
		ReplacementTimeout: 5 * time.Second}
	dev, err := c.Attach(ctx(t), setup)
	require.NoError(t, err)
	assert.Equal(t, filepath.Join(fake.DevDir, "sda"), dev)

	st := fake.State(t)
	discover := indexOf(st.Calls, "--discover")
	chap := indexOf(st.Calls, "-m node", "node.session.auth.password", secret)
	login := indexOf(st.Calls, "--login")
	require.True(t, discover >= 0 && chap >= 0 && login >= 0, "%v", st.Calls)
	assert.Less(t, discover, chap, "CHAP is set after discovery, which resets it")
	assert.Less(t, chap, login)
	assert.Equal(t, "5", st.Nodes[iqn+"|"+portal]["node.session.timeo.replacement_timeout"])
	assert.NotContains(t, logs.String(), secret, "secrets never reach the log")
	assert.NotContains(t, logs.String(), mutual)
	assert.Contains(t, logs.String(), "node.session.auth.password -v ***")

	s, ok, err := c.Session(ctx(t), iscsiadm.Target{Portal: "10.200.0.1", Target: iqn})
	require.NoError(t, err)
	require.True(t, ok, "portal without port matches")
	assert.True(t, s.LoggedIn())
	assert.Equal(t, 5, s.RecoveryTimeout)
	require.NoError(t, c.Rescan(ctx(t), s.SID))

	require.NoError(t, c.Login(ctx(t), tgt), "login with a session is success (exit 15)")
	require.NoError(t, c.Logout(ctx(t), tgt))
	require.NoError(t, c.Logout(ctx(t), tgt), "logout without a session is success (exit 21)")
	ss, err := c.Sessions(ctx(t))
	require.NoError(t, err)
	assert.Empty(t, ss)
	assert.NoFileExists(t, dev)
	require.NoError(t, c.DeleteNode(ctx(t), tgt))
	require.NoError(t, c.DeleteNode(ctx(t), tgt), "no record is success")
	assert.ErrorIs(t, c.Login(ctx(t), tgt), iscsiadm.ExitNoObjsFound)
}

func TestWrongSecretIsAuthFailure(t *testing.T) {
	c, _, logs := lab(t)
	_, err := c.Attach(ctx(t), iscsiadm.Setup{Target: tgt, Discover: true, Auth: &iscsiadm.CHAP{Username: "node-a", Password: "wrong-secret-789"}})
	require.Error(t, err)
	assert.ErrorIs(t, err, iscsiadm.ExitAuthFailed)
	var oe *iscsiadm.OpError
	require.ErrorAs(t, err, &oe)
	assert.Equal(t, 24, oe.ExitCode)
	assert.Contains(t, err.Error(), "exit 24 (authorization failure)")
	assert.Contains(t, err.Error(), "check the CHAP user and secret")
	assert.NotContains(t, err.Error(), "wrong-secret-789")
	assert.NotContains(t, logs.String(), "wrong-secret-789")
	for _, a := range oe.Args {
		assert.NotEqual(t, "wrong-secret-789", a)
	}
}

func TestMutualSecretWrongIsFatalLogin(t *testing.T) {
	c, _, _ := lab(t)
	_, err := c.Attach(ctx(t), iscsiadm.Setup{Target: tgt, Discover: true,
		Auth: &iscsiadm.CHAP{Username: "node-a", Password: secret, UsernameIn: "tgt", PasswordIn: "not-it"}})
	assert.ErrorIs(t, err, iscsiadm.ExitFatalLogin)
	assert.Contains(t, err.Error(), "password_in")
}

func TestCHAPBeforeDiscoveryIsLost(t *testing.T) {
	// What the wrapper avoids: setting CHAP, then discovering, loses it.
	c, _, _ := lab(t)
	require.NoError(t, c.CreateNode(ctx(t), tgt))
	require.NoError(t, c.SetCHAP(ctx(t), tgt, &iscsiadm.CHAP{Username: "node-a", Password: secret}))
	_, err := c.Discover(ctx(t), portal, nil)
	require.NoError(t, err)
	assert.ErrorIs(t, c.Login(ctx(t), tgt), iscsiadm.ExitAuthFailed)
}

func TestDiscoveryCHAP(t *testing.T) {
	c, _, _ := lab(t, func(s *iscsiadmtest.State) {
		s.Targets[0].DiscoveryUser, s.Targets[0].DiscoverySecret = "disc", "disc-secret"
	})
	_, err := c.Discover(ctx(t), portal, nil)
	assert.ErrorIs(t, err, iscsiadm.ExitAuthFailed)
	found, err := c.Discover(ctx(t), portal, &iscsiadm.CHAP{Username: "disc", Password: "disc-secret"})
	require.NoError(t, err)
	assert.Equal(t, []iscsiadm.Target{{Portal: portal, GroupTag: "1", Target: iqn}}, found)
	_, err = c.Discover(ctx(t), "10.9.9.9", nil)
	assert.ErrorIs(t, err, iscsiadm.ExitTransport)
}

func TestFailures(t *testing.T) {
	t.Run("iscsid down", func(t *testing.T) {
		c, _, _ := lab(t, func(s *iscsiadmtest.State) { s.DaemonDown = true })
		require.NoError(t, c.CreateNode(ctx(t), tgt))
		err := c.Login(ctx(t), tgt)
		assert.ErrorIs(t, err, iscsiadm.ExitISCSIDNotConn)
		assert.Contains(t, err.Error(), "start iscsid")
	})
	t.Run("no node record", func(t *testing.T) {
		c, _, _ := lab(t)
		err := c.Login(ctx(t), tgt)
		assert.ErrorIs(t, err, iscsiadm.ExitNoObjsFound)
		assert.Contains(t, err.Error(), "No records found")
	})
	t.Run("scripted timeout", func(t *testing.T) {
		c, _, _ := lab(t, func(s *iscsiadmtest.State) { s.Fail = map[string]int{"login": 8} })
		require.NoError(t, c.CreateNode(ctx(t), tgt))
		assert.ErrorIs(t, c.Login(ctx(t), tgt), iscsiadm.ExitTransTimeout)
	})
	t.Run("deadline kills a hung iscsiadm", func(t *testing.T) {
		c, _, _ := lab(t, func(s *iscsiadmtest.State) { s.Fail = map[string]int{"login": -1} })
		require.NoError(t, c.CreateNode(ctx(t), tgt))
		cx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
		defer cancel()
		start := time.Now()
		err := c.Login(cx, tgt)
		assert.ErrorIs(t, err, context.DeadlineExceeded)
		assert.Less(t, time.Since(start), 5*time.Second)
	})
	t.Run("no disk appears", func(t *testing.T) {
		c, _, _ := lab(t, func(s *iscsiadmtest.State) { s.NoDisk = true; s.Targets[0].Secret = "" })
		cx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
		defer cancel()
		_, err := c.Attach(cx, iscsiadm.Setup{Target: tgt, Discover: true})
		assert.True(t, errors.Is(err, iscsiadm.ErrNoDevice), "%v", err)
		assert.Contains(t, err.Error(), "sd_mod")
	})
	t.Run("binary missing", func(t *testing.T) {
		c := iscsiadm.New(filepath.Join(t.TempDir(), "nope"), nil)
		_, err := c.Sessions(ctx(t))
		assert.ErrorContains(t, err, "install open-iscsi")
	})
}
