package unixsock

import (
	"net"
	"net/http"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestHTTPClientLeavesNoConnection: a caller that makes a client per
// request (a lab polling status) leaves no connection open in the daemon,
// which held one goroutine and fd per client it ever saw (found by make
// soak: 35 per round). The control is a default keep-alive client.
func TestHTTPClientLeavesNoConnection(t *testing.T) {
	path := filepath.Join(t.TempDir(), "api.sock")
	ln, err := Listen(path)
	require.NoError(t, err)
	var mu sync.Mutex
	open := map[any]bool{}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { _, _ = w.Write([]byte("ok")) }),
		ConnState: func(c net.Conn, s http.ConnState) {
			mu.Lock()
			defer mu.Unlock()
			open[c] = s != http.StateClosed && s != http.StateHijacked
			if !open[c] {
				delete(open, c)
			}
		}}
	go func() { _ = srv.Serve(ln) }()
	t.Cleanup(func() { _ = srv.Close() })
	openConns := func() int { mu.Lock(); defer mu.Unlock(); return len(open) }

	get := func(c *http.Client) {
		resp, err := c.Get("http://daemon/")
		require.NoError(t, err)
		require.NoError(t, resp.Body.Close())
	}
	for range 5 {
		get(HTTPClient(path))
	}
	assert.Eventually(t, func() bool { return openConns() == 0 }, 5*time.Second, 5*time.Millisecond, "connections left in the server")

	keepAlive := HTTPClient(path)
	keepAlive.Transport.(*http.Transport).DisableKeepAlives = false
	get(keepAlive)
	assert.Equal(t, 1, openConns(), "control: a keep-alive client leaves its connection idle in the server")
}
