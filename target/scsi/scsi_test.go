package scsi

import (
	"bytes"
	"encoding/binary"
	"path/filepath"
	"sync"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/tandem-ha/tandem/target/backstore"
	wscsi "github.com/tandem-ha/tandem/wire/scsi"
)

const testBlocks = 2048 // 1 MiB of 512-byte blocks

func newTestTarget(t testing.TB, cfg LUConfig) (*Target, *LU) {
	t.Helper()
	be, err := backstore.Open(filepath.Join(t.TempDir(), "lu.img"), backstore.Options{Create: true, Size: testBlocks * 512})
	require.NoError(t, err)
	if cfg.Serial == "" {
		cfg.Serial = "SER0001"
	}
	lu, err := NewLU(cfg, be)
	require.NoError(t, err)
	t.Cleanup(func() { lu.Close() })
	tgt := NewTarget("iqn.2025-01.test:t", nil)
	require.NoError(t, tgt.AddLU(0, lu))
	return tgt, lu
}

func run(tgt *Target, lun uint64, cdb []byte, out []byte, inLen uint32) Result {
	task := &Task{LUN: lun, CDB: cdb, DataOut: out, ExpectedLength: inLen, DataIn: make([]byte, 0, inLen)}
	if out != nil {
		task.ExpectedLength = uint32(len(out))
	}
	return tgt.Execute(task)
}

func sense(t *testing.T, r Result) wscsi.ParsedSense {
	t.Helper()
	require.Equal(t, byte(wscsi.StatusCheckCondition), r.Status)
	s, err := wscsi.ParseSense(r.Sense)
	require.NoError(t, err)
	return s
}

func cdb10(op byte, flags byte, lba uint32, n uint16) []byte {
	c := make([]byte, 10)
	c[0], c[1] = op, flags
	binary.BigEndian.PutUint32(c[2:], lba)
	binary.BigEndian.PutUint16(c[7:], n)
	return c
}

func cdb16(op byte, flags byte, lba uint64, n uint32) []byte {
	c := make([]byte, 16)
	c[0], c[1] = op, flags
	binary.BigEndian.PutUint64(c[2:], lba)
	binary.BigEndian.PutUint32(c[10:], n)
	return c
}

type senseWant struct{ key, asc, ascq byte }

var (
	wantGood        = senseWant{}
	wantBadCDB      = senseWant{wscsi.SenseIllegalRequest, 0x24, 0}
	wantBadParam    = senseWant{wscsi.SenseIllegalRequest, 0x26, 0}
	wantOOB         = senseWant{wscsi.SenseIllegalRequest, 0x21, 0}
	wantBadOp       = senseWant{wscsi.SenseIllegalRequest, 0x20, 0}
	wantProtected   = senseWant{wscsi.SenseDataProtect, 0x27, 0}
	wantMiscompare  = senseWant{wscsi.SenseMiscompare, 0x1d, 0}
	wantNoLU        = senseWant{wscsi.SenseIllegalRequest, 0x25, 0}
	wantShortData   = senseWant{wscsi.SenseIllegalRequest, 0x0e, 0x03}
	wantParamLength = senseWant{wscsi.SenseIllegalRequest, 0x1a, 0}
)

func check(t *testing.T, r Result, w senseWant) {
	t.Helper()
	if w == wantGood {
		require.Equal(t, byte(wscsi.StatusGood), r.Status, "sense %x", r.Sense)
		return
	}
	s := sense(t, r)
	assert.Equal(t, w, senseWant{s.Key, s.ASC, s.ASCQ})
}

