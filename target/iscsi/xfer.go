package iscsi

import "github.com/tandem-ha/tandem/wire/pdu"

// residual computes the residual flags and count of a transfer that was
// expected to move expected bytes while the command wanted (or produced)
// actual bytes (RFC 7143 section 11.4.5): more than expected is an
// overflow, less an underflow.
func residual(expected, actual uint32) (flags byte, count uint32) {
	switch {
	case actual > expected:
		return pdu.FlagOverflow, actual - expected
	case actual < expected:
		return pdu.FlagUnderflow, expected - actual
	}
	return 0, 0
}

// bidiResidual is residual with the lowercase o/u flags of the
// bidirectional read residual.
func bidiResidual(expected, actual uint32) (flags byte, count uint32) {
	f, n := residual(expected, actual)
	switch f {
	case pdu.FlagOverflow:
		f = pdu.FlagBidiOverflow
	case pdu.FlagUnderflow:
		f = pdu.FlagBidiUnderflow
	}
	return f, n
}

// dataInSegment returns the length of the Data-In PDU that starts at off
// in a transfer of total bytes, and whether it ends a sequence (F bit).
// A PDU carries at most maxSeg bytes (the initiator's
// MaxRecvDataSegmentLength) and a sequence at most maxBurst bytes
// (MaxBurstLength, RFC 7143 section 13.13), so sequences end at burst
// boundaries and at the end of the data.
func dataInSegment(off, total, maxSeg, maxBurst uint32) (n uint32, final bool) {
	if maxSeg == 0 {
		maxSeg = 8192
	}
	if maxBurst == 0 {
		maxBurst = 262144
	}
	n = total - off
	if n > maxSeg {
		n = maxSeg
	}
	burstEnd := (off/maxBurst + 1) * maxBurst
	if off+n > burstEnd {
		n = burstEnd - off
	}
	end := off + n
	return n, end == total || end == burstEnd
}

// unsolicitedLimit is how many bytes of a write the initiator may send
// without an R2T (immediate data plus unsolicited Data-Out): nothing
// beyond FirstBurstLength or the expected length (RFC 7143 section 13.14).
func unsolicitedLimit(edtl, firstBurst uint32) uint32 {
	if firstBurst < edtl {
		return firstBurst
	}
	return edtl
}

// nextR2T returns the offset and length of the next R2T for a write of
// edtl bytes when next is the first byte not yet requested or received:
// each R2T asks for at most maxBurst bytes (RFC 7143 section 13.13). ok
// is false when everything has been requested.
func nextR2T(next, edtl, maxBurst uint32) (off, length uint32, ok bool) {
	if next >= edtl {
		return 0, 0, false
	}
	if maxBurst == 0 {
		maxBurst = 262144
	}
	length = edtl - next
	if length > maxBurst {
		length = maxBurst
	}
	return next, length, true
}
