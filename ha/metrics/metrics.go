// Package metrics exports tandem-agent's state to Prometheus: per-link
// heartbeat counters (sent, received, lost, dropped by reason) and RTT,
// the node's and peer's state, failovers, and the duration of every
// resource operation. Gauges and counters are read from the agent's status
// snapshot at scrape time, so the agent's loop does no metrics work.
package metrics

import (
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/tandem-ha/tandem/ha/control"
)

// States are the node states exported as tandem_node_state{state}.
var States = []string{"init", "standby", "starting", "active", "stopping", "failed", "maintenance", "fenced"}

// Metrics is the agent's registry.
type Metrics struct {
	reg   *prometheus.Registry
	opDur *prometheus.HistogramVec
	gap   *prometheus.HistogramVec
	late  prometheus.Histogram
}

// Heartbeat timing buckets: from well within a keepalive to past the
// default deadtime (1 s), so a late heartbeat shows long before it kills.
var hbBuckets = []float64{.001, .005, .01, .025, .05, .1, .15, .2, .25, .3, .4, .5, .75, 1, 1.5, 2, 5}

// New registers the collectors; status is called at every scrape.
func New(status func() control.Status) *Metrics {
	m := &Metrics{reg: prometheus.NewRegistry()}
	m.opDur = prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name:    "tandem_resource_operation_duration_seconds",
		Help:    "Duration of resource operations by resource, operation and result.",
		Buckets: []float64{.001, .005, .01, .05, .1, .25, .5, 1, 2.5, 5, 10, 30, 60},
	}, []string{"resource", "op", "result"})
	m.gap = prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name:    "tandem_heartbeat_gap_seconds",
		Help:    "Time between two consecutive heartbeats received from the peer on the link (keepalive when all is well).",
		Buckets: hbBuckets,
	}, []string{"link"})
	m.late = prometheus.NewHistogram(prometheus.HistogramOpts{
		Name:    "tandem_heartbeat_send_lateness_seconds",
		Help:    "How late the agent's loop acted on its deadlines (heartbeat sends, the dead-peer verdict): scheduling delay on this node.",
		Buckets: []float64{.0001, .0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1},
	})
	m.reg.MustRegister(m.opDur, m.gap, m.late, &statusCollector{status: status},
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return m
}

// ObserveResourceOp records one finished resource operation (agent.Options.OnResourceOp).
func (m *Metrics) ObserveResourceOp(name, op string, d time.Duration, err error) {
	result := "ok"
	if err != nil {
		result = "error"
	}
	m.opDur.WithLabelValues(name, op, result).Observe(d.Seconds())
}

// ObserveHeartbeatGap records the gap between two heartbeats of the peer
// on link (agent.Options.OnHeartbeatGap).
func (m *Metrics) ObserveHeartbeatGap(link string, d time.Duration) {
	m.gap.WithLabelValues(link).Observe(d.Seconds())
}

// ObserveLateness records how late the loop woke for a deadline
// (agent.Options.OnLateness).
func (m *Metrics) ObserveLateness(d time.Duration) { m.late.Observe(d.Seconds()) }

// Handler serves /metrics.
func (m *Metrics) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.Handle("/metrics", promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{}))
	return mux
}

// Registry is the underlying registry (tests).
func (m *Metrics) Registry() *prometheus.Registry { return m.reg }

