package itest

import (
	"bytes"
	"context"
	"encoding/binary"
	"net"
	"net/http"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/tandem-ha/tandem/initiator"
	"github.com/tandem-ha/tandem/target/audit"
	"github.com/tandem-ha/tandem/target/config"
	"github.com/tandem-ha/tandem/target/durability"
)

const durIQN = "iqn.2026-12.io.tandem:durability"

// tagged is a block that names the write that put it there.
func tagged(tag, lba uint64) []byte {
	b := bytes.Repeat([]byte{byte(tag)}, 512)
	binary.BigEndian.PutUint64(b, tag)
	binary.BigEndian.PutUint64(b[8:], lba)
	return b
}

// tagOf reads a block's tag back; a block that is not one of ours
// (wrong LBA, damaged) reads as an impossible tag.
func tagOf(b []byte, lba uint64) uint64 {
	if bytes.Equal(b, make([]byte, 512)) {
		return 0
	}
	tag := binary.BigEndian.Uint64(b)
	if !bytes.Equal(b, tagged(tag, lba)) {
		return ^uint64(0)
	}
	return tag
}

func adminPost(t *testing.T, sock, path, body string) (int, string) {
	t.Helper()
	c := http.Client{Transport: &http.Transport{DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
		return (&net.Dialer{}).DialContext(ctx, "unix", sock)
	}}}
	resp, err := c.Post("http://target"+path, "application/json", strings.NewReader(body))
	require.NoError(t, err)
	defer resp.Body.Close()
	var buf bytes.Buffer
	_, _ = buf.ReadFrom(resp.Body)
	return resp.StatusCode, buf.String()
}

// powerCutRun writes through the native initiator to a LUN with a
// volatile cache (unsynced writes, FUA writes, more unsynced writes),
// cuts the power, restarts the daemon and returns the history, what was
// read back and the audit records.
func powerCutRun(t *testing.T, mode string) ([]durability.Op, map[uint64]uint64, []audit.Record) {
	dir := t.TempDir()
	cfg := newConfig(t, dir)
	lun := sparseLUN(t, dir, "dur", 0, 1<<20)
	lun.Cache = config.CacheVolatile
	lun.Audit = filepath.Join(dir, "dur.audit")
	cfg.Targets = []config.Target{{Name: durIQN, LUNs: []config.LUN{lun}}}
	d := start(t, dir, cfg)

	s, err := initiator.Dial(ctx(t), cfg.Listen[0], initiator.Options{TargetName: durIQN, InitiatorName: "iqn.2026-12.io.tandem:writer"})
	require.NoError(t, err)
	var history []durability.Op
	tag := uint64(0)
	write := func(lba uint64, fua bool) {
		tag++
		err := s.Write16(ctx(t), 0, lba, tagged(tag, lba), fua)
		require.NoError(t, err)
		history = append(history, durability.Op{Kind: durability.Write, LBA: lba, Blocks: 1, FUA: fua, Tag: tag, Outcome: durability.OK})
	}
	for lba := uint64(0); lba < 16; lba++ { // A: unsynced, then covered by the FUA writes' flush
		write(lba, false)
	}
	for lba := uint64(16); lba < 32; lba++ { // B: FUA
		write(lba, true)
	}
	for lba := uint64(32); lba < 48; lba++ { // C: unsynced, in the cache at the cut
		write(lba, false)
	}
	for lba := uint64(16); lba < 20; lba++ { // unsynced overwrites of FUA blocks
		write(lba, false)
	}
	code, body := adminPost(t, cfg.AdminSocket, "/v1/targets/"+durIQN+"/luns/0/power-cut", `{"mode":"`+mode+`","seed":11}`)
	require.Equal(t, http.StatusOK, code, body)
	s.Close(context.Background())
	d.kill() // what is durable is in the file; the restart proves it
	d = d.restart(t)
	require.False(t, d.exited(), d.log())

	s, err = initiator.Dial(ctx(t), cfg.Listen[0], initiator.Options{TargetName: durIQN, InitiatorName: "iqn.2026-12.io.tandem:reader"})
	require.NoError(t, err)
	defer s.Close(context.Background())
	data, err := s.Read16(ctx(t), 0, 0, 64)
	require.NoError(t, err)
	back := map[uint64]uint64{}
	for lba := range uint64(64) {
		back[lba] = tagOf(data[lba*512:(lba+1)*512], lba)
	}
	d.kill()
	recs, _, err := audit.ReadFile(lun.Audit)
	require.NoError(t, err)
	return history, back, recs
}

// TestPowerCutKeepsAcknowledged: every acknowledged FUA write survives a
// power cut of the volatile cache; unsynced writes may go (and here do).
func TestPowerCutKeepsAcknowledged(t *testing.T) {
	for _, mode := range []string{"drop", "tear"} {
		t.Run(mode, func(t *testing.T) {
			history, back, recs := powerCutRun(t, mode)
			r := durability.Check(history, back)
			assert.True(t, r.OK(), "lost %v, unexpected %v", r.Lost, r.Unexpected)
			for lba := uint64(16); lba < 32; lba++ {
				assert.NotZero(t, back[lba], "FUA block %d", lba)
			}
			if mode == "drop" {
				for lba := uint64(32); lba < 48; lba++ {
					assert.Zero(t, back[lba], "unsynced block %d survived a drop: the cache is not volatile", lba)
				}
			}
			// The witness saw every write, in the writer's name.
			s := audit.Summarize(recs)
			assert.Equal(t, audit.Summary{Accepted: len(history)}, s)
			w := audit.Writers(recs, 0, 64)
			require.Len(t, w, 1)
			assert.Equal(t, "iqn.2026-12.io.tandem:writer", w[0].Initiator)
			last := audit.LastWriters(recs, []uint64{16})
			assert.NotZero(t, last[16].Seq)
			assert.Zero(t, last[16].Flags&audit.FlagFUA, "the last write to block 16 was the unsynced overwrite")
		})
	}
}

// TestPowerCutBrokenFUA is the negative control: in the deliberately
// broken build FUA does not flush the cache, and the checker reports
// the acknowledged FUA writes the power cut lost.
func TestPowerCutBrokenFUA(t *testing.T) {
	t.Setenv("TANDEM_TEST_BROKEN_FUA", "1") // inherited by the daemon
	history, back, _ := powerCutRun(t, "drop")
	r := durability.Check(history, back)
	require.False(t, r.OK(), "the checker must see the lost FUA writes")
	var lost []uint64
	for _, f := range r.Lost {
		lost = append(lost, f.LBA)
	}
	assert.Subset(t, lost, []uint64{20, 21, 22, 23, 24, 25, 26, 27, 28, 29, 30, 31})
	assert.Empty(t, r.Unexpected)
}