func TestCommands(t *testing.T) {
	blk := bytes.Repeat([]byte{0xa6}, 512)
	tests := []struct {
		desc   string
		cfg    LUConfig
		lun    uint64
		cdb    []byte
		out    []byte
		in     uint32
		want   senseWant
		wanted uint32
		check  func(t *testing.T, data []byte)
	}{
		{desc: "tur", cdb: make([]byte, 6), want: wantGood},
		{desc: "tur absent lun", lun: 3, cdb: make([]byte, 6), want: wantNoLU},
		{desc: "unknown opcode", cdb: []byte{0xc0, 0, 0, 0, 0, 0}, want: wantBadOp},
		{desc: "persistent reserve in read keys", cdb: []byte{0x5e, 0, 0, 0, 0, 0, 0, 0, 8, 0}, in: 8, want: wantGood},
		{desc: "persistent reserve in bad service action", cdb: []byte{0x5e, 0x04, 0, 0, 0, 0, 0, 0, 8, 0}, in: 8, want: wantBadCDB},
		{desc: "reserve6", cdb: []byte{0x16, 0, 0, 0, 0, 0}, want: wantGood},
		{desc: "unknown service action", cdb: []byte{0x9e, 0x1f, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 32, 0, 0}, want: wantBadCDB},
		{desc: "inquiry standard", cdb: []byte{0x12, 0, 0, 0, 96, 0}, in: 96, want: wantGood, check: func(t *testing.T, d []byte) {
			require.Len(t, d, 96)
			assert.Equal(t, byte(0), d[0])
			assert.Equal(t, byte(6), d[2])
			assert.Equal(t, byte(91), d[4])
			assert.Equal(t, "TANDEM  ", string(d[8:16]))
			assert.Equal(t, []byte{0x04, 0xc0}, d[64:66])
		}},
		{desc: "inquiry truncated", cdb: []byte{0x12, 0, 0, 0, 5, 0}, in: 5, want: wantGood, check: func(t *testing.T, d []byte) { require.Len(t, d, 5) }},
		{desc: "inquiry absent lun", lun: 7, cdb: []byte{0x12, 0, 0, 0, 36, 0}, in: 36, want: wantGood, check: func(t *testing.T, d []byte) { assert.Equal(t, byte(0x7f), d[0]) }},
		{desc: "inquiry page without evpd", cdb: []byte{0x12, 0, 1, 1, 0, 0}, want: wantBadCDB},
		{desc: "inquiry unknown vpd", cdb: []byte{0x12, 1, 0x99, 0, 255, 0}, want: wantBadCDB},
		{desc: "vpd supported pages", cdb: []byte{0x12, 1, 0, 0, 255, 0}, in: 255, want: wantGood, check: func(t *testing.T, d []byte) {
			assert.Equal(t, []byte{0, 0x80, 0x83, 0x8f, 0xb0, 0xb1}, d[4:])
		}},
		{desc: "vpd supported pages thin", cfg: LUConfig{Thin: true}, cdb: []byte{0x12, 1, 0, 0, 255, 0}, in: 255, want: wantGood, check: func(t *testing.T, d []byte) {
			assert.Equal(t, []byte{0, 0x80, 0x83, 0x8f, 0xb0, 0xb1, 0xb2}, d[4:])
		}},
		{desc: "vpd serial", cdb: []byte{0x12, 1, 0x80, 0, 255, 0}, in: 255, want: wantGood, check: func(t *testing.T, d []byte) { assert.Equal(t, "SER0001", string(d[4:])) }},
		{desc: "vpd device id naa", cdb: []byte{0x12, 1, 0x83, 0, 255, 0}, in: 255, want: wantGood, check: func(t *testing.T, d []byte) {
			assert.Equal(t, []byte{0x01, 0x03, 0, 8}, d[4:8])
			assert.Equal(t, byte(0x30), d[8]&0xf0)
		}},
		{desc: "vpd block limits", cdb: []byte{0x12, 1, 0xb0, 0, 255, 0}, in: 255, want: wantGood, check: func(t *testing.T, d []byte) {
			require.Len(t, d, 64)
			assert.Equal(t, byte(0x3c), d[3])
			assert.Equal(t, uint32(0), binary.BigEndian.Uint32(d[20:])) // no unmap when not thin
		}},
		{desc: "vpd lbp refused when not thin", cdb: []byte{0x12, 1, 0xb2, 0, 255, 0}, want: wantBadCDB},
		{desc: "vpd lbp thin", cfg: LUConfig{Thin: true}, cdb: []byte{0x12, 1, 0xb2, 0, 255, 0}, in: 255, want: wantGood, check: func(t *testing.T, d []byte) {
			assert.Equal(t, byte(0xe4), d[5])
		}},
		{desc: "report luns", cdb: []byte{0xa0, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0}, in: 256, want: wantGood, check: func(t *testing.T, d []byte) {
			assert.Equal(t, []byte{0, 0, 0, 8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0}, d)
		}},
		{desc: "report luns well known", cdb: []byte{0xa0, 0, 1, 0, 0, 0, 0, 0, 1, 0, 0, 0}, in: 256, want: wantGood, check: func(t *testing.T, d []byte) { assert.Len(t, d, 8) }},
		{desc: "report luns bad select", cdb: []byte{0xa0, 0, 7, 0, 0, 0, 0, 0, 1, 0, 0, 0}, want: wantBadCDB},
		{desc: "report luns short alloc", cdb: []byte{0xa0, 0, 0, 0, 0, 0, 0, 0, 0, 8, 0, 0}, want: wantBadCDB},
		{desc: "read capacity 10", cdb: make10(0x25), in: 8, want: wantGood, check: func(t *testing.T, d []byte) {
			assert.Equal(t, []byte{0, 0, 0x07, 0xff, 0, 0, 2, 0}, d)
		}},
		{desc: "read capacity 10 lba without pmi", cdb: cdb10(0x25, 0, 5, 0), want: wantBadCDB},
		{desc: "read capacity 16 thin", cfg: LUConfig{Thin: true}, cdb: cdb16(0x9e, 0x10, 0, 32), in: 32, want: wantGood, check: func(t *testing.T, d []byte) {
			assert.Equal(t, uint64(testBlocks-1), binary.BigEndian.Uint64(d))
			assert.Equal(t, byte(0xc0), d[14]&0xc0)
		}},
		{desc: "read capacity 16 alloc 0", cdb: cdb16(0x9e, 0x10, 0, 0), want: wantGood, check: func(t *testing.T, d []byte) { assert.Empty(t, d) }},
		{desc: "read10", cdb: cdb10(0x28, 0, 0, 2), in: 1024, want: wantGood, check: func(t *testing.T, d []byte) { assert.Len(t, d, 1024) }},
		{desc: "read10 dpo fua", cdb: cdb10(0x28, 0x18, 0, 1), in: 512, want: wantGood},
		{desc: "read10 rdprotect", cdb: cdb10(0x28, 0x20, 0, 1), want: wantBadCDB},
		{desc: "read10 0 blocks at end", cdb: cdb10(0x28, 0, testBlocks, 0), want: wantGood},
		{desc: "read10 beyond end", cdb: cdb10(0x28, 0, testBlocks-1, 2), want: wantOOB},
		{desc: "read10 lba -1", cdb: cdb10(0x28, 0, 0xffffffff, 1), want: wantOOB},
		{desc: "read16 lba 2^63", cdb: cdb16(0x88, 0, 1<<63, 1), want: wantOOB},
		{desc: "read16 too long", cdb: cdb16(0x88, 0, 0, 1<<20), want: wantBadCDB},
		{desc: "read6 zero is 256", cdb: []byte{0x08, 0, 0, 0, 0, 0}, in: 256 * 512, want: wantGood, check: func(t *testing.T, d []byte) { assert.Len(t, d, 256*512) }},
		{desc: "write10", cdb: cdb10(0x2a, 0x08, 1, 1), out: blk, want: wantGood, wanted: 512},
		{desc: "write10 residual overflow writes the blocks that arrived", cdb: cdb10(0x2a, 0, 1, 2), out: blk, want: wantGood, wanted: 1024},
		{desc: "write10 read only", cfg: LUConfig{ReadOnly: true}, cdb: cdb10(0x2a, 0, 1, 1), out: blk, want: wantProtected, wanted: 512},
		{desc: "write16 beyond end", cdb: cdb16(0x8a, 0, testBlocks, 1), out: blk, want: wantOOB, wanted: 512},
		{desc: "write12 wrprotect", cdb: []byte{0xaa, 0x40, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0}, out: blk, want: wantBadCDB, wanted: 512},
		{desc: "write and verify 10", cdb: cdb10(0x2e, 0x12, 0, 1), out: blk, want: wantGood, wanted: 512},
		{desc: "verify10 bytchk 0", cdb: cdb10(0x2f, 0, 0, 8), want: wantGood},
		{desc: "verify10 bytchk 1 miscompare", cdb: cdb10(0x2f, 0x02, 0, 1), out: blk, want: wantMiscompare, wanted: 512},
		{desc: "verify10 bytchk 1 match", cdb: cdb10(0x2f, 0x02, 0, 1), out: make([]byte, 512), want: wantGood, wanted: 512},
		{desc: "verify10 bytchk 2", cdb: cdb10(0x2f, 0x04, 0, 1), want: wantBadCDB},
		{desc: "verify16 beyond end", cdb: cdb16(0x8f, 0x02, testBlocks+1, 0), want: wantOOB},
		{desc: "verify12 vrprotect", cdb: []byte{0xaf, 0xe0, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0}, want: wantBadCDB},
		{desc: "prefetch10", cdb: cdb10(0x34, 0x02, 0, 1), want: wantGood},
		{desc: "prefetch16 beyond end", cdb: cdb16(0x90, 0, testBlocks, 1), want: wantOOB},
		{desc: "sync cache10", cdb: cdb10(0x35, 0, 0, 0), want: wantGood},
		{desc: "sync cache16 beyond end", cdb: cdb16(0x91, 0, testBlocks+1, 0), want: wantOOB},
		{desc: "start stop", cdb: []byte{0x1b, 1, 0, 0, 1, 0}, want: wantGood},
		{desc: "prevent allow", cdb: []byte{0x1e, 0, 0, 0, 1, 0}, want: wantGood},
		{desc: "read defect data 10", cdb: []byte{0x37, 0, 0x18, 0, 0, 0, 0, 0, 32, 0}, in: 32, want: wantGood, check: func(t *testing.T, d []byte) {
			assert.Equal(t, []byte{0, 0x18, 0, 0}, d)
		}},
		{desc: "read defect data 12", cdb: []byte{0xb7, 0x08, 0, 0, 0, 0, 0, 0, 0, 32, 0, 0}, in: 32, want: wantGood, check: func(t *testing.T, d []byte) { assert.Len(t, d, 8) }},
		{desc: "request sense", cdb: []byte{0x03, 0, 0, 0, 252, 0}, in: 252, want: wantGood, check: func(t *testing.T, d []byte) { assert.Equal(t, byte(0x70), d[0]) }},
		{desc: "request sense desc absent lun", lun: 9, cdb: []byte{0x03, 1, 0, 0, 252, 0}, in: 252, want: wantGood, check: func(t *testing.T, d []byte) {
			assert.Equal(t, []byte{0x72, 5, 0x25, 0}, d[:4])
		}},
		{desc: "unmap on thick lu", cdb: []byte{0x42, 0, 0, 0, 0, 0, 0, 0, 24, 0}, out: unmapList(0, 1), want: wantBadOp},
		{desc: "unmap", cfg: LUConfig{Thin: true}, cdb: []byte{0x42, 0, 0, 0, 0, 0, 0, 0, 24, 0}, out: unmapList(0, 8), want: wantGood, wanted: 24},
		{desc: "unmap beyond end", cfg: LUConfig{Thin: true}, cdb: []byte{0x42, 0, 0, 0, 0, 0, 0, 0, 24, 0}, out: unmapList(testBlocks-1, 2), want: wantOOB, wanted: 24},
		{desc: "unmap anchor", cfg: LUConfig{Thin: true}, cdb: []byte{0x42, 1, 0, 0, 0, 0, 0, 0, 24, 0}, out: unmapList(0, 1), want: wantBadCDB, wanted: 24},
		{desc: "unmap short list", cfg: LUConfig{Thin: true}, cdb: []byte{0x42, 0, 0, 0, 0, 0, 0, 0, 4, 0}, out: make([]byte, 4), want: wantParamLength, wanted: 4},
		{desc: "unmap empty", cfg: LUConfig{Thin: true}, cdb: []byte{0x42, 0, 0, 0, 0, 0, 0, 0, 0, 0}, want: wantGood},
		{desc: "write same10", cdb: cdb10(0x41, 0, 0, 16), out: blk, want: wantGood, wanted: 512},
		{desc: "write same10 to end", cdb: cdb10(0x41, 0, testBlocks-4, 0), out: blk, want: wantGood, wanted: 512},
		{desc: "write same10 beyond end", cdb: cdb10(0x41, 0, testBlocks-1, 2), out: blk, want: wantOOB, wanted: 512},
		{desc: "write same10 zero beyond end", cdb: cdb10(0x41, 0, testBlocks+1, 0), out: blk, want: wantOOB, wanted: 512},
		{desc: "write same10 unmap thick", cdb: cdb10(0x41, 0x08, 0, 1), out: blk, want: wantBadCDB, wanted: 512},
		{desc: "write same10 unmap thin", cfg: LUConfig{Thin: true}, cdb: cdb10(0x41, 0x08, 0, 8), out: make([]byte, 512), want: wantGood, wanted: 512},
		{desc: "write same10 anchor", cfg: LUConfig{Thin: true}, cdb: cdb10(0x41, 0x18, 0, 8), out: make([]byte, 512), want: wantBadCDB, wanted: 512},
		{desc: "write same10 wrong data size", cdb: cdb10(0x41, 0, 0, 1), out: make([]byte, 1024), want: wantBadCDB, wanted: 512},
		{desc: "write same16 ndob", cfg: LUConfig{Thin: true}, cdb: cdb16(0x93, 0x09, 0, 8), want: wantGood},
		{desc: "write same16 wrprotect", cdb: cdb16(0x93, 0x20, 0, 8), out: blk, want: wantBadCDB, wanted: 512},
		{desc: "compare and write zero blocks", cdb: caw(0, 0, 0), want: wantGood},
		{desc: "compare and write match", cdb: caw(0, 1, 0x08), out: append(make([]byte, 512), blk...), want: wantGood, wanted: 1024},
		{desc: "compare and write miscompare", cdb: caw(0, 1, 0), out: append(bytes.Clone(blk), blk...), want: wantMiscompare, wanted: 1024},
		{desc: "compare and write bad size", cdb: caw(0, 1, 0), out: make([]byte, 2048), want: wantBadCDB, wanted: 1024},
		{desc: "compare and write beyond end", cdb: caw(testBlocks, 1, 0), out: make([]byte, 1024), want: wantOOB, wanted: 1024},
		{desc: "orwrite", cdb: cdb16(0x8b, 0, 0, 1), out: blk, want: wantGood, wanted: 512},
		{desc: "orwrite beyond end", cdb: cdb16(0x8b, 0, 1<<63, 0), want: wantOOB},
		{desc: "get lba status", cdb: cdb16(0x9e, 0x12, 5, 24), in: 24, want: wantGood, check: func(t *testing.T, d []byte) {
			require.Len(t, d, 24)
			assert.Equal(t, uint64(5), binary.BigEndian.Uint64(d[8:]))
		}},
		{desc: "get lba status beyond end", cdb: cdb16(0x9e, 0x12, testBlocks, 24), want: wantOOB},
		{desc: "mode sense6 all", cdb: []byte{0x1a, 0, 0x3f, 0, 255, 0}, in: 255, want: wantGood, check: func(t *testing.T, d []byte) {
			assert.Equal(t, byte(len(d)-1), d[0])
			assert.Equal(t, byte(0x10), d[2])
			assert.Equal(t, byte(8), d[3])
			assert.Equal(t, byte(pageCaching), d[12])
			assert.Equal(t, byte(pageControl), d[32])
		}},
		{desc: "mode sense6 read only wp", cfg: LUConfig{ReadOnly: true}, cdb: []byte{0x1a, 0x08, 0x08, 0, 255, 0}, in: 255, want: wantGood, check: func(t *testing.T, d []byte) {
			assert.Equal(t, byte(0x90), d[2])
			assert.Equal(t, byte(0), d[3])
		}},
		{desc: "mode sense6 truncated", cdb: []byte{0x1a, 0, 0x3f, 0, 4, 0}, in: 4, want: wantGood, check: func(t *testing.T, d []byte) { assert.Len(t, d, 4) }},
		{desc: "mode sense10 llbaa", cdb: []byte{0x5a, 0x10, 0x0a, 0, 0, 0, 0, 0, 255, 0}, in: 255, want: wantGood, check: func(t *testing.T, d []byte) {
			assert.Equal(t, byte(16), d[7])
			assert.Equal(t, byte(pageControl), d[24])
		}},
		{desc: "mode sense changeable", cdb: []byte{0x1a, 0x08, 0x48, 0, 255, 0}, in: 255, want: wantGood, check: func(t *testing.T, d []byte) {
			assert.Equal(t, byte(0x04), d[6])
		}},
		{desc: "mode sense unknown page", cdb: []byte{0x1a, 0, 0x19, 0, 255, 0}, want: wantBadCDB},
		{desc: "mode sense bad subpage", cdb: []byte{0x1a, 0, 0x08, 3, 255, 0}, want: wantBadCDB},
		{desc: "mode select save", cdb: []byte{0x15, 0x11, 0, 0, 0, 0}, want: wantBadCDB},
		{desc: "mode select unchangeable", cdb: []byte{0x15, 0x10, 0, 0, 32, 0}, out: cachingSelect(0x05), want: wantBadParam, wanted: 32},
		{desc: "mode select wce off", cdb: []byte{0x15, 0x10, 0, 0, 32, 0}, out: cachingSelect(0x00), want: wantGood, wanted: 32},
		{desc: "mode select short", cdb: []byte{0x15, 0x10, 0, 0, 24, 0}, out: cachingSelect(0)[:10], want: wantParamLength, wanted: 24},
		{desc: "rsoc all", cdb: rsoc(0, 0, 0, 0), in: 4096, want: wantGood, check: func(t *testing.T, d []byte) {
			assert.Equal(t, uint32(len(d)-4), binary.BigEndian.Uint32(d))
			assert.Zero(t, (len(d)-4)%8)
		}},
		{desc: "rsoc all rctd", cdb: rsoc(0x80, 0, 0, 0), in: 8192, want: wantGood, check: func(t *testing.T, d []byte) {
			assert.Zero(t, (len(d)-4)%20)
			assert.Equal(t, byte(0x02), d[4+5]&0x02)
			assert.Equal(t, []byte{0, 0x0a}, d[12:14])
		}},
		{desc: "rsoc one read10", cdb: rsoc(1, 0x28, 0, 0), in: 512, want: wantGood, check: func(t *testing.T, d []byte) {
			assert.Equal(t, []byte{0, 3, 0, 10, 0x28, 0x18}, d[:6])
		}},
		{desc: "rsoc one with sa of opcode without", cdb: rsoc(2, 0x28, 0, 0), want: wantBadCDB},
		{desc: "rsoc one without sa of opcode with", cdb: rsoc(1, 0x9e, 0x10, 0), want: wantBadCDB},
		{desc: "rsoc one sa", cdb: rsoc(2, 0x9e, 0x10, 0), in: 512, want: wantGood, check: func(t *testing.T, d []byte) {
			assert.Equal(t, []byte{0, 3, 0, 16, 0x9e, 0x10}, d[:6])
		}},
		{desc: "rsoc unsupported", cdb: rsoc(1, 0x42, 0, 0), in: 512, want: wantGood, check: func(t *testing.T, d []byte) {
			assert.Equal(t, byte(1), d[1]&7)
		}},
		{desc: "rsoc bad option", cdb: rsoc(5, 0, 0, 0), want: wantBadCDB},
	}
	for _, tt := range tests {
		t.Run(tt.desc, func(t *testing.T) {
			tgt, _ := newTestTarget(t, tt.cfg)
			r := run(tgt, tt.lun, tt.cdb, tt.out, tt.in)
			check(t, r, tt.want)
			assert.Equal(t, tt.wanted, r.DataOutWanted)
			if tt.check != nil {
				tt.check(t, r.DataIn)
			}
		})
	}
}

