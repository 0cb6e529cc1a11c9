package audit

import (
	"bytes"
	"io"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func sample() Record {
	return Record{Kind: KindWrite, Time: 1_700_000_000_123_456_789, Seq: 42, Op: 0x8a, Flags: FlagFUA,
		Status: StatusCheckCondition, SenseKey: 0x06, ASC: 0x2a, ASCQ: 0x03, LBA: 1 << 40, Blocks: 8,
		Generation: 7, Initiator: "iqn.2026-12.io.tandem:node-a", ISID: [6]byte{0x80, 0, 0, 0, 0, 1}, TPGT: 1,
		ResType: 5, HolderInitiator: "iqn.2026-12.io.tandem:node-b", HolderISID: [6]byte{0x80, 0, 0, 0, 0, 2}}
}

func TestRecordRoundTrip(t *testing.T) {
	for _, tc := range []struct {
		desc string
		r    Record
	}{
		{desc: "write with sense and holder", r: sample()},
		{desc: "write without names", r: Record{Kind: KindWrite, Op: 0x2a, LBA: 3, Blocks: 1}},
		{desc: "dropped marker", r: Record{Kind: KindDropped, Time: -5, Dropped: 1 << 33}},
	} {
		t.Run(tc.desc, func(t *testing.T) {
			b, err := AppendRecord([]byte{0xee}, &tc.r)
			require.NoError(t, err)
			got, n, err := DecodeRecord(b[1:])
			require.NoError(t, err)
			assert.Equal(t, len(b)-1, n)
			assert.Equal(t, tc.r, got)
		})
	}
}

func TestDecodeErrors(t *testing.T) {
	good, err := AppendRecord(nil, &Record{Kind: KindWrite, Initiator: "iqn.x"})
	require.NoError(t, err)
	bad := bytes.Clone(good)
	bad[2] = 9 // kind
	short := bytes.Clone(good)
	short[1]-- // length one byte short of the contents
	for _, tc := range []struct {
		desc string
		in   []byte
		want error
	}{
		{desc: "empty", in: nil, want: io.ErrUnexpectedEOF},
		{desc: "length only", in: good[:2], want: io.ErrUnexpectedEOF},
		{desc: "cut body", in: good[:len(good)-1], want: io.ErrUnexpectedEOF},
		{desc: "unknown kind", in: bad, want: errUnknownKind},
		{desc: "length disagrees", in: short, want: errBadLength},
		{desc: "zero length", in: []byte{0, 0}, want: errBadLength},
	} {
		t.Run(tc.desc, func(t *testing.T) {
			_, _, err := DecodeRecord(tc.in)
			require.ErrorIs(t, err, tc.want)
		})
	}
	_, err = AppendRecord(nil, &Record{Kind: KindWrite, Initiator: string(make([]byte, maxName+1))})
	require.ErrorIs(t, err, errNameLength)
	_, err = AppendRecord(nil, &Record{Kind: 0})
	require.ErrorIs(t, err, errUnknownKind)
}

func TestAppendAllocs(t *testing.T) {
	r := sample()
	buf := make([]byte, 0, 256)
	allocs := testing.AllocsPerRun(100, func() { buf, _ = AppendRecord(buf[:0], &r) })
	assert.Zero(t, allocs)
}

func BenchmarkAppendRecord(b *testing.B) {
	r := sample()
	buf := make([]byte, 0, 256)
	b.ReportAllocs()
	for b.Loop() {
		buf, _ = AppendRecord(buf[:0], &r)
	}
}

// FuzzDecodeRecord: whatever decodes re-encodes to the same bytes, and
// nothing panics.
func FuzzDecodeRecord(f *testing.F) {
	s := sample()
	seed, _ := AppendRecord(nil, &s)
	f.Add(seed)
	d, _ := AppendRecord(nil, &Record{Kind: KindDropped, Dropped: 3})
	f.Add(d)
	f.Add([]byte{0, 1, 1})
	f.Add([]byte{0xff, 0xff})
	f.Fuzz(func(t *testing.T, in []byte) {
		r, n, err := DecodeRecord(in)
		if err != nil {
			return
		}
		out, err := AppendRecord(nil, &r)
		require.NoError(t, err)
		require.Equal(t, in[:n], out)
	})
}
