//go:build !linux

package agent

import "errors"

func reboot() error { return errors.New("reboot: only implemented on linux") }
