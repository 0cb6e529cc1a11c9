package initiator

import (
	"bytes"
	"context"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/tandem-ha/tandem/target/targettest"
)

// TestLiveTarget runs the initiator against a real tandem-target that
// the test starts on loopback (target/targettest), over TCP: discovery,
// then a session with and without digests that writes and reads LUN 0.
func TestLiveTarget(t *testing.T) {
	const iqn = "iqn.2026-11.io.tandem:live"
	portal := targettest.Start(t, targettest.Options{IQN: iqn})
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()

	targets, err := Discover(ctx, portal, DiscoveryOptions{})
	require.NoError(t, err)
	require.Len(t, targets, 1)
	assert.Equal(t, iqn, targets[0].Name)
	name := targets[0].Name
	var creds *CHAP

	for _, digests := range []bool{false, true} {
		s, err := Dial(ctx, portal, Options{TargetName: name, CHAP: creds, HeaderDigest: digests, DataDigest: digests})
		require.NoError(t, err)
		t.Logf("params %+v", s.Params())
		assert.Equal(t, digests, s.Params().HeaderDigest, "tandem-target accepts CRC32C when offered")
		assert.Equal(t, digests, s.Params().DataDigest)
		inq, err := s.Inquiry(ctx, 0)
		require.NoError(t, err)
		t.Logf("inquiry %s %s %s", inq.Vendor, inq.Product, inq.Revision)
		require.NoError(t, s.TestUnitReady(ctx, 0))
		c, err := s.ReadCapacity16(ctx, 0)
		require.NoError(t, err)
		luns, err := s.ReportLUNs(ctx)
		require.NoError(t, err)
		t.Logf("capacity %+v luns %v", c, luns)
		assert.Equal(t, int64(4<<20), c.Size(), "targettest's default LUN")
		assert.Equal(t, []uint64{0}, luns)

		for _, size := range []int{4096, 65536 + 512, 1 << 20, 3<<20 + 4096} {
			data := make([]byte, size)
			for i := range data {
				data[i] = byte(i*31 + size)
			}
			require.NoError(t, s.Write16(ctx, 0, 8, data, size == 4096))
			got := make([]byte, size)
			require.NoError(t, s.ReadInto(ctx, 0, 8, got))
			require.True(t, bytes.Equal(data, got), "size %d", size)
		}
		require.NoError(t, s.SyncCache(ctx, 0))
		var wg sync.WaitGroup
		for i := range 64 {
			wg.Go(func() {
				buf := bytes.Repeat([]byte{byte(i)}, 4096)
				lba := uint64(1024 + i*8)
				assert.NoError(t, s.Write16(ctx, 0, lba, buf, false))
				got := make([]byte, 4096)
				assert.NoError(t, s.ReadInto(ctx, 0, lba, got))
				assert.Equal(t, buf, got)
			})
		}
		wg.Wait()
		require.NoError(t, s.Ping(ctx))
		require.NoError(t, s.Close(context.Background()))
	}
}
