package iscsi_test

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/tandem-ha/tandem/ha/resource"
	"github.com/tandem-ha/tandem/ha/resource/iscsi"
	"github.com/tandem-ha/tandem/initiator/device"
	"github.com/tandem-ha/tandem/initiator/iscsiadm/iscsiadmtest"
	"github.com/tandem-ha/tandem/initiator/sgio"
	"github.com/tandem-ha/tandem/initiator/sgio/sgiotest"
)

const (
	iqn    = "iqn.2026-11.io.tandem:disk"
	portal = "10.200.0.1:3260"
	secret = "node-secret-1234"
	mutual = "target-secret-5678"
)

type lab struct {
	fake *iscsiadmtest.Fake
	disk *sgiotest.Disk
	env  *resource.Env
	ctx  context.Context
	dir  string
}

func newLab(t *testing.T) *lab {
	fake := iscsiadmtest.New(t, iscsiadmtest.State{Targets: []iscsiadmtest.Target{{
		Portal: portal, Tag: "1", Name: iqn, User: "node-a", Secret: secret,
		MutualUser: "tgt", MutualSecret: mutual, LUNs: []uint64{0},
	}}})
	env := resource.NewEnv()
	ctx, cancel := context.WithTimeout(resource.WithEnv(context.Background(), env), 20*time.Second)
	t.Cleanup(cancel)
	return &lab{fake: fake, disk: sgiotest.New(64), env: env, ctx: ctx, dir: t.TempDir()}
}

func (l *lab) secret(t *testing.T, name, value string, mode os.FileMode) string {
	p := filepath.Join(l.dir, name)
	require.NoError(t, os.WriteFile(p, []byte(value+"\n"), mode))
	require.NoError(t, os.Chmod(p, mode))
	return p
}

func (l *lab) spec(t *testing.T, params map[string]string) resource.Spec {
	p := map[string]string{
		"portal": "10.200.0.1", "target": iqn, "iscsiadm": l.fake.Bin, "dev_dir": l.fake.DevDir,
		"user": "node-a", "secret_file": l.secret(t, "secret", secret, 0o600),
	}
	for k, v := range params {
		if v == "" {
			delete(p, k)
		} else {
			p[k] = v
		}
	}
	return resource.Spec{Type: iscsi.Type, Name: "disk", Params: p}
}

// build makes the resource, pointing iscsiadm at the fake and PR commands
// at the fake disk.
func (l *lab) build(t *testing.T, s resource.Spec) *iscsi.ISCSI {
	r, err := resource.Build(s, nil)
	require.NoError(t, err)
	is := r.(*iscsi.ISCSI)
	iscsi.SetTestHooks(is, l.fake.Env(), func(path string) (device.Device, error) {
		return device.NewKernel(sgio.New(path, 3, l.disk.Ioctl, nil)), nil
	})
	return is
}

func TestStartMonitorStopMutualCHAP(t *testing.T) {
	l := newLab(t)
	r := l.build(t, l.spec(t, map[string]string{"mutual_user": "tgt", "mutual_secret_file": l.secret(t, "mutual", mutual, 0o400)}))
	require.NoError(t, r.Start(l.ctx))
	dev, ok := l.env.Get("disk.device")
	require.True(t, ok)
	assert.Equal(t, filepath.Join(l.fake.DevDir, "sda"), dev)

	st := l.fake.State(t)
	var order []string
	for _, c := range st.Calls {
		j := strings.Join(c, " ")
		switch {
		case strings.Contains(j, "--discover"):
			order = append(order, "discover")
		case strings.Contains(j, "-m node") && strings.Contains(j, "node.session.auth.password_in"):
			order = append(order, "mutual")
		case strings.Contains(j, "--login"):
			order = append(order, "login")
		}
	}
	assert.Equal(t, []string{"discover", "mutual", "login"}, order, "CHAP after discovery, before login")
	assert.Equal(t, "5", st.Nodes[iqn+"|"+portal]["node.session.timeo.replacement_timeout"])

	status, err := r.Monitor(l.ctx)
	require.NoError(t, err)
	assert.Equal(t, resource.StatusRunning, status)
	require.NoError(t, r.Start(l.ctx), "start of a running resource succeeds")

	require.NoError(t, r.Stop(l.ctx))
	_, ok = l.env.Get("disk.device")
	assert.False(t, ok)
	require.NoError(t, r.Stop(l.ctx), "stop of a stopped resource succeeds")
	status, err = r.Monitor(l.ctx)
	require.NoError(t, err)
	assert.Equal(t, resource.StatusStopped, status)
}

func TestWrongSecretNamesExit24(t *testing.T) {
	l := newLab(t)
	r := l.build(t, l.spec(t, map[string]string{"secret_file": l.secret(t, "bad", "not-the-secret", 0o600)}))
	err := r.Start(l.ctx)
	require.Error(t, err)
	assert.Contains(t, err.Error(), "exit 24 (authorization failure)")
	assert.Contains(t, err.Error(), "check the CHAP user and secret")
	assert.NotContains(t, err.Error(), "not-the-secret")
	_, ok := l.env.Get("disk.device")
	assert.False(t, ok)
}

func TestMonitorFailedSession(t *testing.T) {
	l := newLab(t)
	r := l.build(t, l.spec(t, nil))
	require.NoError(t, r.Start(l.ctx))
	l.fake.Update(t, func(s *iscsiadmtest.State) { s.Sessions[0].State = "FAILED" })
	status, err := r.Monitor(l.ctx)
	assert.Equal(t, resource.StatusFailed, status)
	assert.ErrorContains(t, err, "path to the target is down")
	l.fake.Update(t, func(s *iscsiadmtest.State) { s.Sessions[0].State = "LOGGED_IN" })
	require.NoError(t, os.Remove(filepath.Join(l.fake.DevDir, "sda")))
	status, _ = r.Monitor(l.ctx)
	assert.Equal(t, resource.StatusFailed, status)
}

