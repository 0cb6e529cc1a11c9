// Package sgio sends SCSI commands to a Linux block device (/dev/sdX)
// with the SG_IO ioctl (sg(4), include/scsi/sg.h): INQUIRY, TEST UNIT
// READY, READ CAPACITY (16), PERSISTENT RESERVE IN/OUT and READ/WRITE (16)
// for a disk heartbeat.
//
// Commands go over the very I_T nexus that carries the kernel's I/O to the
// device, which is what persistent reservations need: a registration
// belongs to one I_T nexus (SPC-4 section 5.12.6), so a fencing key must be
// registered through the session that carries the filesystem.
//
// The decisions (sg_io_hdr layout, status, host and driver status, sense)
// are pure and tested without a device; Open and the ioctl itself are
// Linux only (sgio_others.go is a stub).
package sgio
