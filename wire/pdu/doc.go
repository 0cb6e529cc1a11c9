// Package pdu encodes and decodes iSCSI protocol data units (RFC 7143
// section 11): the 48-byte basic header segment, additional header
// segments, the data segment with its padding, and the optional CRC32C
// header and data digests.
//
// A BHS is kept as its raw bytes with typed accessors, so decoding costs
// no allocation and every field is exactly where the RFC puts it. Fields
// that share an offset across opcodes get one accessor per RFC name
// (CmdSN and StatSN are both bytes 24..27).
package pdu
