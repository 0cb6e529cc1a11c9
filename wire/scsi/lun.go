package scsi

// EncodeLUN returns the 8-byte SAM LUN field for a LUN number: peripheral
// device addressing below 256, flat space addressing up to 16383 (SAM-5
// section 4.7), the forms Linux and libiscsi use.
func EncodeLUN(n uint64) uint64 {
	if n < 256 {
		return n << 48
	}
	return (0x4000 | n&0x3fff) << 48
}

// DecodeLUN returns the LUN number of an 8-byte SAM LUN field, and false
// when the field uses an addressing method tandem does not serve.
func DecodeLUN(field uint64) (uint64, bool) {
	first := uint16(field >> 48)
	if field&0x0000ffffffffffff != 0 {
		return 0, false
	}
	switch first >> 14 {
	case 0: // peripheral device addressing, bus 0
		if first>>8 != 0 {
			return 0, false
		}
		return uint64(first & 0xff), true
	case 1: // flat space addressing
		return uint64(first & 0x3fff), true
	}
	return 0, false
}
