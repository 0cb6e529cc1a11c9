package scsi

import (
	"bytes"
	"encoding/binary"
	"errors"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/tandem-ha/tandem/target/backstore"
	wscsi "github.com/tandem-ha/tandem/wire/scsi"
)

var (
	wantSanitizing     = senseWant{wscsi.SenseNotReady, 0x04, 0x1b}
	wantSanitizeFailed = senseWant{wscsi.SenseMediumError, 0x31, 0x03}
)

// writeAtomic16 is a WRITE ATOMIC(16) CDB (SBC-4 5.48).
func writeAtomic16(flags byte, lba uint64, boundary, n uint16) []byte {
	c := make([]byte, 16)
	c[0], c[1] = 0x9c, flags
	binary.BigEndian.PutUint64(c[2:], lba)
	binary.BigEndian.PutUint16(c[10:], boundary)
	binary.BigEndian.PutUint16(c[12:], n)
	return c
}

// sanitizeCDB is a SANITIZE CDB (SBC-4 5.30); b1 holds IMMED, AUSE, SA.
func sanitizeCDB(b1 byte, plen uint16) []byte {
	c := make([]byte, 10)
	c[0], c[1] = 0x48, b1
	binary.BigEndian.PutUint16(c[7:], plen)
	return c
}

// overwriteList is an OVERWRITE parameter list: byte 0 then the pattern.
func overwriteList(b0 byte, pattern []byte) []byte {
	b := []byte{b0, 0, 0, 0}
	binary.BigEndian.PutUint16(b[2:], uint16(len(pattern)))
	return append(b, pattern...)
}

func readAll(t *testing.T, tgt *Target) []byte {
	t.Helper()
	r := run(tgt, 0, cdb16(0x88, 0, 0, testBlocks), nil, testBlocks*512)
	check(t, r, wantGood)
	return r.DataIn
}

func TestWriteAtomic(t *testing.T) {
	// The test backend's 4 KiB allocation unit makes atomic writes come
	// in aligned runs of 8 blocks.
	blk := bytes.Repeat([]byte{0x5a}, 8*512)
	tests := []struct {
		desc string
		cfg  LUConfig
		cdb  []byte
		out  []byte
		want senseWant
	}{
		{desc: "good", cdb: writeAtomic16(0, 16, 0, 8), out: blk, want: wantGood},
		{desc: "dpo fua", cdb: writeAtomic16(0x18, 16, 0, 8), out: blk, want: wantGood},
		{desc: "zero blocks", cdb: writeAtomic16(0, 0, 0, 0), want: wantGood},
		{desc: "zero blocks at the end", cdb: writeAtomic16(0, testBlocks, 0, 0), want: wantGood},
		{desc: "zero blocks past the end", cdb: writeAtomic16(0, testBlocks+8, 0, 0), want: wantOOB},
		{desc: "lba 2^63", cdb: writeAtomic16(0, 1<<63, 0, 8), out: blk, want: wantOOB},
		{desc: "lba -8", cdb: writeAtomic16(0, ^uint64(7), 0, 8), out: blk, want: wantOOB},
		{desc: "across the end", cdb: writeAtomic16(0, testBlocks-8, 0, 16), out: append(blk, blk...), want: wantOOB},
		{desc: "misaligned lba", cdb: writeAtomic16(0, 17, 0, 8), out: blk, want: wantBadCDB},
		{desc: "partial granule", cdb: writeAtomic16(0, 16, 0, 1), out: blk, want: wantBadCDB},
		{desc: "wrprotect", cdb: writeAtomic16(0x20, 16, 0, 8), out: blk, want: wantBadCDB},
		{desc: "atomic boundary unsupported", cdb: writeAtomic16(0, 16, 8, 8), out: blk, want: wantBadCDB},
		{desc: "beyond maximum atomic length", cdb: writeAtomic16(0, 0, 0, maxAtomicBytes/512+8), want: wantBadCDB},
		{desc: "short data", cdb: writeAtomic16(0, 16, 0, 8), out: blk[:512], want: wantShortData},
		{desc: "read-only", cfg: LUConfig{ReadOnly: true}, cdb: writeAtomic16(0, 16, 0, 8), out: blk, want: wantProtected},
		{desc: "4 KiB blocks: any alignment", cfg: LUConfig{BlockSize: 4096}, cdb: writeAtomic16(0, 1, 0, 1), out: blk, want: wantGood},
	}
	for _, tc := range tests {
		t.Run(tc.desc, func(t *testing.T) {
			tgt, _ := newTestTarget(t, tc.cfg)
			r := run(tgt, 0, tc.cdb, tc.out, 0)
			check(t, r, tc.want)
			if tc.want == wantGood && len(tc.out) > 0 && tc.cfg.BlockSize == 0 {
				assert.Equal(t, uint32(len(tc.out)), r.DataOutWanted)
				rd := run(tgt, 0, cdb10(0x28, 0, 16, 8), nil, 8*512)
				assert.Equal(t, tc.out, rd.DataIn)
			}
		})
	}
}

