// Package scsi emulates an SPC-4/SBC-3 direct-access block device on top
// of a backstore.Backend. Target maps LUNs to logical units and executes
// Tasks handed over by the iSCSI fabric; each command is described by one
// entry of a table (operation code, service action, CDB length, CDB usage
// bitmap, data direction, handler), which also feeds REPORT SUPPORTED
// OPERATION CODES. Errors are sense reasons turned into fixed or
// descriptor sense data by one table, as LIO does with sense_detail_table.
//
// Before a command runs, Execute reports a pending unit attention of its
// I_T nexus (SAM-5 5.14; one FIFO per nexus per LU, 29h/00h at first
// contact) and checks it against the LU's reservations (package pr,
// SPC-4 5.12.3), under a per-LU read lock that allocates nothing. Changes
// to reservations that must survive power loss (APTPL) are saved to
// LUConfig.StateFile before the command completes. The fabric reports
// resets, nexus loss and cleared task sets through Target.Reset,
// NexusLoss and TasksCleared, and aborts tasks for PREEMPT AND ABORT
// through the Aborter it registers.
//
// Reads go straight into Task.DataIn and writes straight from
// Task.DataOut: the READ/WRITE path does not allocate.
package scsi
