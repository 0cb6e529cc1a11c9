package pr

import (
	"encoding/binary"
	"strings"
)

// iSCSI TransportIDs (SPC-4 7.6.4.6): protocol identifier 5h; format 00b
// carries an initiator name, format 01b an initiator port: the name, the
// separator ",i,0x" and the ISID in 12 hex digits. Both are NUL terminated
// and padded to a multiple of four bytes, at least 20 after the header.
const (
	protocolISCSI    = 0x5
	tidFormatName    = 0x00
	tidFormatPort    = 0x40
	tidMinAdditional = 20
	isidSeparator    = ",i,0x"
)

const hexDigits = "0123456789abcdef"

// appendTransportID appends the format 01b TransportID of the initiator
// port of s, or a format 00b one when s.AnyISID.
func appendTransportID(b []byte, s Selector) []byte {
	n := len(s.Initiator) + 1 // NUL
	format := byte(tidFormatName)
	if !s.AnyISID {
		format = tidFormatPort
		n += len(isidSeparator) + 12
	}
	n = (n + 3) &^ 3
	if n < tidMinAdditional {
		n = tidMinAdditional
	}
	b = append(b, format|protocolISCSI, 0, byte(n>>8), byte(n))
	start := len(b)
	b = append(b, s.Initiator...)
	if !s.AnyISID {
		b = append(b, isidSeparator...)
		for _, c := range s.ISID {
			b = append(b, hexDigits[c>>4], hexDigits[c&0xf])
		}
	}
	for len(b)-start < n {
		b = append(b, 0)
	}
	return b
}

// parseTransportID decodes the iSCSI TransportID at the start of b. It
// returns the initiator port it names (AnyISID for format 00b) and its
// length, or ok false when it is malformed or not iSCSI.
func parseTransportID(b []byte) (sel Selector, n int, ok bool) {
	if len(b) < 4 {
		return Selector{}, 0, false
	}
	if b[0]&0x0f != protocolISCSI {
		return Selector{}, 0, false
	}
	n = 4 + int(binary.BigEndian.Uint16(b[2:4]))
	if n > len(b) || n < 5 {
		return Selector{}, 0, false
	}
	text := b[4:n]
	end := strings.IndexByte(string(text), 0)
	if end < 0 {
		return Selector{}, 0, false // the name must be NUL terminated
	}
	name := string(text[:end])
	switch b[0] & 0xc0 {
	case tidFormatName:
		sel.AnyISID = true
	case tidFormatPort:
		lower := strings.ToLower(name)
		i := strings.LastIndex(lower, isidSeparator)
		if i < 0 || len(name)-i-len(isidSeparator) != 12 {
			return Selector{}, 0, false
		}
		for k := 0; k < 6; k++ {
			hi, ok1 := unhex(lower[i+len(isidSeparator)+2*k])
			lo, ok2 := unhex(lower[i+len(isidSeparator)+2*k+1])
			if !ok1 || !ok2 {
				return Selector{}, 0, false
			}
			sel.ISID[k] = hi<<4 | lo
		}
		name = name[:i]
	default:
		return Selector{}, 0, false
	}
	if name == "" {
		return Selector{}, 0, false
	}
	sel.Initiator = strings.ToLower(name)
	return sel, n, true
}

func unhex(c byte) (byte, bool) {
	switch {
	case c >= '0' && c <= '9':
		return c - '0', true
	case c >= 'a' && c <= 'f':
		return c - 'a' + 10, true
	}
	return 0, false
}
