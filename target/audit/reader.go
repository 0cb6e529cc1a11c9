package audit

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"os"
)

// ErrTornTail is returned by Reader.Next when the stream ends inside a
// record: the writer was killed while appending it. Every record before
// it is whole.
var ErrTornTail = errors.New("audit: stream ends inside a record (writer killed mid-append)")

// Reader reads a stream record by record.
type Reader struct {
	r      *bufio.Reader
	header bool
	buf    []byte
}

// NewReader reads the stream in r.
func NewReader(r io.Reader) *Reader { return &Reader{r: bufio.NewReaderSize(r, 1<<16)} }

// Next returns the next record; io.EOF at the clean end of the stream.
func (rd *Reader) Next() (Record, error) {
	if !rd.header {
		var m [len(Magic)]byte
		if _, err := io.ReadFull(rd.r, m[:]); err != nil {
			if errors.Is(err, io.EOF) {
				return Record{}, io.EOF // empty file: nothing was written yet
			}
			return Record{}, ErrTornTail
		}
		if string(m[:]) != Magic {
			return Record{}, errMagic
		}
		rd.header = true
	}
	var l [2]byte
	if _, err := io.ReadFull(rd.r, l[:]); err != nil {
		if errors.Is(err, io.EOF) {
			return Record{}, io.EOF
		}
		return Record{}, ErrTornTail
	}
	n := int(l[0])<<8 | int(l[1])
	rd.buf = append(rd.buf[:0], l[0], l[1])
	rd.buf = append(rd.buf, make([]byte, n)...)
	if _, err := io.ReadFull(rd.r, rd.buf[2:]); err != nil {
		return Record{}, ErrTornTail
	}
	rec, _, err := DecodeRecord(rd.buf)
	return rec, err
}

// ReadAll reads every record of r. A torn tail is not an error: the
// records before it are returned with torn set.
func ReadAll(r io.Reader) (recs []Record, torn bool, err error) {
	rd := NewReader(r)
	for {
		rec, err := rd.Next()
		switch {
		case errors.Is(err, io.EOF):
			return recs, false, nil
		case errors.Is(err, ErrTornTail):
			return recs, true, nil
		case err != nil:
			return recs, false, err
		}
		recs = append(recs, rec)
	}
}

// ReadFile reads the stream at path (see ReadAll).
func ReadFile(path string) ([]Record, bool, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, false, fmt.Errorf("audit: open %s: %w (is audit set on the LUN?)", path, err)
	}
	defer f.Close()
	recs, torn, err := ReadAll(f)
	if err != nil {
		return recs, torn, fmt.Errorf("audit: read %s: %w", path, err)
	}
	return recs, torn, nil
}
