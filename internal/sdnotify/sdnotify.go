// Package sdnotify tells systemd that a daemon is ready (sd_notify(3),
// READY=1), so that a Type=notify unit is "active" only once the daemon
// listens and units ordered after it start when they can connect. It is
// the whole protocol we need: one datagram to $NOTIFY_SOCKET.
package sdnotify

import (
	"fmt"
	"net"
	"os"
)

// Ready sends READY=1 to the socket named by $NOTIFY_SOCKET. Without that
// variable (not started by systemd, or not Type=notify) it does nothing.
func Ready() error { return Notify(os.Getenv("NOTIFY_SOCKET"), "READY=1") }

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
