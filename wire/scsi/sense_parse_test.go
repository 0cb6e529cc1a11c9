package scsi

import (
	"io"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestParseSense(t *testing.T) {
	tests := []struct {
		desc string
		in   []byte
		want ParsedSense
		err  error
	}{
		{
			desc: "fixed, illegal request, invalid field in cdb",
			in:   []byte{0x70, 0, 0x05, 0, 0, 0, 0, 10, 0, 0, 0, 0, 0x24, 0x00, 0, 0, 0, 0},
			want: ParsedSense{Key: 5, ASC: 0x24},
		},
		{
			desc: "fixed, valid information, deferred",
			in:   []byte{0xf1, 0, 0x03, 0, 0, 0x12, 0x34, 10, 0, 0, 0, 0, 0x11, 0x00, 0, 0, 0, 0},
			want: ParsedSense{Key: 3, ASC: 0x11, Deferred: true, Information: 0x1234, InfoValid: true},
		},
		{
			desc: "fixed, additional length stops before asc",
			in:   []byte{0x70, 0, 0x06, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x29, 0x00},
			want: ParsedSense{Key: 6},
		},
		{
			desc: "descriptor, unit attention with information descriptor",
			in: []byte{0x72, 0x06, 0x29, 0x01, 0, 0, 0, 12,
				0x00, 0x0a, 0x80, 0, 0, 0, 0, 0, 0, 0, 0, 0x42},
			want: ParsedSense{Key: 6, ASC: 0x29, ASCQ: 1, Descriptor: true, Information: 0x42, InfoValid: true},
		},
		{desc: "descriptor, short", in: []byte{0x72, 0x02}, err: io.ErrUnexpectedEOF},
		{desc: "empty", in: nil, err: io.ErrUnexpectedEOF},
		{desc: "unknown code", in: []byte{0x7f, 0, 0}, err: ErrSenseFormat},
	}
	for _, tt := range tests {
		t.Run(tt.desc, func(t *testing.T) {
			got, err := ParseSense(tt.in)
			if tt.err != nil {
				require.ErrorIs(t, err, tt.err)
				return
			}
			require.NoError(t, err)
			assert.Equal(t, tt.want, got)
		})
	}
}

func FuzzParseSense(f *testing.F) {
	f.Add([]byte{0x70, 0, 0x05, 0, 0, 0, 0, 10, 0, 0, 0, 0, 0x24, 0x00, 0, 0, 0, 0})
	f.Add([]byte{0x72, 0x06, 0x29, 0x01, 0, 0, 0, 12, 0x00, 0x0a, 0x80, 0, 0, 0, 0, 0, 0, 0, 0, 0x42})
	f.Add([]byte{0x72, 0x06, 0x29, 0x01, 0, 0, 0, 0xff, 0x00, 0xff})
	f.Add([]byte{0xf0, 0, 0, 1})
	f.Fuzz(func(t *testing.T, b []byte) {
		s, err := ParseSense(b)
		if err == nil && s.Key > 0x0f {
			t.Fatalf("sense key %#x out of range", s.Key)
		}
	})
}

func TestSenseKeyName(t *testing.T) {
	assert.Equal(t, "ILLEGAL REQUEST", SenseKeyName(SenseIllegalRequest))
	assert.Equal(t, "UNIT ATTENTION", SenseKeyName(0xf6), "only the low nibble is the key")
	assert.Equal(t, "RESERVED", SenseKeyName(0xc))
	assert.Equal(t, "COMPLETED", SenseKeyName(SenseCompleted))
}