func TestWriteAtomicReporting(t *testing.T) {
	tgt, _ := newTestTarget(t, LUConfig{})
	r := run(tgt, 0, []byte{0x12, 1, 0xb0, 0, 255, 0}, nil, 255)
	check(t, r, wantGood)
	d := r.DataIn
	require.Len(t, d, 64)
	maxXfer := binary.BigEndian.Uint32(d[8:])
	maxAtomic := binary.BigEndian.Uint32(d[44:])
	assert.Equal(t, uint32(maxAtomicBytes/512), maxAtomic)
	assert.LessOrEqual(t, maxAtomic, maxXfer)
	assert.Equal(t, uint32(8), binary.BigEndian.Uint32(d[48:]), "atomic alignment")
	assert.Equal(t, uint32(8), binary.BigEndian.Uint32(d[52:]), "atomic granularity")
	assert.Zero(t, binary.BigEndian.Uint32(d[56:]), "max atomic length with boundary")
	assert.Zero(t, binary.BigEndian.Uint32(d[60:]), "max atomic boundary size")

	// The CDB usage data shows DPO and FUA, as MODE SENSE sets DPOFUA.
	r = run(tgt, 0, rsoc(1, 0x9c, 0, 0), nil, 0xffff)
	check(t, r, wantGood)
	require.Len(t, r.DataIn, 4+16)
	assert.Equal(t, byte(0x03), r.DataIn[1]&0x07)
	assert.Equal(t, byte(0x18), r.DataIn[5]&0x18)
}

// Readers never see half of a WRITE ATOMIC, and atomic writers of one
// range never interleave.
func TestWriteAtomicIsAtomic(t *testing.T) {
	tgt, _ := newTestTarget(t, LUConfig{WriteCache: true})
	const blocks, rounds = 256, 40
	var wg sync.WaitGroup
	for w := range 2 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			buf := bytes.Repeat([]byte{byte(0x10 + w)}, blocks*512)
			for range rounds {
				if r := run(tgt, 0, writeAtomic16(0, 0, 0, blocks), buf, 0); r.Status != wscsi.StatusGood {
					t.Errorf("write atomic: %x", r.Sense)
					return
				}
			}
		}()
	}
	for range 2 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range rounds {
				r := run(tgt, 0, cdb10(0x28, 0, 0, blocks), nil, blocks*512)
				d := r.DataIn
				if i := bytes.IndexFunc(d, func(c rune) bool { return byte(c) != d[0] }); i >= 0 {
					t.Errorf("torn read: byte 0 is %#x, byte %d differs", d[0], i)
					return
				}
			}
		}()
	}
	wg.Wait()
}