func TestSpecErrors(t *testing.T) {
	l := newLab(t)
	for _, c := range []struct {
		desc   string
		params map[string]string
		want   string
	}{
		{"group readable secret", map[string]string{"secret_file": l.secret(t, "open", secret, 0o640)}, "chmod 600 " + filepath.Join(l.dir, "open")},
		{"user without secret", map[string]string{"secret_file": ""}, "params.secret_file and user must be set together"},
		{"missing portal", map[string]string{"portal": ""}, "params.portal is missing"},
		{"not an iqn", map[string]string{"target": "disk"}, "is not an iSCSI name"},
		{"bad key", map[string]string{"pr_key": "zz"}, "params.pr_key"},
		{"typo", map[string]string{"portl": "x"}, "params.portl is not a iscsi parameter"},
		{"mutual without one-way", map[string]string{"user": "", "secret_file": "", "mutual_user": "t", "mutual_secret_file": l.secret(t, "m", "x", 0o600)}, "needs one-way CHAP"},
	} {
		t.Run(c.desc, func(t *testing.T) {
			err := l.spec(t, c.params).Validate()
			require.Error(t, err)
			assert.Contains(t, err.Error(), c.want)
		})
	}
}

const ourKey, peerKey = 0xa1, 0xb2

func TestRegistersKeyOnNewSessionOnlyWhileEntitled(t *testing.T) {
	l := newLab(t)
	r := l.build(t, l.spec(t, map[string]string{"pr_key": "0xa1"}))
	require.NoError(t, r.Start(l.ctx))
	assert.Equal(t, uint64(ourKey), l.disk.MyKey, "registered on the new session")

	// Same session: Monitor does not register again.
	l.disk.MyKey = 0
	_, err := r.Monitor(l.ctx)
	require.NoError(t, err)
	assert.Zero(t, l.disk.MyKey)

	// Session lost and logged in again (new SID, new I_T nexus without
	// registration): Monitor registers again.
	l.fake.Update(t, func(s *iscsiadmtest.State) { s.Sessions[0].SID = 9 })
	status, err := r.Monitor(l.ctx)
	require.NoError(t, err)
	assert.Equal(t, resource.StatusRunning, status)
	assert.Equal(t, uint64(ourKey), l.disk.MyKey)

	// The peer fenced us (preempted, holds the reservation) and we log in
	// anew: no registration, the resource fails.
	l.disk.Lock()
	l.disk.MyKey, l.disk.OtherKeys, l.disk.ResKey, l.disk.ResType = 0, []uint64{peerKey}, peerKey, 5
	l.disk.Unlock()
	l.fake.Update(t, func(s *iscsiadmtest.State) { s.Sessions[0].SID = 10 })
	status, err = r.Monitor(l.ctx)
	assert.Equal(t, resource.StatusFailed, status)
	assert.ErrorContains(t, err, "another node holds the reservation")
	assert.Zero(t, l.disk.MyKey, "never registers while another key holds the reservation")

	require.NoError(t, r.Stop(l.ctx))
	err = r.Start(l.ctx)
	assert.ErrorContains(t, err, "not entitled")
	assert.Zero(t, l.disk.MyKey)
}

func TestNeverRegistersWhenFenced(t *testing.T) {
	l := newLab(t)
	r := l.build(t, l.spec(t, map[string]string{"pr_key": "0xa1"}))
	l.env.Set(iscsi.FencedKey, "true")
	err := r.Start(l.ctx)
	assert.ErrorContains(t, err, "marked this node fenced")
	assert.Zero(t, l.disk.MyKey)
	for _, c := range l.disk.CDBs {
		assert.NotEqual(t, byte(0x5f), c[0], "no PERSISTENT RESERVE OUT at all")
	}
}

// A takeover on the standby finds its session logged in: Start only lists
// the session and resolves the device, no discovery, node update or login.
func TestStartOnLoggedInSessionOnlyResolvesDevice(t *testing.T) {
	l := newLab(t)
	r := l.build(t, l.spec(t, map[string]string{"pr_key": "0xa1"}))
	require.NoError(t, r.Start(l.ctx))
	before := len(l.fake.State(t).Calls)
	l.disk.MyKey = 0

	require.NoError(t, r.Start(l.ctx))
	calls := l.fake.State(t).Calls[before:]
	require.NotEmpty(t, calls)
	for _, c := range calls {
		assert.Equal(t, []string{"-m", "session", "-P", "3"}, c, "only the session listing")
	}
	dev, ok := l.env.Get("disk.device")
	require.True(t, ok)
	assert.Equal(t, filepath.Join(l.fake.DevDir, "sda"), dev)
	assert.Equal(t, uint64(ourKey), l.disk.MyKey, "the key is still registered at start")

	// Logged in but the device node is gone: the full attach runs again.
	require.NoError(t, os.Remove(filepath.Join(l.fake.DevDir, "sda")))
	before = len(l.fake.State(t).Calls)
	// The fake makes no device for an existing session, so the device
	// wait ends at this deadline; only the login call matters here.
	ctx, cancel := context.WithTimeout(l.ctx, 5*time.Second)
	defer cancel()
	_ = r.Start(ctx)
	var login bool
	for _, c := range l.fake.State(t).Calls[before:] {
		login = login || strings.Contains(strings.Join(c, " "), "--login")
	}
	assert.True(t, login, "no device: Start logs in again")
}