func make10(op byte) []byte { c := make([]byte, 10); c[0] = op; return c }

func caw(lba uint64, n byte, flags byte) []byte {
	c := cdb16(0x89, flags, lba, 0)
	c[13] = n
	return c
}

func rsoc(opts byte, op byte, sa uint16, _ int) []byte {
	c := make([]byte, 12)
	c[0], c[1], c[2], c[3] = 0xa3, 0x0c, opts, op
	binary.BigEndian.PutUint16(c[4:], sa)
	binary.BigEndian.PutUint32(c[6:], 0xffff)
	return c
}

func unmapList(lba uint64, n uint32) []byte {
	b := make([]byte, 24)
	binary.BigEndian.PutUint16(b, 22)
	binary.BigEndian.PutUint16(b[2:], 16)
	binary.BigEndian.PutUint64(b[8:], lba)
	binary.BigEndian.PutUint32(b[16:], n)
	return b
}

// cachingSelect is a MODE SELECT(6) list with an 8-byte block descriptor
// and the caching page with byte 2 set to b2.
func cachingSelect(b2 byte) []byte {
	b := []byte{0, 0, 0, 8, 0, 0, 0, 0, 0, 0, 2, 0}
	page := make([]byte, 20)
	page[0], page[1], page[2] = 0x08, 0x12, b2
	return append(b, page...)
}

