package stamp

import (
	"bytes"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestStampRoundTrip(t *testing.T) {
	b := make([]byte, BlockSize)
	s := Stamp{Node: "alpha", Gen: 3, Seq: 42, LBA: 1 << 20, Time: 1_700_000_000_000_000_000}
	require.NoError(t, Encode(b, s))
	got, err := Decode(b)
	require.NoError(t, err)
	assert.Equal(t, s, got)

	b[100] ^= 1
	_, err = Decode(b)
	assert.ErrorContains(t, err, "torn")
	_, err = Decode(make([]byte, BlockSize))
	assert.ErrorIs(t, err, ErrNotStamped)
	assert.Error(t, Encode(b, Stamp{Node: strings.Repeat("x", MaxNode+1)}))
	assert.Error(t, Encode(b[:10], s))
}

func TestLogRoundTrip(t *testing.T) {
	evs := []Event{
		{Kind: KindStart, Node: "alpha", Gen: 1, Time: 5, Info: "isid 80aabbccddee key 0x1"},
		{Kind: KindAck, Node: "alpha", Gen: 1, Seq: 1, LBA: 16384, Time: 6, Acked: 7, FUA: true},
		{Kind: KindAck, Node: "alpha", Gen: 1, Seq: 2, LBA: 16385, Time: 6, Acked: 7},
		{Kind: KindConflict, Node: "alpha", Gen: 1, Seq: 2, LBA: 16385, Time: 8, Acked: 9},
		{Kind: KindStop, Node: "alpha", Gen: 1, Seq: 2, Time: 10, Info: "signal\nterminated"},
	}
	var b []byte
	for _, e := range evs {
		b = Append(b, e)
	}
	b = append(b, "ack alpha 1 3"...) // cut short by a kill
	got, err := ParseLog(bytes.NewReader(b))
	require.NoError(t, err)
	evs[4].Info = "signal terminated"
	assert.Equal(t, evs, got)

	for _, bad := range []string{"bogus alpha 1 2 3 4 5 0\n", "ack alpha x 2 3 4 5 0\n", "ack alpha 1 2 3 4 5\n", "ack alpha 1 2 3 4 5 2\n"} {
		_, err = ParseLog(strings.NewReader(bad))
		assert.Error(t, err, bad)
	}
}

func TestStartInfo(t *testing.T) {
	isid := [6]byte{0x80, 1, 2, 3, 4, 5}
	e := Event{Kind: KindStart, Info: StartInfo(isid, 0x74, 9)}
	got, ok := e.ISID()
	require.True(t, ok)
	assert.Equal(t, isid, got)
	_, ok = Event{Kind: KindAck, Info: e.Info}.ISID()
	assert.False(t, ok)
	_, ok = Event{Kind: KindStart, Info: "isid zz"}.ISID()
	assert.False(t, ok)

	assert.Equal(t, "beta", NodeOfInitiator(WriterInitiator("beta")))
	assert.Equal(t, "", NodeOfInitiator("iqn.2026-11.io.tandem:fence.partlab.beta"))
	assert.NotEqual(t, Tag(1, 2), Tag(2, 1))
	assert.NotZero(t, Tag(0, 1))
}

func FuzzDecode(f *testing.F) {
	b := make([]byte, BlockSize)
	_ = Encode(b, Stamp{Node: "beta", Gen: 1, Seq: 1, LBA: 2, Time: 3})
	f.Add(b)
	f.Add(make([]byte, BlockSize))
	f.Add([]byte("TNDBLK01"))
	f.Fuzz(func(t *testing.T, in []byte) {
		s, err := Decode(in)
		if err != nil {
			return
		}
		out := make([]byte, BlockSize)
		require.NoError(t, Encode(out, s))
		s2, err := Decode(out)
		require.NoError(t, err)
		assert.Equal(t, s, s2)
	})
}

func FuzzParseLine(f *testing.F) {
	f.Add("ack alpha 1 2 3 4 5 1\n")
	f.Add("start beta 2 0 0 9 0 0 isid 80 key 0x1\n")
	f.Add("conflict a 1 2 3 4\n")
	f.Fuzz(func(t *testing.T, line string) {
		e, err := ParseLine(line)
		if err != nil || strings.ContainsAny(e.Node, " \n") || e.Node == "" || strings.Contains(e.Info, "\n") ||
			strings.HasSuffix(e.Info, " ") || strings.HasPrefix(e.Info, " ") {
			return
		}
		e2, err := ParseLine(string(Append(nil, e)))
		require.NoError(t, err)
		assert.Equal(t, e, e2)
	})
}
