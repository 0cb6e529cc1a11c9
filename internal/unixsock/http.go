package unixsock

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
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

// ErrUnreachable wraps a failure to reach the daemon (no socket, refused,
// a timeout): the caller adds which daemon and how to start it.
var ErrUnreachable = errors.New("daemon unreachable")

// ReplyError is a reply other than 2xx: the status and the daemon's
// {"error": "..."} text, or the status line when there is none.
type ReplyError struct {
	Status  int
	Message string
}

func (e *ReplyError) Error() string { return e.Message }

// Call is one request of a daemon's JSON API over hc: body (nil: none)
// sent as JSON, a 2xx reply decoded into out (nil: ignored). Errors are
// ErrUnreachable (wrapped), *ReplyError, or a read or decode failure.
func Call(ctx context.Context, hc *http.Client, method, url string, body, out any) error {
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return err
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, url, rd)
	if err != nil {
		return err
	}
	resp, err := hc.Do(req)
	if err != nil {
		return fmt.Errorf("%w: %w", ErrUnreachable, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 16<<20))
	if err != nil {
		return fmt.Errorf("read reply: %w", err)
	}
	if resp.StatusCode/100 != 2 {
		var e struct {
			Error string `json:"error"`
		}
		if json.Unmarshal(b, &e) != nil || e.Error == "" {
			e.Error = resp.Status
		}
		return &ReplyError{Status: resp.StatusCode, Message: e.Error}
	}
	if out != nil {
		if err := json.Unmarshal(b, out); err != nil {
			return fmt.Errorf("decode reply to %s %s: %w", method, req.URL.Path, err)
		}
	}
	return nil
}
