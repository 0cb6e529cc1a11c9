package pdu

import (
	"bufio"
	"encoding/binary"
	"errors"
	"hash/crc32"
	"io"
	"net"
	"strconv"
)

// PDU is one protocol data unit. AHS holds the additional header
// segments (a multiple of 4 bytes); Data holds the unpadded data segment.
type PDU struct {
	BHS  BHS
	AHS  []byte
	Data []byte
}

// Reset clears the header and empties AHS and Data, keeping their storage.
func (p *PDU) Reset() {
	p.BHS = BHS{}
	p.AHS = p.AHS[:0]
	p.Data = p.Data[:0]
}

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// Digest is the iSCSI CRC32C digest of b (RFC 7143 section 13.1 and
// RFC 3385), as it is sent on the wire: little-endian.
func Digest(b ...[]byte) uint32 {
	var c uint32
	for _, s := range b {
		c = crc32.Update(c, castagnoli, s)
	}
	return c
}

// Errors a Reader returns. A digest error leaves the stream in sync (the
// whole PDU was consumed), so a caller may reject the PDU and go on;
// every other error means the connection is unusable.
var (
	ErrHeaderDigest = errors.New("pdu: header digest mismatch")
	ErrDataDigest   = errors.New("pdu: data digest mismatch")
)

// SegmentTooLargeError says a PDU announced a data segment above the
// negotiated MaxRecvDataSegmentLength.
type SegmentTooLargeError struct {
	Opcode Opcode
	Length int
	Limit  int
}

func (e *SegmentTooLargeError) Error() string {
	return "pdu: " + e.Opcode.String() + " data segment of " + strconv.Itoa(e.Length) +
		" bytes exceeds the limit of " + strconv.Itoa(e.Limit)
}

// Reader reads PDUs from a byte stream. The digest flags and the segment
// limit may change between calls (they do at the end of login).
type Reader struct {
	r *bufio.Reader

	// HeaderDigest and DataDigest enable CRC32C checking.
	HeaderDigest, DataDigest bool
	// MaxDataSegmentLength bounds an incoming data segment; 0 means 1<<24-1.
	MaxDataSegmentLength int

	tail [8]byte
}

// NewReader returns a Reader over r with a 64 KiB read buffer.
func NewReader(r io.Reader) *Reader {
	return &Reader{r: bufio.NewReaderSize(r, 64<<10)}
}

// Buffered is the number of bytes read from the stream and not yet
// returned: a caller can tell whether another PDU may already be waiting.
func (r *Reader) Buffered() int { return r.r.Buffered() }

// Read reads the next PDU into p, reusing p's AHS and Data storage.
func (r *Reader) Read(p *PDU) error {
	if _, err := io.ReadFull(r.r, p.BHS[:]); err != nil {
		return err
	}
	ahsLen := p.BHS.TotalAHSLength() * 4
	if cap(p.AHS) < ahsLen {
		p.AHS = make([]byte, ahsLen)
	}
	p.AHS = p.AHS[:ahsLen]
	if _, err := io.ReadFull(r.r, p.AHS); err != nil {
		return unexpected(err)
	}
	if r.HeaderDigest {
		if _, err := io.ReadFull(r.r, r.tail[:4]); err != nil {
			return unexpected(err)
		}
		if binary.LittleEndian.Uint32(r.tail[:4]) != Digest(p.BHS[:], p.AHS) {
			// The length fields cannot be trusted: the stream is lost.
			return ErrHeaderDigest
		}
	}
	n := p.BHS.DataSegmentLength()
	limit := r.MaxDataSegmentLength
	if limit <= 0 {
		limit = 1<<24 - 1
	}
	if n > limit {
		return &SegmentTooLargeError{Opcode: p.BHS.Opcode(), Length: n, Limit: limit}
	}
	if cap(p.Data) < n {
		p.Data = make([]byte, n)
	}
	p.Data = p.Data[:n]
	if n == 0 {
		return nil
	}
	if _, err := io.ReadFull(r.r, p.Data); err != nil {
		return unexpected(err)
	}
	pad := padLen(n)
	if r.DataDigest {
		if _, err := io.ReadFull(r.r, r.tail[:pad+4]); err != nil {
			return unexpected(err)
		}
		if binary.LittleEndian.Uint32(r.tail[pad:pad+4]) != Digest(p.Data, r.tail[:pad]) {
			return ErrDataDigest
		}
	} else if pad > 0 {
		if _, err := io.ReadFull(r.r, r.tail[:pad]); err != nil {
			return unexpected(err)
		}
	}
	return nil
}