func TestWriteReadBack(t *testing.T) {
	tgt, _ := newTestTarget(t, LUConfig{})
	data := make([]byte, 4096)
	for i := range data {
		data[i] = byte(i * 7)
	}
	check(t, run(tgt, 0, cdb10(0x2a, 0, 100, 8), data, 0), wantGood)
	r := run(tgt, 0, cdb16(0x88, 0, 100, 8), nil, 4096)
	check(t, r, wantGood)
	assert.Equal(t, data, r.DataIn)

	// VERIFY with BYTCHK=1 reports the offset of the first difference.
	bad := bytes.Clone(data)
	bad[777] ^= 0xff
	s := sense(t, run(tgt, 0, cdb10(0x2f, 0x02, 100, 8), bad, 0))
	assert.True(t, s.InfoValid)
	assert.Equal(t, uint64(777), s.Information)

	// ORWRITE ors into the medium.
	ones := bytes.Repeat([]byte{0x01}, 512)
	check(t, run(tgt, 0, cdb16(0x8b, 0, 100, 1), ones, 0), wantGood)
	r = run(tgt, 0, cdb10(0x28, 0, 100, 1), nil, 512)
	for i := range 512 {
		require.Equal(t, data[i]|1, r.DataIn[i])
	}
}

func TestCompareAndWriteMiscompareOffset(t *testing.T) {
	tgt, _ := newTestTarget(t, LUConfig{})
	a := bytes.Repeat([]byte{'A'}, 512)
	check(t, run(tgt, 0, cdb10(0x2a, 0, 0, 1), a, 0), wantGood)
	cmp := bytes.Clone(a)
	cmp[100] = 'Z'
	s := sense(t, run(tgt, 0, caw(0, 1, 0), append(cmp, bytes.Repeat([]byte{'B'}, 512)...), 0))
	assert.Equal(t, byte(wscsi.SenseMiscompare), s.Key)
	assert.Equal(t, uint64(100), s.Information)
	r := run(tgt, 0, cdb10(0x28, 0, 0, 1), nil, 512)
	assert.Equal(t, a, r.DataIn, "miscompare must not write")

	check(t, run(tgt, 0, caw(0, 1, 0), append(bytes.Clone(a), bytes.Repeat([]byte{'B'}, 512)...), 0), wantGood)
	r = run(tgt, 0, cdb10(0x28, 0, 0, 1), nil, 512)
	assert.Equal(t, bytes.Repeat([]byte{'B'}, 512), r.DataIn)
}

