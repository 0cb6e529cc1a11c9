package vmtas

import (
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestEventRoundTrip(t *testing.T) {
	for _, e := range []Event{
		{Kind: KindWriteStart, Writer: 3, Seq: 17},
		{Kind: KindWriteDone, Writer: 0, Seq: 1},
		{Kind: KindWriteDone, Writer: 1, Seq: 2, Err: "write /dev/sda: invalid exchange (EBADE)"},
		{Kind: KindWriterExit, Writer: 2},
		{Kind: KindPreemptSent},
		{Kind: KindPreemptDone},
		{Kind: KindPreemptDone, Err: "persistent reserve out: RESERVATION CONFLICT"},
	} {
		got, err := ParseEvent(FormatEvent(e) + "\n")
		require.NoError(t, err, FormatEvent(e))
		assert.Equal(t, e, got)
	}
}

func TestParseEventRejects(t *testing.T) {
	for _, tc := range []struct{ desc, line string }{
		{"empty", ""},
		{"unknown kind", "write-begin w=1 n=2"},
		{"missing field", "write-start w=1"},
		{"extra field", "writer-exit w=1 n=2"},
		{"wrong key", "write-start n=1 w=2"},
		{"negative", "write-start w=-1 n=2"},
		{"done without err", "write-done w=1 n=2"},
		{"start with err", "write-start w=1 n=2 err=x"},
		{"too long", "write-done w=1 n=2 err=" + strings.Repeat("x", 5000)},
	} {
		_, err := ParseEvent(tc.line)
		assert.ErrorIs(t, err, ErrBadEvent, tc.desc)
	}
}

// run builds a stamped history: t0 is the preempt; ms offsets.
type run struct {
	t0 time.Time
	ev []Event
}

func newRun() *run { return &run{t0: time.Unix(1000, 0)} }

func (r *run) at(ms int, e Event) *run {
	e.At = r.t0.Add(time.Duration(ms) * time.Millisecond)
	r.ev = append(r.ev, e)
	return r
}

func (r *run) start(ms, w, n int) *run {
	return r.at(ms, Event{Kind: KindWriteStart, Writer: w, Seq: n})
}
func (r *run) done(ms, w, n int, err string) *run {
	return r.at(ms, Event{Kind: KindWriteDone, Writer: w, Seq: n, Err: err})
}
func (r *run) index(kind string) int {
	for i, e := range r.ev {
		if e.Kind == kind {
			return i
		}
	}
	panic("no " + kind)
}

func (r *run) exit(ms, w int) *run { return r.at(ms, Event{Kind: KindWriterExit, Writer: w}) }

// fenced: four writers in flight at the preempt (t=0), all answered within
// 300 ms with an error, the fixed target's behaviour.
func fenced() *run {
	r := newRun()
	for w := range 4 {
		r.start(-900+w, w, 0).done(-400+w, w, 0, "")
		r.start(-390+w, w, 1)
	}
	r.at(0, Event{Kind: KindPreemptSent}).at(40, Event{Kind: KindPreemptDone})
	for w := range 4 {
		r.done(100+50*w, w, 1, "invalid exchange").exit(101+50*w, w)
	}
	return r
}

var crit = Criteria{Bound: time.Second, MinInFlight: 2}

func TestJudgePasses(t *testing.T) {
	r := fenced()
	rep := Judge(r.ev, r.t0.Add(3*time.Second), crit)
	assert.True(t, rep.OK(), rep.Violations)
	assert.Len(t, rep.InFlight, 4)
	assert.Empty(t, rep.After)
	assert.Equal(t, 40*time.Millisecond, rep.PreemptTook)
	assert.Equal(t, 250*time.Millisecond, rep.InFlight[3].Done)
}

// Negative controls: each broken history must be reported.
func TestJudgeCatches(t *testing.T) {
	for _, tc := range []struct {
		desc string
		make func() *run
		want string
	}{
		{"a write hangs (TAS=0 behaviour)", func() *run {
			r := newRun()
			for w := range 4 {
				r.start(-300+w, w, 0)
			}
			r.at(0, Event{Kind: KindPreemptSent}).at(40, Event{Kind: KindPreemptDone})
			for w := range 3 {
				r.done(100, w, 0, "invalid exchange").exit(101, w)
			}
			return r
		}, "write w=3 n=0 got no response: still in flight 3s after the preempt"},
		{"a write answered late", func() *run {
			r := fenced()
			r.ev = r.ev[:len(r.ev)-2]
			return r.done(1500, 3, 1, "invalid exchange").exit(1501, 3)
		}, "write w=3 n=1 completed 1.5s after the preempt"},
		{"nothing in flight", func() *run {
			r := newRun()
			r.start(-900, 0, 0).done(-400, 0, 0, "")
			r.at(0, Event{Kind: KindPreemptSent}).at(40, Event{Kind: KindPreemptDone})
			return r.start(100, 0, 1).done(150, 0, 1, "invalid exchange").exit(151, 0)
		}, "only 0 writes were in flight"},
		{"no preempt", func() *run {
			return newRun().start(-900, 0, 0).done(-400, 0, 0, "")
		}, "B never sent PREEMPT AND ABORT"},
		{"preempt refused", func() *run {
			r := fenced()
			r.ev[r.index(KindPreemptDone)].Err = "RESERVATION CONFLICT"
			return r
		}, "PREEMPT AND ABORT failed: RESERVATION CONFLICT"},
		{"preempt hangs", func() *run {
			r := fenced()
			i := r.index(KindPreemptDone)
			r.ev = append(r.ev[:i:i], r.ev[i+1:]...)
			return r
		}, "PREEMPT AND ABORT did not return within 3s"},
		{"a writer goes on writing", func() *run {
			r := fenced()
			r.ev = r.ev[:len(r.ev)-2]
			return r.done(300, 3, 1, "").start(301, 3, 2).done(350, 3, 2, "")
		}, "writer 3 never stopped"},
	} {
		r := tc.make()
		rep := Judge(r.ev, r.t0.Add(3*time.Second), crit)
		assert.False(t, rep.OK(), tc.desc)
		assert.Contains(t, strings.Join(rep.Violations, "\n"), tc.want, tc.desc)
	}
}

func TestEscalations(t *testing.T) {
	dmesg := `[   10.1] sd 2:0:0:0: [sda] Attached SCSI disk
[   20.0] tasvm-mark-1
[   21.3] sd 2:0:0:0: reservation conflict
[   21.3] critical nexus error, dev sda, sector 2048 op 0x1:(WRITE) flags 0x8800 phys_seg 256 prio class 2
[   21.4] Buffer I/O error on dev sda, logical block 256, lost async page write
`
	assert.Empty(t, Escalations(After(dmesg, "tasvm-mark-1")), "a fenced node's plain write failures")
	// Negative control: the lines the hang of issue 11 left behind.
	hung := dmesg + `[  113.0] sd 2:0:0:0: [sda] tag#3 abort scheduled
[  128.0] scsi host2: scsi_eh_2: waking up 0/1/1
[  128.1] sd 2:0:0:0: [sda] tag#3 timing out command, waited 30s
[  143.0] iscsi: LU Reset [sc 0000000012345678 lun 0]
`
	got := Escalations(After(hung, "tasvm-mark-1"))
	assert.Len(t, got, 4)
	assert.Contains(t, got[3], "LU Reset")
	assert.Equal(t, "b\n", After("a\nmark\nb\n", "mark"))
	assert.Equal(t, "", After("a\nmark", "mark"))
	assert.Equal(t, "x\n", After("x\n", "mark"))
}

func FuzzParseEvent(f *testing.F) {
	for _, s := range []string{"write-start w=1 n=2", "write-done w=1 n=2 err=", "preempt-done err= x", "writer-exit w=0", " err="} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, line string) {
		e, err := ParseEvent(line)
		if err != nil {
			return
		}
		again, err := ParseEvent(FormatEvent(e))
		require.NoError(t, err)
		assert.Equal(t, e, again)
	})
}