func unexpected(err error) error {
	if err == io.EOF {
		return io.ErrUnexpectedEOF
	}
	return err
}

func padLen(n int) int { return (4 - n&3) & 3 }

// Writer writes PDUs with one vectored write each. It is not safe for
// concurrent use; the owner serialises writes.
type Writer struct {
	w io.Writer

	// HeaderDigest and DataDigest add CRC32C digests.
	HeaderDigest, DataDigest bool

	hdr       [BHSLen + 4]byte
	ahsDigest [4]byte
	tail      [8]byte
	bufs      [4][]byte
	vec       net.Buffers
}

// NewWriter returns a Writer over w (typically a *net.TCPConn, which
// turns each PDU into a single writev).
func NewWriter(w io.Writer) *Writer { return &Writer{w: w} }

// Write sends p. It sets the data segment length from len(p.Data) and
// the AHS length from len(p.AHS), which must be a multiple of 4.
func (w *Writer) Write(p *PDU) error {
	if len(p.AHS)%4 != 0 || len(p.AHS) > 255*4 {
		return errors.New("pdu: AHS length " + strconv.Itoa(len(p.AHS)) + " is not a multiple of 4 below 1024")
	}
	if len(p.Data) >= 1<<24 {
		return errors.New("pdu: data segment of " + strconv.Itoa(len(p.Data)) + " bytes is too large")
	}
	p.BHS.SetTotalAHSLength(len(p.AHS) / 4)
	p.BHS.SetDataSegmentLength(len(p.Data))
	copy(w.hdr[:], p.BHS[:])
	bufs := w.bufs[:0]
	if len(p.AHS) == 0 {
		h := w.hdr[:BHSLen]
		if w.HeaderDigest {
			binary.LittleEndian.PutUint32(w.hdr[BHSLen:], Digest(p.BHS[:]))
			h = w.hdr[:BHSLen+4]
		}
		bufs = append(bufs, h)
	} else {
		bufs = append(bufs, w.hdr[:BHSLen], p.AHS)
		if w.HeaderDigest {
			binary.LittleEndian.PutUint32(w.ahsDigest[:], Digest(p.BHS[:], p.AHS))
			bufs = append(bufs, w.ahsDigest[:])
		}
	}
	if n := len(p.Data); n > 0 {
		pad := padLen(n)
		w.tail[0], w.tail[1], w.tail[2] = 0, 0, 0
		t := w.tail[:pad]
		if w.DataDigest {
			// The digest covers the padding too.
			var dg [4]byte
			binary.LittleEndian.PutUint32(dg[:], Digest(p.Data, w.tail[:pad]))
			copy(w.tail[pad:], dg[:])
			t = w.tail[:pad+4]
		}
		bufs = append(bufs, p.Data)
		if len(t) > 0 {
			bufs = append(bufs, t)
		}
	}
	// net.Buffers.WriteTo consumes the slice it is called on, so it gets
	// a view of the fixed bufs array: appending to the consumed w.vec
	// would allocate on every PDU.
	w.vec = net.Buffers(bufs)
	_, err := w.vec.WriteTo(w.w)
	clear(w.bufs[:]) // do not pin the caller's data
	return err
}
