package unixsock

import (
	"errors"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"syscall"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestListenCreatesPrivateSocket(t *testing.T) {
	path := filepath.Join(t.TempDir(), "run", "d.sock")
	l, err := Listen(path)
	require.NoError(t, err)
	defer l.Close()

	fi, err := os.Stat(path)
	require.NoError(t, err)
	assert.NotZero(t, fi.Mode()&os.ModeSocket)
	assert.Equal(t, os.FileMode(0o600), fi.Mode().Perm())
	di, err := os.Stat(filepath.Dir(path))
	require.NoError(t, err)
	assert.Equal(t, os.FileMode(0o755), di.Mode().Perm()&^currentUmask())

	c, err := net.Dial("unix", path)
	require.NoError(t, err, "the socket must accept")
	c.Close()
}

func TestListenRestoresUmask(t *testing.T) {
	before := currentUmask()
	l, err := Listen(filepath.Join(t.TempDir(), "d.sock"))
	require.NoError(t, err)
	l.Close()
	assert.Equal(t, before, currentUmask())
}

func TestListenRefusesLiveSocket(t *testing.T) {
	path := filepath.Join(t.TempDir(), "d.sock")
	l, err := Listen(path)
	require.NoError(t, err)
	defer l.Close()

	_, err = Listen(path)
	require.ErrorIs(t, err, ErrInUse)
	var inUse *InUseError
	require.True(t, errors.As(err, &inUse))
	assert.Equal(t, path, inUse.Path)
	assert.Equal(t, os.Getpid(), inUse.PID, "SO_PEERCRED names the listening process")
	assert.NotEmpty(t, inUse.Comm)
	assert.Contains(t, err.Error(), path)
	assert.Contains(t, err.Error(), "pid "+strconv.Itoa(os.Getpid()))

	// The live socket still serves.
	c, err := net.Dial("unix", path)
	require.NoError(t, err)
	c.Close()
}

func TestListenReplacesStaleSocket(t *testing.T) {
	path := filepath.Join(t.TempDir(), "d.sock")
	dead, err := net.ListenUnix("unix", &net.UnixAddr{Name: path, Net: "unix"})
	require.NoError(t, err)
	dead.SetUnlinkOnClose(false) // a crashed daemon leaves its socket file
	require.NoError(t, dead.Close())
	_, err = os.Lstat(path)
	require.NoError(t, err, "the stale socket file must exist before Listen")

	l, err := Listen(path)
	require.NoError(t, err)
	defer l.Close()
	c, err := net.Dial("unix", path)
	require.NoError(t, err)
	c.Close()
}

func TestListenLeavesOtherFilesAlone(t *testing.T) {
	path := filepath.Join(t.TempDir(), "d.sock")
	require.NoError(t, os.WriteFile(path, []byte("data"), 0o644))

	_, err := Listen(path)
	require.ErrorContains(t, err, "is not a socket")
	assert.NotErrorIs(t, err, ErrInUse)
	b, err := os.ReadFile(path)
	require.NoError(t, err)
	assert.Equal(t, "data", string(b))
}

func currentUmask() os.FileMode {
	umaskMu.Lock()
	defer umaskMu.Unlock()
	m := syscall.Umask(0)
	syscall.Umask(m)
	return os.FileMode(m)
}