var (
	descState     = prometheus.NewDesc("tandem_node_state", "1 for this node's current state.", []string{"node", "state"}, nil)
	descPeerAlive = prometheus.NewDesc("tandem_peer_alive", "1 when the peer was heard within deadtime on any link.", []string{"peer"}, nil)
	descFailovers = prometheus.NewDesc("tandem_failovers_total", "Times this node took the group from a dead or failed peer.", nil, nil)
	descLinkUp    = prometheus.NewDesc("tandem_link_up", "1 when the peer was heard on the link within deadtime.", []string{"link"}, nil)
	descRTT       = prometheus.NewDesc("tandem_link_rtt_seconds", "Last heartbeat round-trip time on the link.", []string{"link"}, nil)
	descSent      = prometheus.NewDesc("tandem_heartbeats_sent_total", "Heartbeats sent on the link.", []string{"link"}, nil)
	descReceived  = prometheus.NewDesc("tandem_heartbeats_received_total", "Peer heartbeats accepted on the link.", []string{"link"}, nil)
	descLost      = prometheus.NewDesc("tandem_heartbeats_lost_total", "Peer heartbeats missing on the link (sequence gaps).", []string{"link"}, nil)
	descDropped   = prometheus.NewDesc("tandem_heartbeats_dropped_total", "Datagrams dropped on the link by reason.", []string{"link", "reason"}, nil)
	descSendErr   = prometheus.NewDesc("tandem_heartbeat_send_errors_total", "Failed heartbeat sends on the link.", []string{"link"}, nil)
	descFenced    = prometheus.NewDesc("tandem_fenced", "1 while the storage has fenced this node (until tandemctl rejoin).", []string{"node"}, nil)
	descDiskOK    = prometheus.NewDesc("tandem_disk_heartbeat_ok", "1 when the last disk heartbeat round (write our slot, read the peer's) succeeded.", nil, nil)
	descDiskAge   = prometheus.NewDesc("tandem_disk_heartbeat_age_seconds", "Time since the peer's disk heartbeat slot last changed (absent before the first change).", []string{"peer"}, nil)
)

type statusCollector struct{ status func() control.Status }

func (c *statusCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{descState, descPeerAlive, descFailovers, descLinkUp, descRTT,
		descSent, descReceived, descLost, descDropped, descSendErr, descFenced, descDiskOK, descDiskAge} {
		ch <- d
	}
}

func (c *statusCollector) Collect(ch chan<- prometheus.Metric) {
	s := c.status()
	for _, st := range States {
		ch <- prometheus.MustNewConstMetric(descState, prometheus.GaugeValue, b2f(st == s.Node.State), s.Node.Name, st)
	}
	ch <- prometheus.MustNewConstMetric(descPeerAlive, prometheus.GaugeValue, b2f(s.Peer.Alive), s.Peer.Name)
	ch <- prometheus.MustNewConstMetric(descFailovers, prometheus.CounterValue, float64(s.Failovers))
	ch <- prometheus.MustNewConstMetric(descFenced, prometheus.GaugeValue, b2f(s.Node.Fenced), s.Node.Name)
	if d := s.DiskHeartbeat; d != nil {
		ch <- prometheus.MustNewConstMetric(descDiskOK, prometheus.GaugeValue, b2f(d.OK))
		if !d.PeerLastSeen.IsZero() {
			ch <- prometheus.MustNewConstMetric(descDiskAge, prometheus.GaugeValue, s.GeneratedAt.Sub(d.PeerLastSeen).Seconds(), s.Peer.Name)
		}
	}
	for _, l := range s.Links {
		ch <- prometheus.MustNewConstMetric(descLinkUp, prometheus.GaugeValue, b2f(l.Up), l.Name)
		ch <- prometheus.MustNewConstMetric(descRTT, prometheus.GaugeValue, l.RTT.Seconds(), l.Name)
		ch <- prometheus.MustNewConstMetric(descSent, prometheus.CounterValue, float64(l.Sent), l.Name)
		ch <- prometheus.MustNewConstMetric(descReceived, prometheus.CounterValue, float64(l.Received), l.Name)
		ch <- prometheus.MustNewConstMetric(descLost, prometheus.CounterValue, float64(l.Lost), l.Name)
		ch <- prometheus.MustNewConstMetric(descSendErr, prometheus.CounterValue, float64(l.SendErrors), l.Name)
		for reason, v := range map[string]uint64{"forged": l.Forged, "foreign": l.Foreign, "replayed": l.Replayed, "malformed": l.Malformed} {
			ch <- prometheus.MustNewConstMetric(descDropped, prometheus.CounterValue, float64(v), l.Name, reason)
		}
	}
}

func b2f(b bool) float64 {
	if b {
		return 1
	}
	return 0
}
