package unixsock

import (
	"net"
	"os"
	"strconv"
	"strings"
	"syscall"
)

// peer reports the process behind a connected unix socket: SO_PEERCRED
// carries the pid of the process that called listen.
func peer(c net.Conn) (pid int, comm string) {
	uc, ok := c.(*net.UnixConn)
	if !ok {
		return 0, ""
	}
	raw, err := uc.SyscallConn()
	if err != nil {
		return 0, ""
	}
	var cred *syscall.Ucred
	_ = raw.Control(func(fd uintptr) {
		cred, _ = syscall.GetsockoptUcred(int(fd), syscall.SOL_SOCKET, syscall.SO_PEERCRED)
	})
	if cred == nil || cred.Pid <= 0 {
		return 0, ""
	}
	b, _ := os.ReadFile("/proc/" + strconv.Itoa(int(cred.Pid)) + "/comm")
	return int(cred.Pid), strings.TrimSpace(string(b))
}
