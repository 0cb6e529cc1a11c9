package daemon

import (
	"context"
	"io"
	"log/slog"
	"net"
	"net/http"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/tandem-ha/tandem/target/config"
	"github.com/tandem-ha/tandem/target/iscsi"
	"github.com/tandem-ha/tandem/target/metrics"
)

func TestMetricsSnapshot(t *testing.T) {
	dir := t.TempDir()
	m := NewManager(iscsi.NewServer(iscsi.Config{}), nil)
	require.NoError(t, m.AddTarget(config.Target{Name: iqn, LUNs: []config.LUN{
		{ID: 1, Path: filepath.Join(dir, "lun1"), Size: 1 << 20, BlockSize: 512, WriteCache: true,
			Audit: filepath.Join(dir, "lun1.audit")},
		{ID: 0, Path: filepath.Join(dir, "lun0"), Size: 1 << 20, BlockSize: 512, WriteCache: true},
	}}))
	t.Cleanup(func() { _ = m.Close() })

	s := m.MetricsSnapshot()
	assert.Equal(t, map[string]int{iqn: 0}, s.Sessions)
	require.Len(t, s.LUNs, 2)
	assert.Equal(t, uint64(0), s.LUNs[0].ID, "sorted by LUN")
	assert.Nil(t, s.LUNs[0].Audit)
	assert.Equal(t, &metrics.AuditStats{Appended: 1}, s.LUNs[1].Audit, "the audit stream's start record")
}

func TestServeMetrics(t *testing.T) {
	m := NewManager(iscsi.NewServer(iscsi.Config{}), nil)
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	addr := l.Addr().String()
	require.NoError(t, l.Close())
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	ServeMetrics(ctx, addr, m, slog.New(slog.DiscardHandler))
	resp, err := http.Get("http://" + addr + "/metrics")
	require.NoError(t, err)
	body, _ := io.ReadAll(resp.Body)
	_ = resp.Body.Close()
	assert.Contains(t, string(body), "process_cpu_seconds_total")

	// A taken port is logged, not fatal.
	ServeMetrics(ctx, addr, m, slog.New(slog.DiscardHandler))
}