func TestSWP(t *testing.T) {
	tgt, lu := newTestTarget(t, LUConfig{})
	ctl := func(swp bool) []byte {
		l := []byte{0, 0, 0, 0, 0x0a, 0x0a, 0, 0, 0, 0x40, 0, 0, 0xff, 0xff, 0, 0}
		if swp {
			l[8] = 0x08
		}
		return l
	}
	// SWP is changeable.
	r := run(tgt, 0, []byte{0x1a, 0x08, 0x40 | 0x0a, 0, 255, 0}, nil, 255)
	check(t, r, wantGood)
	assert.Equal(t, byte(0x08), r.DataIn[4+4]&0x08)

	check(t, run(tgt, 0, []byte{0x15, 0x10, 0, 0, 16, 0}, ctl(true), 0), wantGood)
	assert.True(t, lu.swp.Load())
	r = run(tgt, 0, []byte{0x1a, 0x08, 0x0a, 0, 255, 0}, nil, 255)
	assert.Equal(t, byte(0x80), r.DataIn[2]&0x80, "WP")
	assert.Equal(t, byte(0x08), r.DataIn[4+4]&0x08, "SWP")
	check(t, run(tgt, 0, cdb10(0x28, 0, 0, 1), nil, 512), wantGood)
	check(t, run(tgt, 0, cdb10(0x2a, 0, 0, 1), make([]byte, 512), 0), wantProtected)
	check(t, run(tgt, 0, writeAtomic16(0, 0, 0, 8), make([]byte, 8*512), 0), wantProtected)
	check(t, run(tgt, 0, sanitizeCDB(0x01, 516), overwriteList(1, make([]byte, 512)), 0), wantProtected)

	check(t, run(tgt, 0, []byte{0x15, 0x10, 0, 0, 16, 0}, ctl(false), 0), wantGood)
	check(t, run(tgt, 0, cdb10(0x2a, 0, 0, 1), make([]byte, 512), 0), wantGood)
}

func TestSanitizeErrors(t *testing.T) {
	full := overwriteList(1, bytes.Repeat([]byte{0xaa}, 512))
	withByte := func(c []byte, i int, v byte) []byte { c[i] |= v; return c }
	tests := []struct {
		desc string
		cfg  LUConfig
		cdb  []byte
		out  []byte
		want senseWant
	}{
		{desc: "reserved bit byte 1", cdb: sanitizeCDB(0x41, 516), out: full, want: wantBadCDB},
		{desc: "reserved byte 2", cdb: withByte(sanitizeCDB(0x01, 516), 2, 2), out: full, want: wantBadCDB},
		{desc: "reserved byte 6", cdb: withByte(sanitizeCDB(0x02, 0), 6, 6), cfg: LUConfig{Thin: true}, want: wantBadCDB},
		{desc: "service action 0", cdb: sanitizeCDB(0x00, 0), want: wantBadCDB},
		{desc: "service action 4", cdb: sanitizeCDB(0x04, 0), want: wantBadCDB},
		{desc: "service action 1e", cdb: sanitizeCDB(0x1e, 0), want: wantBadCDB},
		{desc: "crypto erase unsupported", cdb: sanitizeCDB(0x03, 0), want: wantBadCDB},
		{desc: "block erase needs thin", cdb: sanitizeCDB(0x02, 0), want: wantBadCDB},
		{desc: "block erase with parameters", cfg: LUConfig{Thin: true}, cdb: sanitizeCDB(0x02, 8), out: make([]byte, 8), want: wantBadCDB},
		{desc: "block erase read-only", cfg: LUConfig{Thin: true, ReadOnly: true}, cdb: sanitizeCDB(0x02, 0), want: wantProtected},
		{desc: "exit failure mode with parameters", cdb: sanitizeCDB(0x1f, 8), out: make([]byte, 8), want: wantBadCDB},
		{desc: "exit failure mode", cdb: sanitizeCDB(0x1f, 0), want: wantGood},
		{desc: "overwrite no list", cdb: sanitizeCDB(0x01, 0), want: wantBadCDB},
		{desc: "overwrite list of 4", cdb: sanitizeCDB(0x01, 4), out: full[:4], want: wantBadCDB},
		{desc: "overwrite list of block+5", cdb: sanitizeCDB(0x01, 517), out: append(bytes.Clone(full), 0), want: wantBadCDB},
		{desc: "overwrite short data-out", cdb: sanitizeCDB(0x01, 516), out: full[:100], want: wantParamLength},
		{desc: "overwrite count 0", cdb: sanitizeCDB(0x01, 516), out: overwriteList(0, make([]byte, 512)), want: wantBadParam},
		{desc: "overwrite test field", cdb: sanitizeCDB(0x01, 516), out: overwriteList(0x21, make([]byte, 512)), want: wantBadParam},
		{desc: "overwrite pattern length 0", cdb: sanitizeCDB(0x01, 516), out: append([]byte{1, 0, 0, 0}, make([]byte, 512)...), want: wantBadParam},
		{desc: "overwrite pattern longer than a block", cdb: sanitizeCDB(0x01, 516), out: append([]byte{1, 0, 0x02, 0x04}, make([]byte, 512)...), want: wantBadParam},
		{desc: "overwrite read-only", cfg: LUConfig{ReadOnly: true}, cdb: sanitizeCDB(0x01, 516), out: full, want: wantProtected},
	}
	for _, tc := range tests {
		t.Run(tc.desc, func(t *testing.T) {
			tgt, _ := newTestTarget(t, tc.cfg)
			check(t, run(tgt, 0, tc.cdb, tc.out, 0), tc.want)
		})
	}
}

