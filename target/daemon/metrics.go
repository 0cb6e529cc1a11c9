package daemon

import (
	"context"
	"errors"
	"log/slog"
	"net"
	"net/http"
	"sort"
	"time"

	"github.com/tandem-ha/tandem/target/metrics"
)

// MetricsSnapshot is what a Prometheus scrape exports: sessions by
// target and every LU's counters (metrics.New's source).
func (m *Manager) MetricsSnapshot() metrics.Snapshot {
	s := metrics.Snapshot{Sessions: map[string]int{}}
	for _, si := range m.srv.Sessions() {
		s.Sessions[si.Target]++
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	for name, mt := range m.targets {
		// A target without sessions still shows, as 0.
		if _, ok := s.Sessions[name]; !ok {
			s.Sessions[name] = 0
		}
		for id, l := range mt.luns {
			lun := metrics.LUN{Target: name, ID: id, IO: l.lu.IOStats(), Faults: l.lu.FaultStats()}
			if l.audit != nil {
				st := l.audit.Stats()
				lun.Audit = &metrics.AuditStats{Appended: st.Appended, Dropped: st.Dropped}
			}
			s.LUNs = append(s.LUNs, lun)
		}
	}
	sort.Slice(s.LUNs, func(i, j int) bool {
		a, b := s.LUNs[i], s.LUNs[j]
		return a.Target < b.Target || a.Target == b.Target && a.ID < b.ID
	})
	return s
}

// ServeMetrics serves mgr's metrics on addr (/metrics) until ctx ends.
// A port that cannot be bound is logged and the daemon goes on: metrics
// are not worth an outage.
func ServeMetrics(ctx context.Context, addr string, mgr *Manager, log *slog.Logger) {
	l, err := net.Listen("tcp", addr)
	if err != nil {
		log.Error("metrics not served: cannot listen; set metrics_address to a free IP:PORT, or off", "addr", addr, "err", err)
		return
	}
	log.Info("metrics listening", "addr", l.Addr().String())
	srv := &http.Server{Handler: metrics.New(mgr.MetricsSnapshot).Handler(), ReadHeaderTimeout: 10 * time.Second}
	go func() {
		<-ctx.Done()
		_ = srv.Close()
	}()
	go func() {
		if err := srv.Serve(l); err != nil && !errors.Is(err, http.ErrServerClosed) {
			log.Error("metrics server stopped", "err", err)
		}
	}()
}