// Concurrent COMPARE AND WRITEs on one block behave like a counter: each
// succeeds only against the value it read, so no increment is lost.
func TestCompareAndWriteAtomic(t *testing.T) {
	tgt, _ := newTestTarget(t, LUConfig{})
	const workers, rounds = 4, 25
	var wg sync.WaitGroup
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for done := 0; done < rounds; {
				r := run(tgt, 0, cdb10(0x28, 0, 0, 1), nil, 512)
				cur := bytes.Clone(r.DataIn)
				next := bytes.Clone(cur)
				binary.BigEndian.PutUint32(next, binary.BigEndian.Uint32(cur)+1)
				if run(tgt, 0, caw(0, 1, 0), append(cur, next...), 0).Status == wscsi.StatusGood {
					done++
				}
			}
		}()
	}
	wg.Wait()
	r := run(tgt, 0, cdb10(0x28, 0, 0, 1), nil, 512)
	assert.Equal(t, uint32(workers*rounds), binary.BigEndian.Uint32(r.DataIn))
}

func TestUnmapReadsZeroAndLBAStatus(t *testing.T) {
	tgt, _ := newTestTarget(t, LUConfig{Thin: true})
	data := bytes.Repeat([]byte{0xff}, 64*512)
	check(t, run(tgt, 0, cdb10(0x2a, 0, 0, 64), data, 0), wantGood)
	check(t, run(tgt, 0, []byte{0x42, 0, 0, 0, 0, 0, 0, 0, 24, 0}, unmapList(16, 16), 0), wantGood)
	r := run(tgt, 0, cdb10(0x28, 0, 0, 64), nil, 64*512)
	assert.Equal(t, data[:16*512], r.DataIn[:16*512])
	assert.Equal(t, make([]byte, 16*512), r.DataIn[16*512:32*512])
	assert.Equal(t, data[32*512:], r.DataIn[32*512:])

	r = run(tgt, 0, cdb16(0x9e, 0x12, 0, 1024), nil, 1024)
	check(t, r, wantGood)
	d := r.DataIn
	require.GreaterOrEqual(t, len(d), 8+3*16)
	type ext struct {
		lba    uint64
		n      uint32
		status byte
	}
	got := []ext{}
	for i := 8; i+16 <= len(d) && len(got) < 3; i += 16 {
		got = append(got, ext{binary.BigEndian.Uint64(d[i:]), binary.BigEndian.Uint32(d[i+8:]), d[i+12]})
	}
	assert.Equal(t, []ext{{0, 16, 0}, {16, 16, 1}, {32, 32, 0}}, got[:3])

	// WRITE SAME with UNMAP and a zero block deallocates too.
	check(t, run(tgt, 0, cdb10(0x41, 0x08, 32, 16), make([]byte, 512), 0), wantGood)
	r = run(tgt, 0, cdb10(0x28, 0, 32, 16), nil, 16*512)
	assert.Equal(t, make([]byte, 16*512), r.DataIn)
}

