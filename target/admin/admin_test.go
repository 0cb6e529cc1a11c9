package admin

import (
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/tandem-ha/tandem/internal/unixsock"
)

// The socket's mode and stale handling are unixsock's (tested there); the
// admin wrapper must keep its error and point at the config key.
func TestListenNamesConfigKey(t *testing.T) {
	path := filepath.Join(t.TempDir(), "run", "t.sock")
	l, err := Listen(path)
	require.NoError(t, err)
	defer l.Close()

	_, err = Listen(path)
	require.ErrorIs(t, err, unixsock.ErrInUse)
	require.ErrorContains(t, err, path)
	require.ErrorContains(t, err, "admin_socket")
}
