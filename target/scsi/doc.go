// Package scsi emulates an SPC-4/SBC-3 direct-access block device on top
// of a backstore.Backend. Target maps LUNs to logical units and executes
// Tasks handed over by the iSCSI fabric; each command is described by one
// entry of a table (operation code, service action, CDB length, CDB usage
// bitmap, data direction, handler), which also feeds REPORT SUPPORTED
// OPERATION CODES. Errors are sense reasons turned into fixed or
// descriptor sense data by one table, as LIO does with sense_detail_table.
//
// Reads go straight into Task.DataIn and writes straight from
// Task.DataOut: the READ/WRITE path does not allocate.
package scsi