func TestSanitizeOverwrite(t *testing.T) {
	tgt, _ := newTestTarget(t, LUConfig{SanitizeRate: -1})
	check(t, run(tgt, 0, cdb10(0x2a, 0, 0, 8), bytes.Repeat([]byte{'a'}, 8*512), 0), wantGood)

	check(t, run(tgt, 0, sanitizeCDB(0x01, 516), overwriteList(1, bytes.Repeat([]byte{0xaa}, 512)), 0), wantGood)
	assert.Equal(t, bytes.Repeat([]byte{0xaa}, testBlocks*512), readAll(t, tgt))

	// A 4-byte pattern repeats through each block.
	pat := []byte{1, 2, 3, 4}
	check(t, run(tgt, 0, sanitizeCDB(0x01, 8), overwriteList(1, pat), 0), wantGood)
	assert.Equal(t, bytes.Repeat(pat, testBlocks*128), readAll(t, tgt))

	// A pattern that does not divide the block is cut at its end.
	pat = []byte{9, 8, 7}
	check(t, run(tgt, 0, sanitizeCDB(0x01, 7), overwriteList(1, pat), 0), wantGood)
	block := bytes.Repeat(pat, 171)[:512]
	assert.Equal(t, bytes.Repeat(block, testBlocks), readAll(t, tgt))

	// INVERT alternates the pattern between passes: two passes end
	// inverted, three end as given.
	check(t, run(tgt, 0, sanitizeCDB(0x01, 5), overwriteList(0x82, []byte{0x0f}), 0), wantGood)
	assert.Equal(t, bytes.Repeat([]byte{0xf0}, testBlocks*512), readAll(t, tgt))
	check(t, run(tgt, 0, sanitizeCDB(0x01, 5), overwriteList(0x83, []byte{0x0f}), 0), wantGood)
	assert.Equal(t, bytes.Repeat([]byte{0x0f}, testBlocks*512), readAll(t, tgt))
}

