package scsi

import (
	"bytes"
	"log/slog"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/tandem-ha/tandem/target/backstore"
	wscsi "github.com/tandem-ha/tandem/wire/scsi"
)

// fakeClock drives the fault log: now moves only when the test says so,
// and after callbacks run when it passes their deadline.
type fakeClock struct {
	mu    sync.Mutex
	t     time.Time
	slept time.Duration
	due   []timer
}

type timer struct {
	at time.Time
	f  func()
}

func (c *fakeClock) now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }

func (c *fakeClock) after(d time.Duration, f func()) {
	c.mu.Lock()
	c.due = append(c.due, timer{c.t.Add(d), f})
	c.mu.Unlock()
}

// sleep stands for a slow backend: it moves the clock on.
func (c *fakeClock) sleep(d time.Duration) { c.mu.Lock(); c.t = c.t.Add(d); c.mu.Unlock() }

func (c *fakeClock) advance(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	var run []func()
	keep := c.due[:0]
	for _, tm := range c.due {
		if !tm.at.After(c.t) {
			run = append(run, tm.f)
		} else {
			keep = append(keep, tm)
		}
	}
	c.due = keep
	c.mu.Unlock()
	for _, f := range run {
		f()
	}
}

type syncBuf struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuf) Write(p []byte) (int, error) { s.mu.Lock(); defer s.mu.Unlock(); return s.b.Write(p) }
func (s *syncBuf) lines() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return strings.Split(strings.TrimSpace(s.b.String()), "\n")
}

// newFaultyTarget is a target whose LU 3 sits on a Faulty file, with the
// fault log on a fake clock and captured.
func newFaultyTarget(t *testing.T) (*Target, *LU, *backstore.Faulty, *fakeClock, *syncBuf) {
	t.Helper()
	be, err := backstore.Open(filepath.Join(t.TempDir(), "lu.img"), backstore.Options{Create: true, Size: testBlocks * 512})
	require.NoError(t, err)
	clk := &fakeClock{t: time.Unix(1000, 0)}
	fb := backstore.NewFaulty(be, clk.sleep)
	lu, err := NewLU(LUConfig{Serial: "FAULTY1", Thin: true, WriteCache: true}, fb.Backend())
	require.NoError(t, err)
	t.Cleanup(func() { lu.Close() })
	var logs syncBuf
	tgt := NewTarget("iqn.2025-01.test:t", slog.New(slog.NewTextHandler(&logs, nil)))
	tgt.clock = clock{now: clk.now, after: clk.after}
	require.NoError(t, tgt.AddLU(3, lu))
	return tgt, lu, fb, clk, &logs
}

func TestBackendErrorSense(t *testing.T) {
	for _, tc := range []struct {
		desc       string
		fault      backstore.Fault
		cdb        []byte
		out        []byte
		descriptor bool
		want       senseWant
		info       uint64
		stats      FaultStats
	}{
		{desc: "EIO reading blocks 100..109, READ(10) of 96+8 fails at 100",
			fault: backstore.Fault{Op: backstore.FaultRead, Off: 100 * 512, Len: 10 * 512, Err: backstore.FaultEIO},
			cdb:   cdb10(0x28, 0, 96, 8), want: senseWant{wscsi.SenseMediumError, 0x11, 0}, info: 100,
			stats: FaultStats{ReadErrors: 1}},
		{desc: "descriptor format carries the same LBA",
			fault: backstore.Fault{Op: backstore.FaultRead, Off: 100 * 512, Len: 10 * 512, Err: backstore.FaultEIO},
			cdb:   cdb16(0x88, 0, 99, 4), descriptor: true, want: senseWant{wscsi.SenseMediumError, 0x11, 0}, info: 100,
			stats: FaultStats{ReadErrors: 1}},
		{desc: "EIO writing: WRITE ERROR at the first bad block",
			fault: backstore.Fault{Op: backstore.FaultWrite, Off: 205 * 512, Err: backstore.FaultEIO},
			cdb:   cdb10(0x2a, 0, 200, 8), out: make([]byte, 8*512), want: senseWant{wscsi.SenseMediumError, 0x0c, 0}, info: 205,
			stats: FaultStats{WriteErrors: 1}},
		{desc: "ENOSPC writing: SPACE ALLOCATION FAILED WRITE PROTECT",
			fault: backstore.Fault{Op: backstore.FaultWrite, Err: backstore.FaultENOSPC},
			cdb:   cdb10(0x2a, 0, 10, 2), out: make([]byte, 2*512), want: senseWant{wscsi.SenseDataProtect, 0x27, 0x07}, info: 10,
			stats: FaultStats{SpaceAllocFailures: 1}},
		{desc: "ENOSPC on WRITE SAME",
			fault: backstore.Fault{Op: backstore.FaultWrite, Err: backstore.FaultENOSPC},
			cdb:   cdb10(0x41, 0, 50, 4), out: make([]byte, 512), want: senseWant{wscsi.SenseDataProtect, 0x27, 0x07}, info: 50,
			stats: FaultStats{SpaceAllocFailures: 1}},
	} {
		t.Run(tc.desc, func(t *testing.T) {
			tgt, lu, fb, _, _ := newFaultyTarget(t)
			lu.dsense.Store(tc.descriptor)
			require.NoError(t, fb.SetFaults([]backstore.Fault{tc.fault}))
			r := run(tgt, 3, tc.cdb, tc.out, 8*512)
			s := sense(t, r)
			assert.Equal(t, tc.want, senseWant{s.Key, s.ASC, s.ASCQ})
			assert.Equal(t, tc.descriptor, s.Descriptor)
			assert.True(t, s.InfoValid, "VALID / information descriptor")
			assert.Equal(t, tc.info, s.Information)
			assert.Equal(t, tc.stats, lu.FaultStats())

			// The next good I/O, outside the range, is served.
			check(t, run(tgt, 3, cdb10(0x28, 0, 1000, 1), nil, 512), wantGood)
			// And healed, the failed command succeeds.
			require.NoError(t, fb.SetFaults(nil))
			r = run(tgt, 3, tc.cdb, tc.out, 8*512)
			assert.Equal(t, byte(wscsi.StatusGood), r.Status)
		})
	}
}

