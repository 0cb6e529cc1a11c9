// Package backstore is the storage under a logical unit: a regular file or
// a block device, read and written at byte offsets. It knows nothing of
// SCSI; target/scsi turns CDBs into these calls (the split LIO makes with
// its backend ops: rw, sync, unmap).
package backstore
