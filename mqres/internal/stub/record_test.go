package stub

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestReplay(t *testing.T) {
	log := encodeRecord("P", "Q", []byte("a")) + encodeRecord("P", "Q", []byte("b")) +
		encodeRecord("G", "Q", nil) + encodeRecord("P", "R", []byte("c"))
	msg := map[string][][]byte{}
	require.Equal(t, len(log), replay([]byte(log), msg))
	assert.Equal(t, map[string][][]byte{"Q": {[]byte("b")}, "R": {[]byte("c")}}, msg)

	// A torn tail (kill -9 mid-write) ends replay at the last whole record.
	torn := log + encodeRecord("P", "Q", []byte("d"))[:5]
	msg = map[string][][]byte{}
	assert.Equal(t, len(log), replay([]byte(torn), msg))
	// So does a corrupt record.
	bad := []byte(log + encodeRecord("P", "Q", []byte("d")))
	bad[len(log)+3] ^= 1
	assert.Equal(t, len(log), replay(bad, map[string][][]byte{}))
}

func FuzzDecodeRecord(f *testing.F) {
	f.Add(encodeRecord("P", "Q", []byte("hello"))[:len(encodeRecord("P", "Q", []byte("hello")))-1])
	f.Add("G Q  00000000")
	f.Add("")
	f.Fuzz(func(t *testing.T, line string) {
		r, ok := decodeRecord(line)
		if !ok {
			return
		}
		again := encodeRecord(r.op, r.queue, r.data)
		r2, ok := decodeRecord(again[:len(again)-1])
		require.True(t, ok)
		require.Equal(t, r, r2)
	})
}
