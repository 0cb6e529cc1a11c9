// Package iscsi is the iSCSI target fabric (RFC 7143): it accepts TCP
// connections, runs the login phase through target/login, and in the full
// feature phase turns SCSI Command PDUs into scsi.Tasks, moves their data
// (immediate data, unsolicited Data-Out, R2T-solicited Data-Out, Data-In)
// and returns status.
//
// Each connection has three kinds of goroutines:
//
//  1. the reader, which decodes PDUs, enforces CmdSN ordering (section
//     4.2.2.1), collects Data-Out and hands complete commands on;
//  2. a bounded pool of workers (at most the session's queue depth) that
//     call Executor.Execute, so commands run concurrently;
//  3. the writer, which owns the socket's write side, assigns StatSN in
//     transmission order, splits Data-In and batches PDUs into few writes.
//
// Only error recovery level 0 is implemented: any protocol violation the
// RFC does not make recoverable closes the connection (section 7.1.5).
package iscsi
