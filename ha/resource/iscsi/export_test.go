package iscsi

import "github.com/tandem-ha/tandem/initiator/device"

// SetTestHooks points r's iscsiadm at a fake (env) and its PR commands at
// open.
func SetTestHooks(r *ISCSI, env []string, open func(string) (device.Device, error)) {
	r.cfg.Client.Env = env
	r.cfg.Client.PollInterval = 5e6
	r.cfg.OpenDevice = open
}
