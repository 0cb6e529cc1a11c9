package audit

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"sync"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// gate is an output that blocks every Write until released.
type gate struct {
	mu      sync.Mutex
	buf     bytes.Buffer
	entered chan struct{}
	release chan struct{}
	closed  bool
}

func (g *gate) Write(p []byte) (int, error) {
	g.entered <- struct{}{}
	<-g.release
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.buf.Write(p)
}

func (g *gate) Close() error { g.closed = true; return nil }

type nopCloser struct{ *bytes.Buffer }

func (nopCloser) Close() error { return nil }

func TestWriterReaderRoundTrip(t *testing.T) {
	var out bytes.Buffer
	w, err := NewWriter(nopCloser{&out}, 0)
	require.NoError(t, err)
	var want []Record
	for i := range 1000 {
		r := sample()
		r.Seq = uint64(i)
		want = append(want, r)
		w.Append(r)
	}
	require.NoError(t, w.Close())
	w.Append(want[0]) // after Close: lost, but no panic
	assert.Equal(t, Stats{Appended: 1001}, w.Stats())
	got, torn, err := ReadAll(bytes.NewReader(out.Bytes()))
	require.NoError(t, err)
	assert.False(t, torn)
	require.NotEmpty(t, got)
	assert.Equal(t, KindStart, got[0].Kind)
	got = got[1:]
	assert.Equal(t, want, got)

	// A writer killed mid-append leaves a torn tail: the whole records
	// before it still read.
	got, torn, err = ReadAll(bytes.NewReader(out.Bytes()[:out.Len()-3]))
	require.NoError(t, err)
	assert.True(t, torn)
	assert.Equal(t, want[:999], got[1:])

	_, _, err = ReadAll(bytes.NewReader([]byte("NOTAUDIT")))
	require.ErrorIs(t, err, errMagic)
}

// TestWriterDropsWhenFull: with the disk stuck, Append neither blocks
// nor loses count; the stream then says how many records are missing.
func TestWriterDropsWhenFull(t *testing.T) {
	g := &gate{entered: make(chan struct{}, 1000), release: make(chan struct{})}
	go func() { <-g.entered; g.release <- struct{}{} }() // the header goes through
	w, err := NewWriter(g, 4)
	require.NoError(t, err)
	r := sample()
	w.Append(r)
	<-g.entered // the writer is now stuck flushing the first record
	for range 99 {
		w.Append(r) // must return at once
	}
	assert.Equal(t, Stats{Appended: 2, Dropped: 95}, w.Stats(), "start and 1 in the stream buffer, 4 queued, 95 dropped")
	close(g.release)
	require.NoError(t, w.Close())
	st := w.Stats()
	assert.EqualValues(t, 95, st.Dropped)
	assert.True(t, g.closed)

	recs, _, err := ReadAll(bytes.NewReader(g.buf.Bytes()))
	require.NoError(t, err)
	s := Summarize(recs)
	assert.Equal(t, st.Dropped, s.Dropped, "every drop is reported in the stream")
	assert.Equal(t, 100, s.Accepted+s.Refused+int(s.Dropped))
}

type failing struct{}

func (failing) Write([]byte) (int, error) { return 0, errors.New("disk full") }
func (failing) Close() error              { return nil }

func TestWriterReportsWriteError(t *testing.T) {
	_, err := NewWriter(failing{}, 1)
	require.ErrorContains(t, err, "disk full")
}

func TestReadFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "a.audit")
	f, err := os.Create(path)
	require.NoError(t, err)
	w, err := NewWriter(f, 0)
	require.NoError(t, err)
	r := sample()
	w.Append(r)
	require.NoError(t, w.Close())
	recs, torn, err := ReadFile(path)
	require.NoError(t, err)
	assert.False(t, torn)
	require.Len(t, recs, 2)
	assert.Equal(t, r, recs[1])
	_, _, err = ReadFile(filepath.Join(t.TempDir(), "missing"))
	require.ErrorContains(t, err, "is audit set on the LUN")
}

// TestOpenFileAppendsAcrossRuns: a daemon killed mid-append leaves a
// torn record; the next run cuts it and appends after a start record.
func TestOpenFileAppendsAcrossRuns(t *testing.T) {
	path := filepath.Join(t.TempDir(), "lun.audit")
	r1, r2 := sample(), sample()
	r1.Seq, r2.Seq = 1, 2
	w, err := OpenFile(path, 0)
	require.NoError(t, err)
	w.Append(r1)
	w.Append(r2)
	require.NoError(t, w.Close())
	fi, err := os.Stat(path)
	require.NoError(t, err)
	require.NoError(t, os.Truncate(path, fi.Size()-5)) // r2 torn by a kill

	w, err = OpenFile(path, 0)
	require.NoError(t, err)
	r3 := sample()
	r3.Seq = 1
	w.Append(r3)
	require.NoError(t, w.Close())
	recs, torn, err := ReadFile(path)
	require.NoError(t, err)
	assert.False(t, torn)
	var kinds []Kind
	for _, r := range recs {
		kinds = append(kinds, r.Kind)
	}
	assert.Equal(t, []Kind{KindStart, KindWrite, KindStart, KindWrite}, kinds)
	assert.Equal(t, r1, recs[1])
	assert.Equal(t, r3, recs[3])

	require.NoError(t, os.WriteFile(path, []byte("something else"), 0o644))
	_, err = OpenFile(path, 0)
	require.ErrorContains(t, err, "move it away")
}
