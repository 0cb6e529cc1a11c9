package text

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestParseAndAppend(t *testing.T) {
	in := []KV{{"InitiatorName", "iqn.2026-11.dev.tandem:a"}, {"SessionType", "Normal"}, {"X-foo", ""}}
	data := Append(nil, in...)
	got, rest, err := Parse(data, false)
	require.NoError(t, err)
	assert.Nil(t, rest)
	assert.Equal(t, in, got)
	v, ok := Get(got, "SessionType")
	assert.True(t, ok)
	assert.Equal(t, "Normal", v)
	_, ok = Get(got, "Missing")
	assert.False(t, ok)
}

func TestParseErrors(t *testing.T) {
	cases := []struct {
		desc string
		in   string
		want error
	}{
		{"no equals", "abc\x00", ErrNoEquals},
		{"bad key", "a b=c\x00", ErrBadKey},
		{"empty key", "=c\x00", ErrBadKey},
		{"duplicate", "a=1\x00a=2\x00", ErrDuplicate},
		{"unterminated", "a=1", ErrNotTerminal},
		{"key too long", string(make64('k')) + "=1\x00", ErrKeyTooLong},
	}
	for _, c := range cases {
		t.Run(c.desc, func(t *testing.T) {
			_, _, err := Parse([]byte(c.in), false)
			assert.ErrorIs(t, err, c.want)
		})
	}
}

func make64(c byte) []byte {
	b := make([]byte, 64)
	for i := range b {
		b[i] = c
	}
	return b
}

func TestParsePartial(t *testing.T) {
	kvs, rest, err := Parse([]byte("a=1\x00b=2"), true)
	require.NoError(t, err)
	assert.Equal(t, []KV{{"a", "1"}}, kvs)
	assert.Equal(t, "b=2", string(rest))
}

func TestNumbersAndBools(t *testing.T) {
	n, err := ParseNumber("262144")
	require.NoError(t, err)
	assert.Equal(t, uint64(262144), n)
	n, err = ParseNumber("0x10")
	require.NoError(t, err)
	assert.Equal(t, uint64(16), n)
	for _, bad := range []string{"", "012", "-1", "1x", "0x"} {
		_, err := ParseNumber(bad)
		assert.Error(t, err, bad)
	}
	b, err := ParseBool("Yes")
	require.NoError(t, err)
	assert.True(t, b)
	_, err = ParseBool("yes")
	assert.Error(t, err)
	assert.Equal(t, "No", FormatBool(false))
}

func FuzzParse(f *testing.F) {
	f.Add([]byte("InitiatorName=iqn.x\x00SessionType=Discovery\x00"), false)
	f.Add([]byte("a=1\x00b"), true)
	f.Add([]byte("\x00\x00=\x00"), false)
	f.Fuzz(func(t *testing.T, data []byte, partial bool) {
		kvs, rest, err := Parse(data, partial)
		if err != nil {
			return
		}
		// Re-encoding what parsed must parse to the same pairs.
		again, _, err := Parse(Append(nil, kvs...), false)
		if err != nil {
			t.Fatalf("re-parse: %v", err)
		}
		if len(again) != len(kvs) {
			t.Fatalf("round trip changed %d pairs into %d", len(kvs), len(again))
		}
		_ = rest
	})
}
