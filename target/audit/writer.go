package audit

import (
	"bufio"
	"fmt"
	"io"
	"sync"
	"sync/atomic"
	"time"
)

// DefaultBuffer is the number of records a Writer holds before it drops:
// about 2 s of 4 KiB random writes at 30k IOPS, ~2 MiB of memory.
const DefaultBuffer = 1 << 16

// Stats count what a Writer did.
type Stats struct {
	// Appended records reached the stream; Dropped were lost because the
	// buffer was full.
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
	done     chan struct{}
	once     sync.Once
	// err is the first write error; after it the writer only counts.
	err error
}

// NewWriter starts a Writer on out, which it owns (Close closes it).
// buffer <= 0 selects DefaultBuffer. The stream header is written first.
func NewWriter(out io.WriteCloser, buffer int) (*Writer, error) {
	if buffer <= 0 {
		buffer = DefaultBuffer
	}
	w := &Writer{ch: make(chan Record, buffer), now: time.Now, out: out,
		bw: bufio.NewWriterSize(out, 1<<16), done: make(chan struct{})}
	if _, err := w.bw.WriteString(Magic); err != nil {
		return nil, fmt.Errorf("audit: write stream header: %w", err)
	}
	if err := w.bw.Flush(); err != nil {
		return nil, fmt.Errorf("audit: write stream header: %w", err)
	}
	go w.loop()
	return w, nil
}

// Append queues r; when the buffer is full r is dropped and counted.
// It never blocks and is safe for concurrent use. r is taken by value so
// that callers behind an interface do not allocate.
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
// since the last one, and closes the stream. Append must not be called
// after Close.
func (w *Writer) Close() error {
	w.once.Do(func() { close(w.ch) })
	<-w.done
	if err := w.out.Close(); err != nil && w.err == nil {
		w.err = err
	}
	if w.err != nil {
		return fmt.Errorf("audit: write stream: %w", w.err)
	}
	return nil
}

func (w *Writer) loop() {
	defer close(w.done)
	var (
		buf      []byte
		reported uint64 // drops already written as markers
	)
	put := func(r *Record) {
		if w.err != nil {
			return
		}
		var err error
		buf, err = AppendRecord(buf[:0], r)
		if err == nil {
			_, err = w.bw.Write(buf)
		}
		if err != nil {
			w.err = err
			return
		}
		w.appended.Add(1)
	}
	marker := func() {
		// The marker goes where the loss is noticed: between the
		// records before and after the gap, as near as the writer knows.
		if d := w.dropped.Load(); d > reported {
			put(&Record{Kind: KindDropped, Time: w.now().UnixNano(), Dropped: d - reported})
			reported = d
		}
	}
	for r := range w.ch {
		marker()
		put(&r)
		if len(w.ch) == 0 && w.err == nil {
			// Idle: hand the batch to the kernel, so a SIGKILL of the
			// daemon loses at most what was still queued.
			marker()
			if err := w.bw.Flush(); err != nil {
				w.err = err
			}
		}
	}
	marker()
	if w.err == nil {
		w.err = w.bw.Flush()
	}
}
