package metrics

import (
	"errors"
	"io"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/tandem-ha/tandem/ha/control"
)

func TestScrape(t *testing.T) {
	m := New(func() control.Status {
		return control.Status{Node: control.NodeStatus{Name: "a", State: "active"}, Failovers: 2,
			Peer:          control.NodeStatus{Name: "b", Alive: true},
			Links:         []control.LinkStatus{{Name: "hb", Up: true, RTT: 250 * time.Microsecond, Sent: 10, Lost: 3, Forged: 1}},
			GeneratedAt:   time.Unix(100, 0),
			DiskHeartbeat: &control.DiskHeartbeatStatus{OK: true, PeerLastSeen: time.Unix(98, 500e6)}}
	})
	m.ObserveResourceOp("vip", "start", 20*time.Millisecond, nil)
	m.ObserveResourceOp("vip", "stop", time.Second, errors.New("busy"))
	srv := httptest.NewServer(m.Handler())
	defer srv.Close()
	resp, err := srv.Client().Get(srv.URL + "/metrics")
	require.NoError(t, err)
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	out := string(b)
	for _, want := range []string{
		`tandem_node_state{node="a",state="active"} 1`,
		`tandem_node_state{node="a",state="standby"} 0`,
		`tandem_failovers_total 2`,
		`tandem_peer_alive{peer="b"} 1`,
		`tandem_link_rtt_seconds{link="hb"} 0.00025`,
		`tandem_heartbeats_lost_total{link="hb"} 3`,
		`tandem_heartbeats_dropped_total{link="hb",reason="forged"} 1`,
		`tandem_resource_operation_duration_seconds_count{op="stop",resource="vip",result="error"} 1`,
		`tandem_fenced{node="a"} 0`,
		`tandem_disk_heartbeat_ok 1`,
		`tandem_disk_heartbeat_age_seconds{peer="b"} 1.5`,
	} {
		assert.Contains(t, out, want)
	}
}

func TestHeartbeatTimingHistograms(t *testing.T) {
	m := New(func() control.Status { return control.Status{} })
	m.ObserveHeartbeatGap("dedicated", 200*time.Millisecond)
	m.ObserveHeartbeatGap("dedicated", 900*time.Millisecond)
	m.ObserveLateness(3 * time.Millisecond)
	fams, err := m.Registry().Gather()
	require.NoError(t, err)
	counts := map[string]uint64{}
	for _, f := range fams {
		for _, mt := range f.GetMetric() {
			if h := mt.GetHistogram(); h != nil {
				counts[f.GetName()] += h.GetSampleCount()
			}
		}
	}
	assert.Equal(t, uint64(2), counts["tandem_heartbeat_gap_seconds"])
	assert.Equal(t, uint64(1), counts["tandem_heartbeat_send_lateness_seconds"])
}