func TestSanitizeBlockErase(t *testing.T) {
	tgt, _ := newTestTarget(t, LUConfig{Thin: true})
	// Reported only where it works: RSOC and WABEREQ.
	check(t, run(tgt, 0, rsoc(2, 0x48, 2, 0), nil, 0xffff), wantGood)
	r := run(tgt, 0, []byte{0x12, 1, 0xb1, 0, 255, 0}, nil, 255)
	check(t, r, wantGood)
	assert.Equal(t, byte(0x40), r.DataIn[7]&0xc0, "WABEREQ")
	plain, _ := newTestTarget(t, LUConfig{})
	r = run(plain, 0, rsoc(2, 0x48, 2, 0), nil, 0xffff)
	check(t, r, wantGood)
	assert.Equal(t, byte(0x01), r.DataIn[1]&0x07, "not supported on a fully provisioned LU")
	r = run(plain, 0, []byte{0x12, 1, 0xb1, 0, 255, 0}, nil, 255)
	assert.Zero(t, r.DataIn[7]&0xc0, "WABEREQ")

	check(t, run(tgt, 0, cdb10(0x2a, 0, 0, 256), bytes.Repeat([]byte{'a'}, 256*512), 0), wantGood)
	check(t, run(tgt, 0, sanitizeCDB(0x02, 0), nil, 0), wantGood)
	assert.Equal(t, make([]byte, testBlocks*512), readAll(t, tgt))
	r = run(tgt, 0, cdb16(0x9e, 0x12, 0, 256), nil, 256)
	check(t, r, wantGood)
	d := r.DataIn
	require.Len(t, d, 8+16)
	assert.Equal(t, uint64(0), binary.BigEndian.Uint64(d[8:]))
	assert.Equal(t, uint32(testBlocks), binary.BigEndian.Uint32(d[16:]))
	assert.Equal(t, byte(1), d[20], "deallocated")
}

// gatedBackend holds every WriteAt until release is closed, or fails it.
type gatedBackend struct {
	backstore.Backend
	entered chan struct{}
	release chan struct{}
	once    sync.Once
	fail    error
}

func (g *gatedBackend) WriteAt(p []byte, off int64) (int, error) {
	if g.fail != nil {
		return 0, g.fail
	}
	if g.release != nil {
		g.once.Do(func() { close(g.entered) })
		<-g.release
	}
	return g.Backend.WriteAt(p, off)
}

func newGatedTarget(t *testing.T, g *gatedBackend, cfg LUConfig) (*Target, *LU) {
	t.Helper()
	be, err := backstore.Open(filepath.Join(t.TempDir(), "lu.img"), backstore.Options{Create: true, Size: testBlocks * 512})
	require.NoError(t, err)
	g.Backend = be
	cfg.Serial = "SERGATE"
	lu, err := NewLU(cfg, g)
	require.NoError(t, err)
	tgt := NewTarget("iqn.2025-01.test:g", nil)
	require.NoError(t, tgt.AddLU(0, lu))
	return tgt, lu
}

func TestSanitizeInProgress(t *testing.T) {
	g := &gatedBackend{entered: make(chan struct{}), release: make(chan struct{})}
	tgt, lu := newGatedTarget(t, g, LUConfig{SanitizeRate: -1})
	t.Cleanup(func() { lu.Close() })

	// IMMED: GOOD at once, the overwrite goes on in the background.
	check(t, run(tgt, 0, sanitizeCDB(0x81, 5), overwriteList(1, []byte{0x77}), 0), wantGood)
	<-g.entered
	check(t, run(tgt, 0, make([]byte, 6), nil, 0), wantSanitizing)
	check(t, run(tgt, 0, cdb16(0x88, 0, 0, 1), nil, 512), wantSanitizing)
	check(t, run(tgt, 0, []byte{0x1b, 0, 0, 0, 1, 0}, nil, 0), wantSanitizing)
	check(t, run(tgt, 0, sanitizeCDB(0x01, 5), overwriteList(1, []byte{0x77}), 0), wantSanitizing)
	check(t, run(tgt, 0, []byte{0x12, 0, 0, 0, 96, 0}, nil, 96), wantGood)
	check(t, run(tgt, 0, []byte{0xa0, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0}, nil, 256), wantGood)
	r := run(tgt, 0, []byte{0x03, 0, 0, 0, 18, 0}, nil, 18)
	check(t, r, wantGood)
	require.Len(t, r.DataIn, 18)
	assert.Equal(t, []byte{wscsi.SenseNotReady, 0x04, 0x1b}, []byte{r.DataIn[2], r.DataIn[12], r.DataIn[13]})
	assert.Equal(t, byte(0x80), r.DataIn[15], "progress indication")

	close(g.release)
	lu.san.bg.Wait()
	check(t, run(tgt, 0, make([]byte, 6), nil, 0), wantGood)
	r = run(tgt, 0, cdb16(0x88, 0, 0, 1), nil, 512)
	assert.Equal(t, bytes.Repeat([]byte{0x77}, 512), r.DataIn)
}

