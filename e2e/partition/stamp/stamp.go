// Package stamp is the on-disk and on-log format of the partition test's
// block writer: every block it writes carries a Stamp (node, generation,
// sequence, LBA, time) with a CRC, and every write it tried is one line of
// an fsync'ed ack log with its outcome. The checker reads both back and
// compares them with the target's audit.
package stamp

import (
	"bufio"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"strconv"
	"strings"
)

// WriterInitiator is the iSCSI initiator name of node's writer: the one
// home of the name, so that the checker can tell the nodes' writes apart
// in the target's audit.
func WriterInitiator(node string) string {
	return "iqn.2026-11.io.tandem.partition:" + node + "-writer"
}

// NodeOfInitiator is the node whose writer uses name ("" for another
// initiator).
func NodeOfInitiator(name string) string {
	n, ok := strings.CutPrefix(strings.ToLower(name), "iqn.2026-11.io.tandem.partition:")
	if !ok {
		return ""
	}
	n, ok = strings.CutSuffix(n, "-writer")
	if !ok {
		return ""
	}
	return n
}

// Tag is the durability checker's name of a write: unique per (gen, seq)
// and never 0, which stands for a block never written.
func Tag(gen, seq uint64) uint64 { return gen<<32 | seq&0xffffffff }

// StartInfo is the Info of a KindStart line.
func StartInfo(isid [6]byte, key uint64, pid int) string {
	return fmt.Sprintf("isid %s key %#x pid %d", hex.EncodeToString(isid[:]), key, pid)
}

// ISID is the writer's ISID from a KindStart line's Info.
func (e Event) ISID() ([6]byte, bool) {
	var isid [6]byte
	f := strings.Fields(e.Info)
	if e.Kind != KindStart || len(f) < 2 || f[0] != "isid" {
		return isid, false
	}
	b, err := hex.DecodeString(f[1])
	if err != nil || len(b) != 6 {
		return isid, false
	}
	return [6]byte(b), true
}

// BlockSize is the size of one stamped block (the data LUN's block size).
const BlockSize = 512

// MaxNode is the longest node name a stamp holds.
const MaxNode = 32

var magic = [8]byte{'T', 'N', 'D', 'B', 'L', 'K', '0', '1'}

// Layout of a block: magic(8) node-len(1) node(32) gen(8) seq(8) lba(8)
// time(8) ... crc32c(4) at the end over everything before it.
const (
	offNodeLen = 8
	offNode    = 9
	offGen     = offNode + MaxNode
	offSeq     = offGen + 8
	offLBA     = offSeq + 8
	offTime    = offLBA + 8
	offCRC     = BlockSize - 4
)

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// Stamp identifies one write.
type Stamp struct {
	Node string
	Gen  uint64 // writer generation (one per writer start, lab-wide)
	Seq  uint64 // sequence within the generation, from 1
	LBA  uint64
	Time int64 // unix nanoseconds at submission
}

// ErrNotStamped is returned by Decode for a block without a stamp (never
// written, or overwritten by something else).
var ErrNotStamped = errors.New("stamp: block holds no stamp")

// Encode fills b (BlockSize bytes) with s; the filler is derived from the
// sequence so two stamps never share a block image.
func Encode(b []byte, s Stamp) error {
	if len(b) != BlockSize {
		return fmt.Errorf("stamp: block of %d bytes, want %d", len(b), BlockSize)
	}
	if len(s.Node) == 0 || len(s.Node) > MaxNode {
		return fmt.Errorf("stamp: node name %q must be 1..%d bytes", s.Node, MaxNode)
	}
	clear(b)
	copy(b, magic[:])
	b[offNodeLen] = byte(len(s.Node))
	copy(b[offNode:], s.Node)
	binary.BigEndian.PutUint64(b[offGen:], s.Gen)
	binary.BigEndian.PutUint64(b[offSeq:], s.Seq)
	binary.BigEndian.PutUint64(b[offLBA:], s.LBA)
	binary.BigEndian.PutUint64(b[offTime:], uint64(s.Time))
	for i := offTime + 8; i < offCRC; i++ {
		b[i] = byte(s.Seq) ^ byte(i)
	}
	binary.BigEndian.PutUint32(b[offCRC:], crc32.Checksum(b[:offCRC], castagnoli))
	return nil
}

