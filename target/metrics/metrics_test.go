package metrics

import (
	"net/http/httptest"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"

	"github.com/tandem-ha/tandem/target/scsi"
)

func snapshot() Snapshot {
	var io scsi.IOStats
	r := &io.Class[scsi.ClassRead]
	r.Commands, r.Bytes, r.Errors = 3, 12288, 1
	r.Latency[0], r.Latency[7], r.Latency[len(r.Latency)-1] = 1, 1, 1 // 25us, 5ms, above 5s
	r.LatencySum = 6 * time.Second
	io.Conflicts, io.ReservationChanges = 2, 4
	return Snapshot{
		Sessions: map[string]int{"iqn.t:a": 2, "": 1},
		LUNs: []LUN{{Target: "iqn.t:a", ID: 1, IO: io, Faults: scsi.FaultStats{SlowCommands: 1},
			Audit: &AuditStats{Appended: 10, Dropped: 3}}},
	}
}

func TestCollect(t *testing.T) {
	m := New(snapshot)
	rec := httptest.NewRecorder()
	m.Handler().ServeHTTP(rec, httptest.NewRequest("GET", "/metrics", nil))
	body := rec.Body.String()
	for _, line := range []string{
		`tandem_target_sessions{target="iqn.t:a"} 2`,
		`tandem_target_sessions{target=""} 1`,
		`tandem_target_commands_total{class="read",lun="1",target="iqn.t:a"} 3`,
		`tandem_target_bytes_total{class="read",lun="1",target="iqn.t:a"} 12288`,
		`tandem_target_command_errors_total{class="read",lun="1",target="iqn.t:a"} 1`,
		`tandem_target_commands_total{class="write",lun="1",target="iqn.t:a"} 0`,
		`tandem_target_reservation_conflicts_total{lun="1",target="iqn.t:a"} 2`,
		`tandem_target_reservation_changes_total{lun="1",target="iqn.t:a"} 4`,
		`tandem_target_backend_faults_total{kind="slow",lun="1",target="iqn.t:a"} 1`,
		`tandem_target_audit_dropped_total{lun="1",target="iqn.t:a"} 3`,
		`tandem_target_audit_records_total{lun="1",target="iqn.t:a"} 10`,
		`tandem_target_command_duration_seconds_bucket{class="read",lun="1",target="iqn.t:a",le="2.5e-05"} 1`,
		`tandem_target_command_duration_seconds_bucket{class="read",lun="1",target="iqn.t:a",le="0.0025"} 1`,
		`tandem_target_command_duration_seconds_bucket{class="read",lun="1",target="iqn.t:a",le="0.005"} 2`,
		`tandem_target_command_duration_seconds_bucket{class="read",lun="1",target="iqn.t:a",le="5"} 2`,
		`tandem_target_command_duration_seconds_bucket{class="read",lun="1",target="iqn.t:a",le="+Inf"} 3`,
		`tandem_target_command_duration_seconds_sum{class="read",lun="1",target="iqn.t:a"} 6`,
		`tandem_target_command_duration_seconds_count{class="read",lun="1",target="iqn.t:a"} 3`,
		`process_cpu_seconds_total`,
	} {
		assert.Contains(t, body, line)
	}
}

// TestCollectNoAudit: a LUN without an audit stream exports no audit
// series (absent, not a misleading 0).
func TestCollectNoAudit(t *testing.T) {
	m := New(func() Snapshot { return Snapshot{LUNs: []LUN{{Target: "iqn.t:b", ID: 0}}} })
	rec := httptest.NewRecorder()
	m.Handler().ServeHTTP(rec, httptest.NewRequest("GET", "/metrics", nil))
	assert.Contains(t, rec.Body.String(), `tandem_target_commands_total{class="other",lun="0",target="iqn.t:b"} 0`)
	assert.NotContains(t, rec.Body.String(), "tandem_target_audit")
}
