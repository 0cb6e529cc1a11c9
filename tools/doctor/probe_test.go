package doctor

import (
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/tandem-ha/tandem/target/targettest"
)

func TestMain(m *testing.M) { os.Exit(targettest.Run(m)) }

const chapIQN = "iqn.2026-12.io.tandem:doctor"

// startCHAPTarget runs the real tandem-target with one LUN behind CHAP
// user "node" and the returned secret. targettest.Start serves no CHAP,
// so its binary runs here with a config of our own.
func startCHAPTarget(t *testing.T) (addr, secret string) {
	bin := targettest.Binary(t)
	dir := t.TempDir()
	secret = "correct-horse-battery"
	require.NoError(t, os.WriteFile(filepath.Join(dir, "chap"), []byte(secret), 0o600))
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	addr = l.Addr().String()
	l.Close()
	cfg := fmt.Sprintf(`listen: [%q]
state_dir: %q
admin_socket: %q
targets:
  - name: %s
    chap: {user: node, secret_file: %q}
    luns:
      - {id: 0, path: %q, size: 4194304, block_size: 512}
`, addr, filepath.Join(dir, "state"), filepath.Join(dir, "admin.sock"), chapIQN, filepath.Join(dir, "chap"), filepath.Join(dir, "lun0.img"))
	cfgPath := filepath.Join(dir, "target.yaml")
	require.NoError(t, os.WriteFile(cfgPath, []byte(cfg), 0o644))
	logf, err := os.Create(filepath.Join(dir, "target.log"))
	require.NoError(t, err)
	cmd := exec.Command(bin, "--config", cfgPath)
	cmd.Stdout, cmd.Stderr = logf, logf
	require.NoError(t, cmd.Start())
	logf.Close()
	done := make(chan struct{})
	go func() { _ = cmd.Wait(); close(done) }()
	t.Cleanup(func() { _ = cmd.Process.Kill(); <-done })
	// The test gives up after a minute; the target's speed is not judged.
	require.Eventually(t, func() bool {
		c, err := net.DialTimeout("tcp", addr, time.Second)
		if err == nil {
			c.Close()
		}
		return err == nil
	}, time.Minute, 20*time.Millisecond, "tandem-target did not listen")
	return addr, secret
}

// TestLoginWithConfiguredCHAP: the doctor's login probe against a real
// tandem-target passes with the right secret (and sees reservation type
// 5) and fails, with its fix, with a wrong one.
func TestLoginWithConfiguredCHAP(t *testing.T) {
	addr, secret := startCHAPTarget(t)
	dir := t.TempDir()
	good, bad := filepath.Join(dir, "good"), filepath.Join(dir, "bad")
	require.NoError(t, os.WriteFile(good, []byte(secret), 0o600))
	require.NoError(t, os.WriteFile(bad, []byte("wrong-secret-123"), 0o600))
	s := session{what: "resource fence", portal: addr, target: chapIQN, initiator: "iqn.2026-12.io.tandem:alpha", user: "node", secretFile: good}

	lf := tryLogin(t.Context(), s, 30*time.Second)
	require.Empty(t, lf.Err)
	require.Empty(t, lf.PRErr)
	assert.Contains(t, lf.PRTypes, uint8(5))
	f := goodNode()
	f.Logins = []LoginFact{lf}
	r := find(t, Run(f), "target_login: resource fence")
	assert.Equal(t, Pass, r.Status, r.Detail)

	s.secretFile = bad
	lf = tryLogin(t.Context(), s, 30*time.Second)
	require.NotEmpty(t, lf.Err)
	f.Logins = []LoginFact{lf}
	r = find(t, Run(f), "target_login: resource fence")
	assert.Equal(t, Fail, r.Status)
	assert.Contains(t, r.Detail, "with the configured CHAP failed")
	assert.Contains(t, r.Fix, "secret_file match the target's CHAP")
	t.Logf("wrong secret: %s", r.Detail)
}