// Decode reads the stamp of one block. A block of another shape returns
// ErrNotStamped; a stamp whose CRC does not match is a torn or corrupted
// write and an error of its own.
func Decode(b []byte) (Stamp, error) {
	if len(b) < BlockSize {
		return Stamp{}, io.ErrUnexpectedEOF
	}
	if [8]byte(b[:8]) != magic {
		return Stamp{}, ErrNotStamped
	}
	if got, want := binary.BigEndian.Uint32(b[offCRC:]), crc32.Checksum(b[:offCRC], castagnoli); got != want {
		return Stamp{}, fmt.Errorf("stamp: crc %08x, want %08x: torn or corrupted block", got, want)
	}
	n := int(b[offNodeLen])
	if n == 0 || n > MaxNode {
		return Stamp{}, fmt.Errorf("stamp: node length %d out of range", n)
	}
	return Stamp{
		Node: string(b[offNode : offNode+n]),
		Gen:  binary.BigEndian.Uint64(b[offGen:]),
		Seq:  binary.BigEndian.Uint64(b[offSeq:]),
		LBA:  binary.BigEndian.Uint64(b[offLBA:]),
		Time: int64(binary.BigEndian.Uint64(b[offTime:])),
	}, nil
}

// Kind is the kind of an ack log line.
type Kind string

// Ack log line kinds.
const (
	// KindStart: the writer logged in and registered its key; Seq is 0,
	// Time the registration, Info the ISID and key.
	KindStart Kind = "start"
	// KindAck: the target acknowledged the write of Stamp with GOOD
	// status; Time is the submission, Acked the reply, FUA whether it was
	// sent with FUA (only those are durable when acknowledged).
	KindAck Kind = "ack"
	// KindConflict: the write of Seq ended in RESERVATION CONFLICT.
	KindConflict Kind = "conflict"
	// KindError: the write of Seq failed otherwise (session lost,
	// timeout); Info says why. It may or may not be on the disk.
	KindError Kind = "error"
	// KindStop: the writer exits; Info says why.
	KindStop Kind = "stop"
	// KindLogin: the writer could not log in again; no write was sent,
	// and Seq is tried again. Info says why.
	KindLogin Kind = "login"
)

// Event is one ack log line.
type Event struct {
	Kind  Kind
	Node  string
	Gen   uint64
	Seq   uint64
	LBA   uint64
	Time  int64 // unix ns: submission (ack, conflict, error) or event time
	Acked int64 // unix ns: reply (ack, conflict); 0 otherwise
	FUA   bool  // the write was sent with FUA
	Info  string
}

// Append appends e as one line: kind node gen seq lba time acked fua
// [info], space separated, Info last and free text.
func Append(b []byte, e Event) []byte {
	b = append(b, e.Kind...)
	b = append(b, ' ')
	b = append(b, e.Node...)
	var fua uint64
	if e.FUA {
		fua = 1
	}
	for _, v := range []uint64{e.Gen, e.Seq, e.LBA, uint64(e.Time), uint64(e.Acked), fua} {
		b = append(b, ' ')
		b = strconv.AppendUint(b, v, 10)
	}
	if e.Info != "" {
		b = append(b, ' ')
		b = append(b, strings.ReplaceAll(e.Info, "\n", " ")...)
	}
	return append(b, '\n')
}

// ParseLine parses one line written by Append.
func ParseLine(line string) (Event, error) {
	f := strings.SplitN(strings.TrimRight(line, "\n"), " ", 9)
	if len(f) < 8 {
		return Event{}, fmt.Errorf("stamp: log line %q: %d fields, want at least 8", line, len(f))
	}
	e := Event{Kind: Kind(f[0]), Node: f[1]}
	switch e.Kind {
	case KindStart, KindAck, KindConflict, KindError, KindStop, KindLogin:
	default:
		return Event{}, fmt.Errorf("stamp: log line %q: unknown kind", line)
	}
	var v [6]uint64
	for i := range v {
		n, err := strconv.ParseUint(f[2+i], 10, 64)
		if err != nil {
			return Event{}, fmt.Errorf("stamp: log line %q: field %d: %w", line, 2+i, err)
		}
		v[i] = n
	}
	if v[5] > 1 {
		return Event{}, fmt.Errorf("stamp: log line %q: fua field %d, want 0 or 1", line, v[5])
	}
	e.Gen, e.Seq, e.LBA, e.Time, e.Acked, e.FUA = v[0], v[1], v[2], int64(v[3]), int64(v[4]), v[5] == 1
	if len(f) == 9 {
		e.Info = f[8]
	}
	return e, nil
}

// ParseLog parses a whole ack log. A last line without its newline is a
// write cut short by a kill and is ignored (the writer logs an ack only
// after the target acknowledged it, so dropping it loses no promise).
func ParseLog(r io.Reader) ([]Event, error) {
	var out []Event
	br := bufio.NewReader(r)
	for {
		line, err := br.ReadString('\n')
		if err == io.EOF {
			return out, nil
		}
		if err != nil {
			return out, err
		}
		e, perr := ParseLine(line)
		if perr != nil {
			return out, perr
		}
		out = append(out, e)
	}
}
