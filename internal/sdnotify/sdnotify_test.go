package sdnotify

import (
	"bytes"
	"log/slog"
	"net"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func listen(t *testing.T, name string) *net.UnixConn {
	t.Helper()
	c, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: name, Net: "unixgram"})
	require.NoError(t, err)
	t.Cleanup(func() { c.Close() })
	return c
}

func read(t *testing.T, c *net.UnixConn) string {
	t.Helper()
	buf := make([]byte, 256)
	n, err := c.Read(buf) // the datagram is queued before Notify returns
	require.NoError(t, err)
	return string(buf[:n])
}

func TestReadyPath(t *testing.T) {
	sock := filepath.Join(t.TempDir(), "notify")
	c := listen(t, sock)
	t.Setenv("NOTIFY_SOCKET", sock)
	Ready(nil)
	assert.Equal(t, "READY=1", read(t, c))
}

func TestNotifyAbstract(t *testing.T) {
	name := "tandem-sdnotify-test-" + filepath.Base(t.TempDir())
	c := listen(t, "\x00"+name)
	require.NoError(t, Notify("@"+name, "READY=1\nSTATUS=listening"))
	assert.Equal(t, "READY=1\nSTATUS=listening", read(t, c))
}

func TestNoSocketIsNoop(t *testing.T) {
	assert.NoError(t, Notify("", "READY=1"))
}

func TestReadyLogsAFailure(t *testing.T) {
	t.Setenv("NOTIFY_SOCKET", filepath.Join(t.TempDir(), "absent"))
	var buf bytes.Buffer
	Ready(slog.New(slog.NewTextHandler(&buf, nil)))
	assert.Contains(t, buf.String(), "systemd readiness not sent")
}

func TestMissingSocketSaysWhere(t *testing.T) {
	sock := filepath.Join(t.TempDir(), "absent")
	err := Notify(sock, "READY=1")
	require.Error(t, err)
	assert.Contains(t, err.Error(), sock)
}
