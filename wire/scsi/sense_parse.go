package scsi

import (
	"encoding/binary"
	"errors"
	"io"
)

// ParsedSense is decoded sense data, whichever format carried it
// (SPC-4 section 4.5: fixed format 70h/71h, descriptor format 72h/73h).
type ParsedSense struct {
	// Key is the sense key (low four bits).
	Key byte
	// ASC and ASCQ are the additional sense code and qualifier.
	ASC, ASCQ byte
	// Deferred is set for response codes 71h and 73h (an error of an
	// earlier command, SPC-4 section 4.5.5).
	Deferred bool
	// Descriptor is set for descriptor format sense (72h/73h).
	Descriptor bool
	// Information is the INFORMATION field (fixed format with VALID set,
	// or the information descriptor 00h); InfoValid says it is present.
	Information uint64
	InfoValid   bool
}

// ErrSenseFormat is returned for sense data with an unknown response code.
var ErrSenseFormat = errors.New("scsi: sense data has an unknown response code")

// ParseSense decodes fixed or descriptor format sense data. Short input
// returns io.ErrUnexpectedEOF; fields the data stops short of (a
// truncated fixed-format buffer may omit the ASC) are left zero only when
// the additional length says they are absent.
func ParseSense(b []byte) (ParsedSense, error) {
	var s ParsedSense
	if len(b) < 1 {
		return s, io.ErrUnexpectedEOF
	}
	switch code := b[0] & 0x7f; code {
	case 0x70, 0x71:
		// Fixed format (SPC-4 section 4.5.3): key in byte 2, ASC/ASCQ in
		// bytes 12/13, present when the additional length (byte 7)
		// reaches them.
		s.Deferred = code == 0x71
		if len(b) < 3 {
			return s, io.ErrUnexpectedEOF
		}
		s.Key = b[2] & 0x0f
		if len(b) >= 7 && b[0]&0x80 != 0 {
			s.Information = uint64(binary.BigEndian.Uint32(b[3:7]))
			s.InfoValid = true
		}
		if len(b) < 8 {
			return s, nil
		}
		avail := 8 + int(b[7])
		if avail > len(b) {
			avail = len(b)
		}
		if avail >= 13 {
			s.ASC = b[12]
		}
		if avail >= 14 {
			s.ASCQ = b[13]
		}
		return s, nil
	case 0x72, 0x73:
		// Descriptor format (SPC-4 section 4.5.2): key, ASC and ASCQ in
		// bytes 1..3, then descriptors from byte 8.
		s.Deferred = code == 0x73
		s.Descriptor = true
		if len(b) < 4 {
			return s, io.ErrUnexpectedEOF
		}
		s.Key, s.ASC, s.ASCQ = b[1]&0x0f, b[2], b[3]
		if len(b) < 8 {
			return s, nil
		}
		end := 8 + int(b[7])
		if end > len(b) {
			end = len(b)
		}
		for d := b[8:end]; len(d) >= 2; {
			n := 2 + int(d[1])
			if n > len(d) {
				break
			}
			// Information descriptor (SPC-4 section 4.5.2.2).
			if d[0] == 0x00 && n >= 12 {
				s.Information = binary.BigEndian.Uint64(d[4:12])
				s.InfoValid = d[2]&0x80 != 0
			}
			d = d[n:]
		}
		return s, nil
	}
	return s, ErrSenseFormat
}
