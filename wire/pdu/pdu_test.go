package pdu

import (
	"bytes"
	"encoding/binary"
	"errors"
	"io"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestDigestKnownVector(t *testing.T) {
	// RFC 3720 appendix B.4: 32 bytes of zeros have CRC32C 0x8a9136aa.
	assert.Equal(t, uint32(0x8a9136aa), Digest(make([]byte, 32)))
	// Splitting the input must not change the result.
	assert.Equal(t, Digest([]byte("123456789")), Digest([]byte("1234"), []byte("56789")))
	assert.Equal(t, uint32(0xe3069283), Digest([]byte("123456789")))
}

func TestRoundTrip(t *testing.T) {
	cases := []struct {
		desc       string
		ahs, data  []byte
		hdr, dataD bool
	}{
		{desc: "bare header"},
		{desc: "data with padding", data: []byte("abcde")},
		{desc: "aligned data", data: []byte("abcdefgh")},
		{desc: "digests", data: []byte("abc"), hdr: true, dataD: true},
		{desc: "ahs and digests", ahs: []byte{0, 4, 1, 0, 1, 2, 3, 4}, data: []byte("x"), hdr: true, dataD: true},
		{desc: "ahs, header digest only", ahs: []byte{0, 0, 1, 0}, data: []byte("xy"), hdr: true},
	}
	for _, c := range cases {
		t.Run(c.desc, func(t *testing.T) {
			var buf bytes.Buffer
			w := NewWriter(&buf)
			w.HeaderDigest, w.DataDigest = c.hdr, c.dataD
			var p PDU
			p.BHS.SetOpcode(OpSCSICmd)
			p.BHS.SetITT(0x1234)
			p.BHS.SetCmdSN(7)
			p.AHS, p.Data = c.ahs, c.data
			require.NoError(t, w.Write(&p))
			// A second PDU behind it proves the padding and digests were framed right.
			var q PDU
			q.BHS.SetOpcode(OpNOPOut)
			require.NoError(t, w.Write(&q))
			assert.Zero(t, buf.Len()%4)

			r := NewReader(&buf)
			r.HeaderDigest, r.DataDigest = c.hdr, c.dataD
			var got PDU
			require.NoError(t, r.Read(&got))
			assert.Equal(t, OpSCSICmd, got.BHS.Opcode())
			assert.Equal(t, uint32(0x1234), got.BHS.ITT())
			assert.Equal(t, uint32(7), got.BHS.CmdSN())
			assert.Equal(t, len(c.ahs), len(got.AHS))
			assert.Equal(t, string(c.data), string(got.Data))
			require.NoError(t, r.Read(&got))
			assert.Equal(t, OpNOPOut, got.BHS.Opcode())
			assert.ErrorIs(t, r.Read(&got), io.EOF)
		})
	}
}

func TestDigestErrors(t *testing.T) {
	var p PDU
	p.BHS.SetOpcode(OpSCSICmd)
	p.Data = []byte("hello")
	var buf bytes.Buffer
	w := NewWriter(&buf)
	w.HeaderDigest, w.DataDigest = true, true
	require.NoError(t, w.Write(&p))
	raw := buf.Bytes()

	bad := append([]byte(nil), raw...)
	bad[BHSLen+4] ^= 1 // data byte
	r := NewReader(bytes.NewReader(bad))
	r.HeaderDigest, r.DataDigest = true, true
	assert.ErrorIs(t, r.Read(&p), ErrDataDigest)

	bad = append([]byte(nil), raw...)
	bad[16] ^= 1 // ITT
	r = NewReader(bytes.NewReader(bad))
	r.HeaderDigest, r.DataDigest = true, true
	assert.ErrorIs(t, r.Read(&p), ErrHeaderDigest)
}

func TestSegmentLimitAndTruncation(t *testing.T) {
	var p PDU
	p.BHS.SetOpcode(OpDataOut)
	p.Data = make([]byte, 1000)
	var buf bytes.Buffer
	require.NoError(t, NewWriter(&buf).Write(&p))
	raw := buf.Bytes()

	r := NewReader(bytes.NewReader(raw))
	r.MaxDataSegmentLength = 512
	var tooLarge *SegmentTooLargeError
	require.True(t, errors.As(r.Read(&p), &tooLarge))
	assert.Equal(t, 1000, tooLarge.Length)

	for _, n := range []int{10, BHSLen, BHSLen + 10} {
		r := NewReader(bytes.NewReader(raw[:n]))
		err := r.Read(&p)
		require.Error(t, err)
		assert.True(t, errors.Is(err, io.ErrUnexpectedEOF), "cut at %d: %v", n, err)
	}
}

func TestBHSFields(t *testing.T) {
	var b BHS
	b.SetOpcode(OpLoginReq)
	b.SetImmediate(true)
	b.SetLoginStages(true, false, StageOperational, StageFullFeature)
	b.SetISID([6]byte{0x80, 1, 2, 3, 4, 5})
	b.SetTSIH(0x0102)
	b.SetCID(9)
	b.SetLoginStatus(2, 1)
	b.SetDataSegmentLength(0x123456)
	assert.Equal(t, OpLoginReq, b.Opcode())
	assert.True(t, b.Immediate())
	assert.True(t, b.Transit())
	assert.False(t, b.Continue())
	assert.Equal(t, StageOperational, b.CSG())
	assert.Equal(t, StageFullFeature, b.NSG())
	assert.Equal(t, [6]byte{0x80, 1, 2, 3, 4, 5}, b.ISID())
	assert.Equal(t, uint16(0x0102), b.TSIH())
	assert.Equal(t, uint16(9), b.CID())
	c, d := b.LoginStatus()
	assert.Equal(t, [2]byte{2, 1}, [2]byte{c, d})
	assert.Equal(t, 0x123456, b.DataSegmentLength())
	assert.Equal(t, byte(0x43), b[0])
	assert.Equal(t, "Login-Request", b.Opcode().String())
	assert.Equal(t, "Opcode(0x3e)", Opcode(0x3e).String())
	assert.Equal(t, uint32(0x00000009), binary.BigEndian.Uint32(b[20:])>>16)
}

func TestReadAllocs(t *testing.T) {
	var p PDU
	p.BHS.SetOpcode(OpDataOut)
	p.Data = make([]byte, 4096)
	var buf bytes.Buffer
	w := NewWriter(&buf)
	w.DataDigest = true
	for i := 0; i < 200; i++ {
		require.NoError(t, w.Write(&p))
	}
	raw := buf.Bytes()
	rd := bytes.NewReader(raw)
	r := NewReader(rd)
	r.DataDigest = true
	var q PDU
	require.NoError(t, r.Read(&q))
	allocs := testing.AllocsPerRun(100, func() {
		if err := r.Read(&q); err != nil {
			t.Fatal(err)
		}
	})
	assert.Zero(t, allocs)
}

func BenchmarkWrite4K(b *testing.B) {
	var p PDU
	p.BHS.SetOpcode(OpDataIn)
	p.Data = make([]byte, 4096)
	w := NewWriter(io.Discard)
	w.HeaderDigest, w.DataDigest = true, true
	b.ReportAllocs()
	b.SetBytes(4096)
	for i := 0; i < b.N; i++ {
		if err := w.Write(&p); err != nil {
			b.Fatal(err)
		}
	}
}

func FuzzRead(f *testing.F) {
	var p PDU
	p.BHS.SetOpcode(OpSCSICmd)
	p.Data = []byte("seed")
	var buf bytes.Buffer
	w := NewWriter(&buf)
	_ = w.Write(&p)
	f.Add(buf.Bytes(), false, false)
	buf.Reset()
	w.HeaderDigest, w.DataDigest = true, true
	p.AHS = []byte{0, 0, 1, 0}
	_ = w.Write(&p)
	f.Add(buf.Bytes(), true, true)
	// A header announcing a 16 MiB segment with nothing behind it.
	huge := make([]byte, BHSLen)
	huge[5], huge[6], huge[7] = 0xff, 0xff, 0xff
	f.Add(huge, false, false)
	f.Fuzz(func(t *testing.T, data []byte, hd, dd bool) {
		r := NewReader(bytes.NewReader(data))
		r.HeaderDigest, r.DataDigest = hd, dd
		r.MaxDataSegmentLength = 1 << 16
		var q PDU
		for i := 0; i < 4; i++ {
			if err := r.Read(&q); err != nil {
				return
			}
			// Whatever decodes must encode and decode to the same PDU.
			var out bytes.Buffer
			w := NewWriter(&out)
			w.HeaderDigest, w.DataDigest = hd, dd
			if err := w.Write(&q); err != nil {
				t.Fatalf("re-encode: %v", err)
			}
			r2 := NewReader(&out)
			r2.HeaderDigest, r2.DataDigest = hd, dd
			var back PDU
			if err := r2.Read(&back); err != nil {
				t.Fatalf("re-decode: %v", err)
			}
			if back.BHS != q.BHS || !bytes.Equal(back.Data, q.Data) || !bytes.Equal(back.AHS, q.AHS) {
				t.Fatal("round trip changed the PDU")
			}
		}
	})
}
