package chap

import (
	"crypto/md5"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestResponseMD5MatchesRFC1994(t *testing.T) {
	secret := []byte("averylongsecret!")
	challenge := []byte{1, 2, 3, 4}
	got, err := Response(MD5, 7, secret, challenge)
	require.NoError(t, err)
	want := md5.Sum(append(append([]byte{7}, secret...), challenge...))
	assert.Equal(t, want[:], got)
	assert.True(t, Verify(MD5, 7, secret, challenge, got))
	assert.False(t, Verify(MD5, 8, secret, challenge, got))
	assert.False(t, Verify(MD5, 7, []byte("wrong"), challenge, got))
	assert.False(t, Verify(SHA256, 7, secret, challenge, got))
}

func TestAlgorithms(t *testing.T) {
	for _, a := range []Algorithm{MD5, SHA1, SHA256} {
		r, err := Response(a, 1, []byte("s"), []byte("c"))
		require.NoError(t, err)
		assert.Len(t, r, a.Size(), a.String())
	}
	_, err := Response(Algorithm(99), 1, nil, nil)
	assert.ErrorIs(t, err, ErrUnknownAlgorithm)
	assert.False(t, Verify(Algorithm(99), 1, nil, nil, nil))
}

func TestChallenge(t *testing.T) {
	_, c1, err := NewChallenge()
	require.NoError(t, err)
	_, c2, err := NewChallenge()
	require.NoError(t, err)
	assert.Len(t, c1, ChallengeLen)
	assert.NotEqual(t, c1, c2)
}

func TestDecode(t *testing.T) {
	b, err := Decode("0x0102ff")
	require.NoError(t, err)
	assert.Equal(t, []byte{1, 2, 0xff}, b)
	b, err = Decode("0xABC") // odd digit count
	require.NoError(t, err)
	assert.Equal(t, []byte{0x0a, 0xbc}, b)
	b, err = Decode("0bAQID")
	require.NoError(t, err)
	assert.Equal(t, []byte{1, 2, 3}, b)
	for _, bad := range []string{"", "0x", "0b", "123", "0xzz", "0b!!"} {
		_, err := Decode(bad)
		assert.Error(t, err, bad)
	}
	assert.Equal(t, "0x0102", EncodeHex([]byte{1, 2}))
}

func FuzzDecode(f *testing.F) {
	f.Add("0x00")
	f.Add("0bAA==")
	f.Add("0xF")
	f.Fuzz(func(t *testing.T, s string) {
		b, err := Decode(s)
		if err != nil {
			return
		}
		back, err := Decode(EncodeHex(b))
		if err != nil || string(back) != string(b) {
			t.Fatalf("hex round trip of %q failed: %v", s, err)
		}
	})
}
