package mqres

import (
	"net"
	"os"
	"path/filepath"
	"strconv"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/tandem-ha/tandem/mqres/internal/stub"
)

// TestTCPListener: with a TCP stanza in qm.ini the queue manager serves
// put/get on that port while it runs, and the listener ends with it.
func TestTCPListener(t *testing.T) {
	l := newLab(t)
	l.create()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	port := ln.Addr().(*net.TCPAddr).Port
	require.NoError(t, ln.Close())
	ini := filepath.Join(SetupFor(l.qm, l.shared).DataDir, l.qm, "qm.ini")
	f, err := os.OpenFile(ini, os.O_APPEND|os.O_WRONLY, 0)
	require.NoError(t, err)
	_, err = f.WriteString("TCP:\n   Port=" + strconv.Itoa(port) + "\n")
	require.NoError(t, err)
	require.NoError(t, f.Close())

	r := l.resource(l.a, nil)
	require.NoError(t, r.Start(ctx(t)))
	addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
	conn, err := net.Dial("tcp", addr)
	require.NoError(t, err)
	c := stub.NewClient(conn)
	require.NoError(t, c.Put("ORDERS", []byte("m1")))
	c.Close()
	assert.Equal(t, []string{"m1"}, drain(t, l.a, "ORDERS"), "a TCP put is on the persistent queue")

	require.NoError(t, r.Stop(ctx(t)))
	_, err = net.Dial("tcp", addr)
	assert.Error(t, err, "the listener ends with the queue manager")
}