func TestPartialWriteIsNotGood(t *testing.T) {
	tgt, _, fb, _, _ := newFaultyTarget(t)
	require.NoError(t, fb.SetFaults([]backstore.Fault{{Op: backstore.FaultWrite, Off: 4 * 512, Len: 512, Err: backstore.FaultEIO}}))
	data := bytes.Repeat([]byte{0xab}, 8*512)
	r := run(tgt, 3, cdb10(0x2a, 0x08, 0, 8), data, 0) // FUA
	assert.Equal(t, byte(wscsi.StatusCheckCondition), r.Status, "a write that stopped at block 4 is not acknowledged")
	// Blocks 0..3 are on the medium, 4.. are not: the sense says where.
	got := run(tgt, 3, cdb10(0x28, 0, 0, 8), nil, 8*512)
	require.Equal(t, byte(wscsi.StatusGood), got.Status)
	assert.Equal(t, data[:4*512], got.DataIn[:4*512])
	assert.Equal(t, make([]byte, 4*512), got.DataIn[4*512:])
}

func TestFixedSenseLeavesWideInformationOut(t *testing.T) {
	b := senseData(failure{reason: reasonReadError, infoValid: true, info: 1 << 33}, false)
	assert.Zero(t, b[0]&0x80, "VALID clear: the LBA does not fit four bytes")
	b = senseData(failure{reason: reasonReadError, infoValid: true, info: 7}, false)
	assert.Equal(t, byte(0xf0), b[0])
	assert.Equal(t, []byte{0, 0, 0, 7}, b[3:7])
}

func TestFaultLogOncePerBurst(t *testing.T) {
	tgt, lu, fb, clk, logs := newFaultyTarget(t)
	require.NoError(t, fb.SetFaults([]backstore.Fault{{Op: backstore.FaultRead, Off: 0, Len: 512, Err: backstore.FaultEIO}}))
	for range 50 {
		sense(t, run(tgt, 3, cdb10(0x28, 0, 0, 1), nil, 512))
		clk.advance(100 * time.Millisecond) // 5 s of faults
	}
	assert.Equal(t, uint64(50), lu.FaultStats().ReadErrors)
	lines := logs.lines()
	require.Len(t, lines, 1, "first occurrence only so far: %q", lines)
	assert.Contains(t, lines[0], "backend fault")
	assert.Contains(t, lines[0], "lun=3")
	assert.Contains(t, lines[0], "lba=0")
	clk.advance(FaultLogInterval)
	lines = logs.lines()
	require.Len(t, lines, 2)
	assert.Contains(t, lines[1], "more=49")
	assert.Contains(t, lines[1], "lun=3")

	// Quiet for an interval: the burst is over; the next fault is logged
	// in full again, and no summary follows a burst of one.
	clk.advance(2 * FaultLogInterval)
	sense(t, run(tgt, 3, cdb10(0x28, 0, 0, 1), nil, 512))
	clk.advance(2 * FaultLogInterval)
	lines = logs.lines()
	require.Len(t, lines, 3)
	assert.Contains(t, lines[2], "backend fault")

	// Negative control: a healthy disk logs and counts nothing.
	require.NoError(t, fb.SetFaults(nil))
	check(t, run(tgt, 3, cdb10(0x28, 0, 0, 1), nil, 512), wantGood)
	assert.Len(t, logs.lines(), 3)
	assert.Equal(t, uint64(51), lu.FaultStats().ReadErrors)
}

func TestSlowCommandCountedAndLogged(t *testing.T) {
	tgt, lu, fb, _, logs := newFaultyTarget(t)
	require.NoError(t, fb.SetFaults([]backstore.Fault{{Delay: 3 * time.Second}}))
	check(t, run(tgt, 3, cdb10(0x28, 0, 0, 1), nil, 512), wantGood)
	check(t, run(tgt, 3, cdb10(0x2a, 0, 0, 1), make([]byte, 512), 0), wantGood)
	assert.Equal(t, FaultStats{SlowCommands: 2}, lu.FaultStats())
	lines := logs.lines()
	require.Len(t, lines, 1)
	assert.Contains(t, lines[0], `fault="slow command"`)
	assert.Contains(t, lines[0], "took=3s")
	// A fast one is not counted.
	require.NoError(t, fb.SetFaults([]backstore.Fault{{Delay: SlowCommand / 2}}))
	check(t, run(tgt, 3, cdb10(0x28, 0, 0, 1), nil, 512), wantGood)
	assert.Equal(t, uint64(2), lu.FaultStats().SlowCommands)
}
