// Package sdnotify tells systemd that a daemon is ready (sd_notify(3),
// READY=1), so that a Type=notify unit is "active" only once the daemon
// listens and units ordered after it start when they can connect. It is
// the whole protocol we need: one datagram to $NOTIFY_SOCKET.
package sdnotify

import (
	"fmt"
	"log/slog"
	"net"
	"os"
)

// Ready sends READY=1 to the socket named by $NOTIFY_SOCKET; without that
// variable (not started by systemd, or not Type=notify) it does nothing.
// A failure is logged, not returned: the daemon serves anyway, and
// systemd's TimeoutStartSec reports the missing notification.
func Ready(log *slog.Logger) {
	if err := Notify(os.Getenv("NOTIFY_SOCKET"), "READY=1"); err != nil && log != nil {
		log.Warn("systemd readiness not sent", "err", err)
	}
}

// Notify sends state (newline-separated VAR=value pairs) to socket, a path
// or, with a leading '@', an abstract socket. An empty socket is a no-op.
func Notify(socket, state string) error {
	if socket == "" {
		return nil
	}
	addr := &net.UnixAddr{Name: socket, Net: "unixgram"}
	if socket[0] == '@' {
		addr.Name = "\x00" + socket[1:]
	}
	c, err := net.DialUnix("unixgram", nil, addr)
	if err != nil {
		return fmt.Errorf("notify systemd on %s: %w (is NotifyAccess= set to main in the unit?)", socket, err)
	}
	defer c.Close()
	if _, err := c.Write([]byte(state)); err != nil {
		return fmt.Errorf("notify systemd on %s: %w", socket, err)
	}
	return nil
}
