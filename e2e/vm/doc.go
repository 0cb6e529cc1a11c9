// Package vm is tandem's qemu lab: it builds a small guest image from
// Debian packages (a linux-image package unpacked with dpkg-deb, never
// installed on the host; busybox-static; open-iscsi; e2fsprogs) plus the
// project's static Go binaries, boots guests with software emulation (TCG)
// on a bridge in a network namespace the lab owns (e2e/internal/netlab:
// bridge, taps, qemu and the test's host-side processes all live there,
// nothing in the root namespace), runs commands in them over a virtio-serial
// control channel, and tears everything down again.
//
// Layout: proto.go is the control protocol (pure), ldd.go and modules.go
// parse the host tools' output (pure), image.go builds and caches the
// initramfs, lab.go owns the namespace, bridge and taps, vm.go runs qemu and
// client.go talks to the guest agent (cmd/vmagent), which runs inside.
//
// Every process the lab starts is stopped by its own PID; qemu also gets
// PDEATHSIG so a killed test binary takes its guests along.
package vm
