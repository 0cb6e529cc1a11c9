package heartbeat

import (
	"bytes"
	"crypto/hmac"
	"crypto/sha256"
	"io"
	"os"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

var testKey = []byte("0123456789abcdef0123456789abcdef")

func sample() Message {
	return Message{Cluster: "tandem", Node: "alpha", Boot: 1700000000, Seq: 42, State: 3, Flags: 1, SentAt: 123456789, EchoOf: -5}
}

func TestSealOpenRoundTrip(t *testing.T) {
	m := sample()
	b := Seal(nil, testKey, &m)
	require.Len(t, b, headerLen+len("tandem")+len("alpha")+tagLen)
	got, err := Open(testKey, b)
	require.NoError(t, err)
	assert.Equal(t, m, got)
}

func TestSealAppends(t *testing.T) {
	m := sample()
	prefix := []byte("xyz")
	b := Seal(prefix, testKey, &m)
	require.Equal(t, "xyz", string(b[:3]))
	got, err := Open(testKey, b[3:])
	require.NoError(t, err)
	assert.Equal(t, m, got)
}

func TestOpenErrors(t *testing.T) {
	m := sample()
	good := Seal(nil, testKey, &m)
	mut := func(f func(b []byte) []byte) []byte { return f(bytes.Clone(good)) }
	tests := []struct {
		desc string
		key  []byte
		b    []byte
		err  error
	}{
		{desc: "empty", b: nil, err: io.ErrUnexpectedEOF},
		{desc: "version only", b: []byte{Version}, err: io.ErrUnexpectedEOF},
		{desc: "other version", b: mut(func(b []byte) []byte { b[0] = 2; return b }), err: ErrVersion},
		{desc: "short header", b: good[:headerLen-1], err: io.ErrUnexpectedEOF},
		{desc: "short tag", b: good[:len(good)-1], err: io.ErrUnexpectedEOF},
		{desc: "trailing byte", b: append(bytes.Clone(good), 0), err: ErrMalformed},
		{desc: "wrong key", key: []byte("other"), b: good, err: ErrForged},
		{desc: "flipped state", b: mut(func(b []byte) []byte { b[1] ^= 1; return b }), err: ErrForged},
		{desc: "flipped tag", b: mut(func(b []byte) []byte { b[len(b)-1] ^= 1; return b }), err: ErrForged},
		{desc: "name length grown", b: mut(func(b []byte) []byte { b[4]++; return b }), err: io.ErrUnexpectedEOF},
		{desc: "name length shrunk", b: mut(func(b []byte) []byte { b[4]--; return b }), err: ErrMalformed},
	}
	for _, tt := range tests {
		t.Run(tt.desc, func(t *testing.T) {
			key := tt.key
			if key == nil {
				key = testKey
			}
			_, err := Open(key, tt.b)
			assert.ErrorIs(t, err, tt.err)
		})
	}
}

func TestOpenRejectsAuthenticatedButMalformed(t *testing.T) {
	// A key holder could seal an empty name or reserved bits; the tag is
	// valid, the content is not.
	m := sample()
	for _, off := range []struct {
		desc string
		i    int
		v    byte
	}{{"unknown type", 5, byte(typeEnd)}, {"largest type", 5, 0xff}, {"reserved 6", 6, 1}, {"reserved 7", 7, 1}} {
		b := Seal(nil, testKey, &m)
		b[off.i] = off.v
		b = resign(b)
		_, err := Open(testKey, b)
		assert.ErrorIs(t, err, ErrMalformed, off.desc)
	}
}

func TestReleasedRoundTrip(t *testing.T) {
	m := sample()
	m.Type = TypeReleased
	b := Seal(nil, testKey, &m)
	assert.Equal(t, byte(TypeReleased), b[5], "the type travels in the first reserved byte")
	got, err := Open(testKey, b)
	require.NoError(t, err)
	assert.Equal(t, m, got)
	// Authenticated like a keepalive: a forged "released" is refused.
	b[5] = byte(TypeKeepalive)
	_, err = Open(testKey, b)
	assert.ErrorIs(t, err, ErrForged, "turning a released into a keepalive breaks the tag")
	// A keepalive is type zero, the layout of every earlier release.
	k := sample()
	assert.Equal(t, byte(0), Seal(nil, testKey, &k)[5])
}

// resign replaces the tag of b with a valid one for its altered body.
func resign(b []byte) []byte {
	body := b[:len(b)-tagLen]
	mac := hmac.New(sha256.New, testKey)
	mac.Write(body)
	return mac.Sum(bytes.Clone(body))
}

func TestCheckNameAndSealPanics(t *testing.T) {
	assert.ErrorIs(t, CheckName(""), ErrName)
	assert.ErrorIs(t, CheckName(strings.Repeat("n", 256)), ErrName)
	assert.NoError(t, CheckName(strings.Repeat("n", 255)))
	m := sample()
	m.Node = ""
	assert.Panics(t, func() { Seal(nil, testKey, &m) })
	m.Node = strings.Repeat("n", 255)
	m.Cluster = strings.Repeat("c", 255)
	b := Seal(nil, testKey, &m)
	assert.Len(t, b, MaxLen)
	got, err := Open(testKey, b)
	require.NoError(t, err)
	assert.Equal(t, m, got)
}

func TestSealAllocs(t *testing.T) {
	m := sample()
	buf := make([]byte, 0, MaxLen)
	n := testing.AllocsPerRun(100, func() { buf = Seal(buf[:0], testKey, &m) })
	// hmac.New allocates its hash states; the datagram itself does not.
	assert.LessOrEqual(t, n, 8.0)
}

func TestNoFmt(t *testing.T) {
	for _, f := range []string{"message.go", "filter.go"} {
		src, err := os.ReadFile(f)
		require.NoError(t, err)
		assert.NotContains(t, string(src), `"fmt"`, "%s must not import fmt", f)
	}
}

func FuzzOpen(f *testing.F) {
	m := sample()
	good := Seal(nil, testKey, &m)
	f.Add(good)
	f.Add(good[:len(good)-1])
	f.Add([]byte{})
	f.Add([]byte{Version})
	f.Add(make([]byte, MinLen))
	f.Add(append(bytes.Clone(good), 0))
	r := sample()
	r.Type = TypeReleased
	f.Add(Seal(nil, testKey, &r))
	unknown := Seal(nil, testKey, &r)
	unknown[5] = byte(typeEnd) // a type of a later release: refused
	f.Add(resign(unknown))
	f.Fuzz(func(t *testing.T, b []byte) {
		got, err := Open(testKey, b)
		if err != nil {
			return
		}
		// Whatever opens must re-seal to the same bytes.
		again := Seal(nil, testKey, &got)
		require.Equal(t, b, again)
	})
}

func TestFilter(t *testing.T) {
	f := NewFilter("tandem", "alpha")
	msg := func(node string, boot, seq uint64) Message {
		return Message{Cluster: "tandem", Node: node, Boot: boot, Seq: seq}
	}
	tests := []struct {
		desc string
		m    Message
		err  error
	}{
		{desc: "first", m: msg("beta", 10, 5)},
		{desc: "duplicate", m: msg("beta", 10, 5), err: ErrReplay},
		{desc: "newer", m: msg("beta", 10, 7)},
		{desc: "reordered within window", m: msg("beta", 10, 6)},
		{desc: "reordered duplicate", m: msg("beta", 10, 6), err: ErrReplay},
		{desc: "jump", m: msg("beta", 10, 7+Window)},
		{desc: "out of window", m: msg("beta", 10, 7), err: ErrReplay},
		{desc: "edge of window", m: msg("beta", 10, 8)},
		{desc: "older boot", m: msg("beta", 9, 1000), err: ErrReplay},
		{desc: "newer boot resets", m: msg("beta", 11, 1)},
		{desc: "old boot after reset", m: msg("beta", 10, 9999), err: ErrReplay},
		{desc: "self", m: msg("alpha", 1, 1), err: ErrSelf},
		{desc: "foreign", m: Message{Cluster: "other", Node: "beta", Boot: 12, Seq: 1}, err: ErrForeign},
		{desc: "other node has its own window", m: msg("gamma", 1, 1)},
	}
	for _, tt := range tests {
		err := f.Accept(tt.m)
		if tt.err == nil {
			assert.NoError(t, err, tt.desc)
		} else {
			assert.ErrorIs(t, err, tt.err, tt.desc)
		}
	}
	assert.Equal(t, Stats{Accepted: 7, Foreign: 1, Self: 1, Replayed: 5}, f.Stats())
}

func TestFilterReceiveCounts(t *testing.T) {
	f := NewFilter("tandem", "beta")
	m := sample()
	b := Seal(nil, testKey, &m)
	got, err := f.Receive(testKey, b)
	require.NoError(t, err)
	assert.Equal(t, m, got)
	_, err = f.Receive(testKey, b)
	assert.ErrorIs(t, err, ErrReplay)
	_, err = f.Receive([]byte("wrong"), b)
	assert.ErrorIs(t, err, ErrForged)
	_, err = f.Receive(testKey, b[:10])
	assert.ErrorIs(t, err, io.ErrUnexpectedEOF)
	assert.Equal(t, Stats{Accepted: 1, Replayed: 1, Forged: 1, Malformed: 1}, f.Stats())
}
