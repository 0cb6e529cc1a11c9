package vm

// LVMModules are the kernel modules a guest needs for LVM on a virtio
// disk (Config.Drives): the disk itself, device-mapper and thin pools.
var LVMModules = []string{"virtio_blk", "dm_mod", "dm_thin_pool"}

// LVMHostBinaries are lvm2's one binary and thin_check, which lvm runs
// when it activates a thin pool (thin-provisioning-tools).
var LVMHostBinaries = []string{"/sbin/lvm", "/usr/sbin/thin_check"}

// LVMConfPath is where lvm2 reads LVMConf.
const LVMConfPath = "/etc/lvm/lvm.conf"

// LVMConf is the guest's lvm.conf: there is no udev in the guest, so lvm
// scans /dev and makes the device nodes itself.
const LVMConf = `devices {
	obtain_device_list_from_udev = 0
	scan = [ "/dev" ]
}
activation {
	udev_sync = 0
	udev_rules = 0
	monitoring = 0
}
global {
	use_lvmetad = 0
}
`

// WithLVM returns o with what LVM in the guest needs added: LVMModules,
// LVMHostBinaries and LVMConf. Nil lists in o stand for the defaults, as
// in BuildImage.
func WithLVM(o ImageOptions) ImageOptions {
	if o.Modules == nil {
		o.Modules = DefaultModules
	}
	if o.HostBinaries == nil {
		o.HostBinaries = DefaultHostBinaries
	}
	o.Modules = append(append([]string(nil), o.Modules...), LVMModules...)
	o.HostBinaries = append(append([]string(nil), o.HostBinaries...), LVMHostBinaries...)
	o.Files = append(append([]File(nil), o.Files...), File{Path: LVMConfPath, Data: []byte(LVMConf), Mode: 0o644})
	return o
}
