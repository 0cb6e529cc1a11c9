// Package metrics exports tandem-target's state to Prometheus: sessions
// per target; per LUN the commands, bytes, errors and an execution-time
// histogram for reads, writes and other commands; reservation conflicts
// and changes; backend faults; audit stream records and drops. Like the
// agent's metrics (ha/metrics), everything is read from a snapshot at
// scrape time: the I/O path only adds to atomic counters (scsi.IOStats),
// so metrics cost it no allocation and no lock.
package metrics

import (
	"net/http"
	"strconv"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/tandem-ha/tandem/target/scsi"
)

// Snapshot is what a scrape exports.
type Snapshot struct {
	// Sessions counts full-feature sessions by target name; discovery
	// sessions under "".
	Sessions map[string]int
	LUNs     []LUN
}

// LUN is one served LU's counters.
type LUN struct {
	Target string
	ID     uint64
	IO     scsi.IOStats
	Faults scsi.FaultStats
	// Audit is set when the LUN keeps an audit stream.
	Audit *AuditStats
}

// AuditStats are an audit stream's counters (audit.Writer.Stats).
type AuditStats struct{ Appended, Dropped uint64 }

// Metrics is the target's registry.
type Metrics struct{ reg *prometheus.Registry }

// New registers the collectors; snap is called at every scrape.
func New(snap func() Snapshot) *Metrics {
	m := &Metrics{reg: prometheus.NewRegistry()}
	m.reg.MustRegister(&collector{snap: snap},
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return m
}

// Handler serves /metrics.
func (m *Metrics) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.Handle("/metrics", promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{}))
	return mux
}

// Registry is the underlying registry (tests).
func (m *Metrics) Registry() *prometheus.Registry { return m.reg }

var (
	lunLabels   = []string{"target", "lun"}
	classLabels = []string{"target", "lun", "class"}

	descSessions  = prometheus.NewDesc("tandem_target_sessions", "Sessions in full feature phase by target (discovery sessions under target=\"\").", []string{"target"}, nil)
	descCommands  = prometheus.NewDesc("tandem_target_commands_total", "SCSI commands executed by class (read, write, other).", classLabels, nil)
	descBytes     = prometheus.NewDesc("tandem_target_bytes_total", "Bytes read (data-in) or written (data-out taken) by commands that completed.", classLabels, nil)
	descErrors    = prometheus.NewDesc("tandem_target_command_errors_total", "Commands that ended in CHECK CONDITION.", classLabels, nil)
	descDuration  = prometheus.NewDesc("tandem_target_command_duration_seconds", "Execution time of commands in the SCSI layer (backend included, network excluded).", classLabels, nil)
	descConflicts = prometheus.NewDesc("tandem_target_reservation_conflicts_total", "Commands refused with RESERVATION CONFLICT.", lunLabels, nil)
	descResv      = prometheus.NewDesc("tandem_target_reservation_changes_total", "PERSISTENT RESERVE OUT, RESERVE and RELEASE commands that completed with GOOD.", lunLabels, nil)
	descFaults    = prometheus.NewDesc("tandem_target_backend_faults_total", "Commands that met a backend fault by kind (read_error, write_error, space_alloc, slow).", []string{"target", "lun", "kind"}, nil)
	descAudit     = prometheus.NewDesc("tandem_target_audit_records_total", "Records appended to the LUN's audit stream.", lunLabels, nil)
	descAuditDrop = prometheus.NewDesc("tandem_target_audit_dropped_total", "Audit records lost to a full buffer: the audit history is incomplete when this is not 0.", lunLabels, nil)
)

// buckets are the histogram bounds in seconds, from scsi.LatencyBounds.
var buckets = func() []float64 {
	b := make([]float64, len(scsi.LatencyBounds))
	for i, d := range scsi.LatencyBounds {
		b[i] = d.Seconds()
	}
	return b
}()

type collector struct{ snap func() Snapshot }

func (c *collector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{descSessions, descCommands, descBytes, descErrors, descDuration,
		descConflicts, descResv, descFaults, descAudit, descAuditDrop} {
		ch <- d
	}
}

func (c *collector) Collect(ch chan<- prometheus.Metric) {
	s := c.snap()
	for t, n := range s.Sessions {
		ch <- prometheus.MustNewConstMetric(descSessions, prometheus.GaugeValue, float64(n), t)
	}
	counter := func(d *prometheus.Desc, v uint64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.CounterValue, float64(v), labels...)
	}
	for _, l := range s.LUNs {
		lun := strconv.FormatUint(l.ID, 10)
		for i, cs := range l.IO.Class {
			cl := scsi.IOClass(i).String()
			counter(descCommands, cs.Commands, l.Target, lun, cl)
			counter(descBytes, cs.Bytes, l.Target, lun, cl)
			counter(descErrors, cs.Errors, l.Target, lun, cl)
			cum := map[float64]uint64{}
			var n uint64
			for j, b := range buckets {
				n += cs.Latency[j]
				cum[b] = n
			}
			n += cs.Latency[len(buckets)]
			ch <- prometheus.MustNewConstHistogram(descDuration, n, cs.LatencySum.Seconds(), cum, l.Target, lun, cl)
		}
		counter(descConflicts, l.IO.Conflicts, l.Target, lun)
		counter(descResv, l.IO.ReservationChanges, l.Target, lun)
		counter(descFaults, l.Faults.ReadErrors, l.Target, lun, "read_error")
		counter(descFaults, l.Faults.WriteErrors, l.Target, lun, "write_error")
		counter(descFaults, l.Faults.SpaceAllocFailures, l.Target, lun, "space_alloc")
		counter(descFaults, l.Faults.SlowCommands, l.Target, lun, "slow")
		if l.Audit != nil {
			counter(descAudit, l.Audit.Appended, l.Target, lun)
			counter(descAuditDrop, l.Audit.Dropped, l.Target, lun)
		}
	}
}