func TestModeSelectDSenseSwitchesFormat(t *testing.T) {
	tgt, lu := newTestTarget(t, LUConfig{WriteCache: true})
	ctl := []byte{0, 0, 0, 0, 0x0a, 0x0a, 0x04, 0, 0, 0x40, 0, 0, 0xff, 0xff, 0, 0}
	check(t, run(tgt, 0, []byte{0x15, 0x10, 0, 0, byte(len(ctl)), 0}, ctl, 0), wantGood)
	assert.True(t, lu.dsense.Load())
	r := run(tgt, 0, cdb16(0x88, 0, 1<<63, 1), nil, 0)
	s := sense(t, r)
	assert.True(t, s.Descriptor)
	assert.Equal(t, byte(0x21), s.ASC)
	// Field pointer descriptor for an invalid CDB field.
	r = run(tgt, 0, cdb10(0x28, 0x20, 0, 1), nil, 0)
	require.Equal(t, byte(0x72), r.Sense[0])
	assert.Contains(t, string(r.Sense[8:]), string([]byte{0x02, 0x06, 0, 0, 0xcf, 0, 1}))

	// Turn WCE off through MODE SELECT(10).
	page := make([]byte, 20)
	page[0], page[1] = 0x08, 0x12
	list := append(make([]byte, 8), page...)
	check(t, run(tgt, 0, []byte{0x55, 0x10, 0, 0, 0, 0, 0, 0, byte(len(list)), 0}, list, 0), wantGood)
	assert.False(t, lu.wce.Load())
}

