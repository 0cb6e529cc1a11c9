// Package audit is the witness at the storage: a stream of every
// WRITE-class command a logical unit accepted or refused, with the I_T
// nexus that sent it, the LBA range, the status and the persistent
// reservation state it was judged against. The writers' own logs cannot
// show that a fenced node wrote nothing after the fence (a killed or
// partitioned writer reports nothing); the target sees every write, so
// its record is the independent history a checker needs.
//
// Stream layout (all integers big-endian):
//
//	header  8 bytes  "TNDAUD01"
//	record  u16      length of what follows
//	        u8       kind (1 write, 2 dropped, 3 start)
//	write:  i64 time (unix ns), u64 seq, u8 op, u8 sa, u8 flags,
//	        u8 status, u8 sense key, u8 asc, u8 ascq,
//	        u64 lba, u64 blocks, u32 PR generation,
//	        [6] ISID, u16 TPGT, u16 len + initiator name,
//	        u8 reservation type (0 none), [6] holder ISID,
//	        u16 len + holder initiator name
//	dropped: i64 time, u64 count of records lost before this one
//	start:  i64 time; a daemon (re)started and Seq counts from 1 again
//
// Records are appended in completion order. Seq orders writes whose
// ranges overlap on one LU: it is the range-lock acquisition number, so
// a larger Seq reached the medium later (LastWriters uses it). OpenFile
// appends to an existing stream after cutting a torn tail, so one file
// holds the runs of a daemon that was killed and restarted, each opened
// by a start record.
//
// Duties of a user of Writer: Append never blocks, it drops and counts
// when the buffer is full; Close drains and writes a final dropped
// marker; a checker must treat any dropped marker as an incomplete
// history (Summary.Dropped).
package audit
