//go:build unix

package control

import (
	"net"
	"sync"
	"syscall"
)

var umaskMu sync.Mutex

func listenUnixPrivate(path string) (net.Listener, error) {
	umaskMu.Lock()
	defer umaskMu.Unlock()
	old := syscall.Umask(0o177)
	defer syscall.Umask(old)
	return net.Listen("unix", path)
}