func TestFixedSenseFieldPointer(t *testing.T) {
	tgt, _ := newTestTarget(t, LUConfig{})
	r := run(tgt, 0, []byte{0x12, 0, 1, 0, 255, 0}, nil, 255)
	require.Len(t, r.Sense, 18)
	assert.Equal(t, []byte{0xc0, 0, 2}, r.Sense[15:18])
}

func TestTargetLUNs(t *testing.T) {
	tgt, lu := newTestTarget(t, LUConfig{})
	require.Error(t, tgt.AddLU(0, lu))
	require.NoError(t, tgt.AddLU(5, lu))
	assert.Equal(t, []uint64{0, 5}, tgt.LUNs())
	got, err := tgt.RemoveLU(5)
	require.NoError(t, err)
	assert.Same(t, lu, got)
	_, err = tgt.RemoveLU(5)
	require.Error(t, err)
	assert.Equal(t, int64(testBlocks*512), lu.Size())
}

func TestNewLUErrors(t *testing.T) {
	be, err := backstore.Open(filepath.Join(t.TempDir(), "x"), backstore.Options{Create: true, Size: 4096})
	require.NoError(t, err)
	defer be.Close()
	_, err = NewLU(LUConfig{Serial: "s", BlockSize: 520}, be)
	require.Error(t, err)
	_, err = NewLU(LUConfig{}, be)
	require.ErrorContains(t, err, "serial")
	_, err = NewLU(LUConfig{Serial: "s"}, nil)
	require.Error(t, err)
}

