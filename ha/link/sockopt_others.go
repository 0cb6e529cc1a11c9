//go:build !linux

package link

import (
	"errors"
	"net"
	"net/netip"
)

var errUnimplemented = errors.New("link: only implemented on linux")

func sockopts(int, string, bool) error                 { return errUnimplemented }
func joinGroup(*net.UDPConn, string, netip.Addr) error { return errUnimplemented }
