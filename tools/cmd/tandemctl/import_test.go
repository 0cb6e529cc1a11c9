package main

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/tandem-ha/tandem/ha/config"
	tconfig "github.com/tandem-ha/tandem/target/config"
)

func runCtl(t *testing.T, args ...string) (string, error) {
	t.Helper()
	var out bytes.Buffer
	root := newRoot()
	root.SetOut(&out)
	root.SetErr(&out)
	root.SetArgs(args)
	err := root.Execute()
	return out.String(), err
}

func mode(t *testing.T, p string) os.FileMode {
	st, err := os.Stat(p)
	require.NoError(t, err)
	return st.Mode().Perm()
}

// The seed's /etc/ha.d: agent.yaml that loads on both nodes, the key in a
// 0600 file and nowhere in the output.
func TestImportHeartbeat(t *testing.T) {
	src := t.TempDir()
	require.NoError(t, os.CopyFS(src, os.DirFS("../../importer/heartbeat/testdata/seed")))
	require.NoError(t, os.Chmod(filepath.Join(src, "authkeys"), 0o644))
	dir := t.TempDir()
	out := filepath.Join(dir, "agent.yaml")
	stdout, err := runCtl(t, "import", "heartbeat", src, "-o", out, "--json", "--hosts", "")
	require.NoError(t, err, stdout)
	var rep importReport
	require.NoError(t, json.Unmarshal([]byte(stdout), &rep), stdout)
	assert.Equal(t, "ok", rep.Check)
	require.Len(t, rep.Secrets, 1)
	assert.Equal(t, os.FileMode(0o600), mode(t, rep.Secrets[0]))
	assert.NotContains(t, stdout, "PutYourSuperSecretKeyHere")
	assert.Contains(t, stdout, `"kind": "warning"`)
	c, err := config.Load(out, config.Options{Node: "MQSlave"})
	require.NoError(t, err)
	assert.Equal(t, "MQMaster", c.Peer)

	// Existing files are not overwritten without --force (negative control).
	_, err = runCtl(t, "import", "heartbeat", src, "-o", out, "--hosts", "")
	assert.ErrorContains(t, err, "pass --force")
	stdout, err = runCtl(t, "import", "heartbeat", src, "-o", out, "--hosts", "", "--force", "--mq-qmgr", "QMHA")
	require.NoError(t, err)
	assert.Contains(t, stdout, "check: the written configuration loads")
	assert.Contains(t, stdout, "warning authkeys: mode 0644")
}

func TestImportHeartbeatUcastAddresses(t *testing.T) {
	src := t.TempDir()
	require.NoError(t, os.CopyFS(src, os.DirFS("../../importer/heartbeat/testdata/crc")))
	hosts := filepath.Join(t.TempDir(), "hosts")
	require.NoError(t, os.WriteFile(hosts, []byte("127.0.0.1 localhost\n192.0.2.1 a a.example # node a\n"), 0o644))
	out := filepath.Join(t.TempDir(), "agent.yaml")
	stdout, err := runCtl(t, "import", "heartbeat", src, "-o", out, "--hosts", hosts, "--address", "b=192.0.2.2")
	require.NoError(t, err, stdout)
	c, err := config.Load(out, config.Options{Node: "a"})
	require.NoError(t, err)
	assert.Equal(t, "192.0.2.2", c.Links[0].Peer.String())
	_, err = runCtl(t, "import", "heartbeat", src, "-o", out, "--address", "192.0.2.2")
	assert.ErrorContains(t, err, "write NODE=IP")
}

func TestImportTgt(t *testing.T) {
	src, err := filepath.Abs("../../importer/tgt/testdata/doc/etc/tgt/targets.conf")
	require.NoError(t, err)
	dir := t.TempDir()
	out := filepath.Join(dir, "target.yaml")
	stdout, err := runCtl(t, "import", "tgt", src, "-o", out)
	require.NoError(t, err, stdout)
	assert.Contains(t, stdout, "check: the written configuration loads")
	assert.NotContains(t, stdout, "websecret1234")
	for _, s := range []string{"store.web-in.secret", "store.mail-in.secret", "store.mail-out.secret"} {
		assert.Equal(t, os.FileMode(0o600), mode(t, filepath.Join(dir, "secrets", s)), s)
	}
	cfg, err := tconfig.Load(out)
	require.NoError(t, err)
	assert.Equal(t, []byte("websecret1234"), cfg.Targets[0].CHAP.Secret)

	stdout, err = runCtl(t, "import", "tgt", src, "-o", out, "--force", "--json")
	require.NoError(t, err)
	var rep importReport
	require.NoError(t, json.Unmarshal([]byte(stdout), &rep), stdout)
	assert.Len(t, rep.Secrets, 3)
	assert.NotEmpty(t, rep.Findings)
}
