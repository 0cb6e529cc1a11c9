package scsi

import "encoding/binary"

// PERSISTENT RESERVE IN service actions (SPC-4 section 6.15.1, table 166).
const (
	PRInReadKeys           = 0x0
	PRInReadReservation    = 0x1
	PRInReportCapabilities = 0x2
	PRInReadFullStatus     = 0x3
)

// Flags of the PERSISTENT RESERVE OUT basic parameter list, byte 20
// (SPC-4 section 6.16.3, table 182).
const (
	PROutSpecIPT = 0x08
	PROutAllTgPt = 0x04
	PROutAPTPL   = 0x01
)

// PRInCDB returns a PERSISTENT RESERVE IN CDB (SPC-4 table 165) for
// service action sa with allocation length alloc. Both initiators (the
// native session and SG_IO) build it here so they encode it identically.
func PRInCDB(sa byte, alloc uint16) [10]byte {
	var c [10]byte
	c[0], c[1] = OpPersistentReserveIn, sa&0x1f
	binary.BigEndian.PutUint16(c[7:], alloc)
	return c
}

// PROutCDB returns a PERSISTENT RESERVE OUT CDB (SPC-4 table 179) for
// service action sa, reservation type typ (LU_SCOPE) and a parameter list
// of paramLen bytes.
func PROutCDB(sa, typ byte, paramLen uint32) [10]byte {
	var c [10]byte
	c[0], c[1], c[2] = OpPersistentReserveOut, sa&0x1f, typ&0x0f // scope 0: LU_SCOPE
	binary.BigEndian.PutUint32(c[5:9], paramLen)
	return c
}

// PROutParams returns the basic PERSISTENT RESERVE OUT parameter list
// (SPC-4 table 182): the reservation key, the service action reservation
// key, the flags of byte 20 (PROutSpecIPT, PROutAllTgPt, PROutAPTPL) and,
// when tids is not empty, SPEC_I_PT set and the TransportIDs appended
// after their length.
func PROutParams(key, sark uint64, flags byte, tids [][]byte) []byte {
	n := 24
	if len(tids) > 0 {
		n = 28
		for _, t := range tids {
			n += len(t)
		}
		flags |= PROutSpecIPT
	}
	p := make([]byte, 24, n)
	binary.BigEndian.PutUint64(p, key)
	binary.BigEndian.PutUint64(p[8:], sark)
	p[20] = flags & (PROutSpecIPT | PROutAllTgPt | PROutAPTPL)
	if len(tids) > 0 {
		p = binary.BigEndian.AppendUint32(p, uint32(n-28))
		for _, t := range tids {
			p = append(p, t...)
		}
	}
	return p
}
