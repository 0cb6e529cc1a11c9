package initiator

import (
	"bytes"
	"context"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestLiveTarget runs against a real target when TANDEM_TEST_PORTAL and
// TANDEM_TEST_TARGET are set (e.g. a local tandem-target). It writes to
// LUN 0 of that target.
func TestLiveTarget(t *testing.T) {
	portal, name := os.Getenv("TANDEM_TEST_PORTAL"), os.Getenv("TANDEM_TEST_TARGET")
	if portal == "" || name == "" {
		t.Skip("set TANDEM_TEST_PORTAL and TANDEM_TEST_TARGET to test against a live target")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	var creds *CHAP
	if u := os.Getenv("TANDEM_TEST_CHAP_USER"); u != "" {
		creds = &CHAP{User: u, Secret: []byte(os.Getenv("TANDEM_TEST_CHAP_SECRET")),
			MutualUser: os.Getenv("TANDEM_TEST_CHAP_MUTUAL_USER"), MutualSecret: []byte(os.Getenv("TANDEM_TEST_CHAP_MUTUAL_SECRET"))}
	}

	targets, err := Discover(ctx, portal, DiscoveryOptions{CHAP: nil})
	if err == nil {
		t.Logf("discovered %+v", targets)
	} else {
		t.Logf("discovery: %v", err)
	}

	for _, digests := range []bool{false, true} {
		s, err := Dial(ctx, portal, Options{TargetName: name, CHAP: creds, HeaderDigest: digests, DataDigest: digests})
		require.NoError(t, err)
		t.Logf("params %+v", s.Params())
		inq, err := s.Inquiry(ctx, 0)
		require.NoError(t, err)
		t.Logf("inquiry %s %s %s", inq.Vendor, inq.Product, inq.Revision)
		require.NoError(t, s.TestUnitReady(ctx, 0))
		c, err := s.ReadCapacity16(ctx, 0)
		require.NoError(t, err)
		luns, err := s.ReportLUNs(ctx)
		require.NoError(t, err)
		t.Logf("capacity %+v luns %v", c, luns)

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
		require.NoError(t, s.Close())
	}
}
