// Package scsi holds the SCSI definitions that both ends of an iSCSI
// session share (SAM-5, SPC-4, SBC-3): status codes, LUN encoding,
// operation codes and sense data.
package scsi
