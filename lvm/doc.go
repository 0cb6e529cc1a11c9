// Package lvm provisions LUN backing volumes through the lvm2 command-line
// tools: it reads pvs, vgs and lvs reports as JSON (lvmreport(7): the
// "--reportformat json" output, with "--units b --nosuffix" so that sizes
// are plain byte counts) into typed values, and creates, extends, shrinks,
// activates and removes linear and thin LVs with lvcreate, lvextend,
// lvresize, lvchange and lvremove (lvm(8), lvs(8) for the lv_attr bits,
// lvmthin(7)).
//
// It is a thin adapter: no Go library for lvm2 is both small and kept up
// (the cgo ones bind liblvm2app, which lvm2 dropped in 2.03; topolvm's
// lvmd is an internal package of a Kubernetes driver). What it adds to
// the bare tools:
//
//  1. Names are checked against lvm(8)'s VALID NAMES before any call, so a
//     bad name is refused with the field it came from.
//  2. Every call runs under a deadline (Options.Timeout) in its own
//     process group; an lvm that hangs (a stuck lock, a PV whose I/O never
//     returns) comes back as ErrTimeout naming the command.
//  3. Failures are *OpError values carrying the argv, lvm's stderr, a
//     sentinel callers can branch on (ErrNoSpace, ErrExists, ErrNotFound,
//     ErrInUse...) and the fix.
//  4. Remove, Deactivate and a shrinking Resize refuse an LV that a LUN
//     still uses (Options.InUse, asked of the caller, the target) or that
//     is open (lv_attr); shrinking is refused unless the caller forces it,
//     since it destroys the data past the new end.
//
// The runtime, in order:
//
//  1. Build a Client with New; Options.InUse should ask the target which
//     LUN (if any) is backed by vg/lv.
//  2. Create (linear), or CreateThinPool once and then CreateThin.
//  3. Activate (lvcreate already activates, unless NoDeviceMapper), then
//     Device for the /dev/VG/LV path and size to hand to the backstore.
//  4. Resize to grow; Remove when the LUN is gone.
//
// Options.NoDeviceMapper runs lvm2 in metadata-only mode
// (--driverloaded n, lvcreate -an -Zn) for hosts whose kernel has no
// device-mapper: everything but activation, thin pools and device nodes
// works there. Labs inside VMs use the real mode.
package lvm
