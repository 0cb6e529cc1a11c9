package scsi

// Nexus names an I_T nexus: the SCSI initiator port (iSCSI initiator name
// plus ISID) and the SCSI target port (target name plus portal group tag).
// Persistent reservations and unit attentions belong to a nexus, not to a
// TCP connection (SPC-4 section 5.9).
type Nexus struct {
	Initiator string
	ISID      [6]byte
	Target    string
	TPGT      uint16
}

// Task is one SCSI command handed over by the fabric (the iSCSI layer)
// once all of its Data-Out has arrived.
type Task struct {
	Nexus *Nexus
	// LUN is the decoded logical unit number.
	LUN uint64
	// CDB is the command descriptor block (16 bytes from the BHS, longer
	// with an extended-CDB AHS).
	CDB []byte
	// Attr is the SAM task attribute (0 untagged, 1 simple, 2 ordered,
	// 3 head of queue, 4 ACA).
	Attr byte
	// Tag is the initiator task tag; task management refers to it.
	Tag uint32
	// Read and Write are the R and W bits of the iSCSI command.
	Read, Write bool
	// ExpectedLength is the initiator's Expected Data Transfer Length.
	ExpectedLength uint32
	// DataOut is what the initiator sent, at most ExpectedLength bytes; it
	// can be shorter than the CDB asks for.
	DataOut []byte
	// DataIn is a buffer the fabric lends for read data, with len 0 and
	// a capacity of at least ExpectedLength (the device may append more;
	// the fabric reports the excess as overflow).
	DataIn []byte

	// auditSeq is the range-lock acquisition number of the write, for the
	// audit (LU.lockWrite); Execute resets it.
	auditSeq uint64
}

// Result is the outcome of a Task.
type Result struct {
	Status byte
	// Sense is the sense data for CHECK CONDITION, in the format the
	// control mode page selects (fixed or descriptor).
	Sense []byte
	// DataIn is the read data, normally Task.DataIn[:n].
	DataIn []byte
	// DataOutWanted is how many bytes of Data-Out the command needed
	// according to its CDB; the fabric derives write residuals from it.
	DataOutWanted uint32
}