func TestSanitizeFailureMode(t *testing.T) {
	g := &gatedBackend{fail: errors.New("disk on fire")}
	tgt, lu := newGatedTarget(t, g, LUConfig{SanitizeRate: -1})
	t.Cleanup(func() { lu.Close() })
	list := overwriteList(1, []byte{0x11})

	check(t, run(tgt, 0, sanitizeCDB(0x01, 5), list, 0), wantSanitizeFailed)
	check(t, run(tgt, 0, cdb10(0x28, 0, 0, 1), nil, 512), wantSanitizeFailed)
	check(t, run(tgt, 0, make([]byte, 6), nil, 0), wantGood)
	r := run(tgt, 0, []byte{0x03, 0, 0, 0, 18, 0}, nil, 18)
	assert.Equal(t, []byte{wscsi.SenseMediumError, 0x31, 0x03}, []byte{r.DataIn[2], r.DataIn[12], r.DataIn[13]})
	// Without AUSE only a successful sanitize leaves failure mode.
	check(t, run(tgt, 0, sanitizeCDB(0x1f, 0), nil, 0), wantBadCDB)

	// With AUSE, EXIT FAILURE MODE does.
	check(t, run(tgt, 0, sanitizeCDB(0x21, 5), list, 0), wantSanitizeFailed)
	check(t, run(tgt, 0, sanitizeCDB(0x1f, 0), nil, 0), wantGood)
	check(t, run(tgt, 0, cdb10(0x28, 0, 0, 1), nil, 512), wantGood)

	// A sanitize that succeeds clears the failure as well.
	check(t, run(tgt, 0, sanitizeCDB(0x01, 5), list, 0), wantSanitizeFailed)
	g.fail = nil
	check(t, run(tgt, 0, sanitizeCDB(0x01, 5), list, 0), wantGood)
	check(t, run(tgt, 0, cdb10(0x28, 0, 0, 1), nil, 512), wantGood)
}

// Close stops a paced background sanitize instead of waiting for it.
func TestSanitizeStopsOnClose(t *testing.T) {
	tgt, lu := newTestTarget(t, LUConfig{SanitizeRate: 1}) // 1 byte/s
	check(t, run(tgt, 0, sanitizeCDB(0x81, 5), overwriteList(1, []byte{0x33}), 0), wantGood)
	done := make(chan struct{})
	go func() { lu.closeSanitize(); close(done) }()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("close did not stop the sanitize")
	}
}

func TestPaceDelay(t *testing.T) {
	tests := []struct {
		desc    string
		done    int64
		rate    int64
		elapsed time.Duration
		want    time.Duration
	}{
		{desc: "no limit", done: 1 << 30, rate: 0, want: 0},
		{desc: "behind", done: 64 << 20, rate: 128 << 20, elapsed: 100 * time.Millisecond, want: 400 * time.Millisecond},
		{desc: "on time", done: 128 << 20, rate: 128 << 20, elapsed: time.Second, want: 0},
		{desc: "late", done: 1 << 20, rate: 128 << 20, elapsed: time.Second, want: 0},
	}
	for _, tc := range tests {
		t.Run(tc.desc, func(t *testing.T) {
			assert.Equal(t, tc.want, paceDelay(tc.done, tc.rate, tc.elapsed))
		})
	}
}

// NLB is one byte: 256 blocks wrap to 0, which must not pass as "nothing
// to compare" when the initiator sends 256 blocks of data.
func TestCompareAndWriteWrappedLength(t *testing.T) {
	tgt, _ := newTestTarget(t, LUConfig{})
	check(t, run(tgt, 0, caw(0, 0, 0), make([]byte, 2*256*512), 0), wantBadCDB)
	check(t, run(tgt, 0, caw(0, 0, 0), nil, 0), wantGood)
}
