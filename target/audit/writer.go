package audit

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"os"
	"sync"
	"sync/atomic"
	"time"
)

// DefaultBuffer is the number of records a Writer holds before it drops:
// about 2 s of 4 KiB random writes at 30k IOPS, ~10 MiB of memory.
const DefaultBuffer = 1 << 16

// Stats count what a Writer did.
type Stats struct {
	// Appended records went to the stream (start and dropped markers
	// included); Dropped were lost because the buffer was full.
	Appended, Dropped uint64
}

// Writer appends records to a stream from a goroutine of its own, so that
// the commands that produce them never wait for the disk.
type Writer struct {
	ch       chan Record
	dropped  atomic.Uint64
	appended atomic.Uint64
	now      func() time.Time
	out      io.WriteCloser
	bw       *bufio.Writer
	stop     chan struct{}
	done     chan struct{}
	once     sync.Once
	// err is the first write error; after it the writer only counts.
	err error
}

// NewWriter starts a Writer on a new stream in out, which it owns (Close
// closes it): the header, then a start record. buffer <= 0 selects
// DefaultBuffer.
func NewWriter(out io.WriteCloser, buffer int) (*Writer, error) {
	return newWriter(out, buffer, true)
}

// OpenFile starts a Writer that appends to the stream at path, creating
// it, or cutting the torn tail a killed daemon left, so that the runs of
// a restarted daemon follow each other in one file.
func OpenFile(path string, buffer int) (*Writer, error) {
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o644)
	if err != nil {
		return nil, fmt.Errorf("audit: open %s: %w (check the audit key of the LUN)", path, err)
	}
	end, err := wholeLength(f)
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("audit: %s: %w; move it away to start a new stream", path, err)
	}
	if err := f.Truncate(end); err == nil {
		_, err = f.Seek(end, io.SeekStart)
	}
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("audit: cut the torn tail of %s: %w", path, err)
	}
	return newWriter(f, buffer, end == 0)
}

// wholeLength is the length of the whole records of the stream in f (0
// for an empty file).
func wholeLength(f *os.File) (int64, error) {
	cr := &countingReader{r: f}
	rd := NewReader(cr)
	var end int64
	for {
		_, err := rd.Next()
		switch {
		case errors.Is(err, io.EOF) || errors.Is(err, ErrTornTail):
			return end, nil
		case err != nil:
			return 0, err
		}
		end = cr.n - int64(rd.r.Buffered())
	}
}

type countingReader struct {
	r io.Reader
	n int64
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n += int64(n)
	return n, err
}

func newWriter(out io.WriteCloser, buffer int, header bool) (*Writer, error) {
	if buffer <= 0 {
		buffer = DefaultBuffer
	}
	w := &Writer{ch: make(chan Record, buffer), now: time.Now, out: out,
		bw: bufio.NewWriterSize(out, 1<<16), stop: make(chan struct{}), done: make(chan struct{})}
	if header {
		_, _ = w.bw.WriteString(Magic)
	}
	w.put(&Record{Kind: KindStart, Time: w.now().UnixNano()}, nil)
	if w.err == nil {
		w.err = w.bw.Flush()
	}
	if w.err != nil {
		out.Close()
		return nil, fmt.Errorf("audit: start stream: %w", w.err)
	}
	go w.loop()
	return w, nil
}

// Append queues r; when the buffer is full r is dropped and counted.
// It never blocks and is safe for concurrent use, also after Close
// (the record is then lost). r is taken by value so that callers behind
// an interface do not allocate.
func (w *Writer) Append(r Record) {
	select {
	case w.ch <- r:
	default:
		w.dropped.Add(1)
	}
}

// Stats returns the counts so far.
func (w *Writer) Stats() Stats {
	return Stats{Appended: w.appended.Load(), Dropped: w.dropped.Load()}
}

// Close writes what is queued, a dropped marker if records were lost
// since the last one, and closes the stream.
func (w *Writer) Close() error {
	w.once.Do(func() { close(w.stop) })
	<-w.done
	if err := w.out.Close(); err != nil && w.err == nil {
		w.err = err
	}
	if w.err != nil {
		return fmt.Errorf("audit: write stream: %w", w.err)
	}
	return nil
}

func (w *Writer) put(r *Record, buf []byte) []byte {
	if w.err != nil {
		return buf
	}
	var err error
	buf, err = AppendRecord(buf[:0], r)
	if err == nil {
		_, err = w.bw.Write(buf)
	}
	if err != nil {
		w.err = err
		return buf
	}
	w.appended.Add(1)
	return buf
}

func (w *Writer) loop() {
	defer close(w.done)
	var (
		buf      []byte
		reported uint64 // drops already written as markers
	)
	marker := func() {
		// The marker goes where the loss is noticed: between the
		// records before and after the gap, as near as the writer knows.
		if d := w.dropped.Load(); d > reported {
			buf = w.put(&Record{Kind: KindDropped, Time: w.now().UnixNano(), Dropped: d - reported}, buf)
			reported = d
		}
	}
	for {
		select {
		case r := <-w.ch:
			marker()
			buf = w.put(&r, buf)
			if len(w.ch) == 0 && w.err == nil {
				// Idle: hand the batch to the kernel, so a SIGKILL of
				// the daemon loses at most what was still queued.
				marker()
				w.err = w.bw.Flush()
			}
		case <-w.stop:
			for len(w.ch) > 0 {
				r := <-w.ch
				marker()
				buf = w.put(&r, buf)
			}
			marker()
			if w.err == nil {
				w.err = w.bw.Flush()
			}
			return
		}
	}
}
