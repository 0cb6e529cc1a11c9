package unixsock

import (
	"context"
	"net"
	"net/http"
	"time"
)

// HTTPClient returns an HTTP client of the daemon API served on the socket
// at path (the host part of request URLs is ignored). It keeps no idle
// connection: a long-lived caller (a lab polling status, tandemctl --wait)
// would otherwise pin one connection, and one goroutine and fd in the
// daemon, per client it ever made.
func HTTPClient(path string) *http.Client {
	return &http.Client{Transport: &http.Transport{
		DisableKeepAlives: true,
		DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			var d net.Dialer
			return d.DialContext(ctx, "unix", path)
		},
	}}
}

// IdleTimeout is how long the daemons' HTTP servers (the admin and control
// sockets, the metrics endpoints) keep an idle keep-alive connection: a
// client that went away without closing must not hold a daemon's fds.
const IdleTimeout = 30 * time.Second