func TestAllocsReadWrite(t *testing.T) {
	tgt, _ := newTestTarget(t, LUConfig{WriteCache: true})
	rd := &Task{CDB: cdb10(0x28, 0, 8, 8), ExpectedLength: 4096, DataIn: make([]byte, 0, 4096)}
	wr := &Task{CDB: cdb10(0x2a, 0, 8, 8), ExpectedLength: 4096, DataOut: make([]byte, 4096)}
	assert.Zero(t, testing.AllocsPerRun(100, func() { tgt.Execute(rd) }), "READ(10)")
	assert.Zero(t, testing.AllocsPerRun(100, func() { tgt.Execute(wr) }), "WRITE(10)")
}

func BenchmarkRead10(b *testing.B) {
	tgt, _ := newTestTarget(b, LUConfig{WriteCache: true})
	task := &Task{CDB: cdb10(0x28, 0, 8, 8), ExpectedLength: 4096, DataIn: make([]byte, 0, 4096)}
	b.ReportAllocs()
	b.SetBytes(4096)
	for b.Loop() {
		tgt.Execute(task)
	}
}

func BenchmarkWrite10(b *testing.B) {
	tgt, _ := newTestTarget(b, LUConfig{WriteCache: true})
	task := &Task{CDB: cdb10(0x2a, 0, 8, 8), ExpectedLength: 4096, DataOut: make([]byte, 4096)}
	b.ReportAllocs()
	b.SetBytes(4096)
	for b.Loop() {
		tgt.Execute(task)
	}
}

// FuzzExecute feeds arbitrary CDBs and data to every LUN kind: Execute
// must never panic and must answer GOOD or CHECK CONDITION with sense.
func FuzzExecute(f *testing.F) {
	for _, c := range commandTable() {
		cdb := make([]byte, 16)
		copy(cdb, c.usage)
		f.Add(cdb, []byte{}, uint16(512), byte(0))
		f.Add(cdb, make([]byte, 1024), uint16(0), byte(1))
	}
	f.Add([]byte{0x42, 0, 0, 0, 0, 0, 0, 0, 24, 0}, unmapList(0, 1), uint16(0), byte(1))
	f.Add([]byte{0x15, 0x10, 0, 0, 32, 0}, cachingSelect(4), uint16(0), byte(0))
	f.Add([]byte{0x12}, []byte{}, uint16(0), byte(2))
	tgt, _ := newTestTarget(f, LUConfig{})
	thin, _ := newTestTarget(f, LUConfig{Thin: true, ReadOnly: false})
	ro, _ := newTestTarget(f, LUConfig{ReadOnly: true})
	f.Fuzz(func(t *testing.T, cdb, out []byte, in uint16, which byte) {
		tg := [...]*Target{tgt, thin, ro}[which%3]
		task := &Task{CDB: cdb, DataOut: out, ExpectedLength: uint32(max(len(out), int(in))), DataIn: make([]byte, 0, in)}
		r := tg.Execute(task)
		switch r.Status {
		case wscsi.StatusGood, wscsi.StatusReservationConflict:
			// A conflict is a valid answer once an earlier input reserved.
		case wscsi.StatusCheckCondition:
			_, err := wscsi.ParseSense(r.Sense)
			require.NoError(t, err)
		default:
			t.Fatalf("status %#x", r.Status)
		}
	})
}

func TestWriteOverflowWritesOnlyWhatArrived(t *testing.T) {
	tgt, _ := newTestTarget(t, LUConfig{})
	ones := bytes.Repeat([]byte{0xff}, 1024)
	r := run(tgt, 0, cdb10(0x2a, 0, 0, 2), ones, 0)
	require.Equal(t, byte(0), r.Status)
	zero := bytes.Repeat([]byte{0}, 1024)
	// Two blocks asked for, one announced and sent: block 0 changes, block 1 does not.
	task := &Task{LUN: 0, CDB: cdb10(0x2a, 0, 0, 2), DataOut: zero[:512], ExpectedLength: 512}
	r = tgt.Execute(task)
	require.Equal(t, byte(0), r.Status)
	assert.Equal(t, uint32(1024), r.DataOutWanted)
	r = run(tgt, 0, cdb10(0x28, 0, 0, 2), nil, 1024)
	require.Equal(t, byte(0), r.Status)
	assert.Equal(t, zero[:512], r.DataIn[:512])
	assert.Equal(t, ones[:512], r.DataIn[512:1024])
	// Data shorter than what the initiator announced is still refused.
	task = &Task{LUN: 0, CDB: cdb10(0x2a, 0, 0, 2), DataOut: zero[:512], ExpectedLength: 1024}
	r = tgt.Execute(task)
	assert.Equal(t, byte(2), r.Status)
}
