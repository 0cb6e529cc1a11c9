package benchpeers

import (
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestMedian(t *testing.T) {
	for _, tc := range []struct {
		desc string
		in   []float64
		want float64
	}{
		{"none", nil, 0},
		{"odd", []float64{3, 1, 2}, 2},
		{"even", []float64{4, 1, 3, 2}, 2.5},
	} {
		t.Run(tc.desc, func(t *testing.T) { assert.Equal(t, tc.want, Median(tc.in)) })
	}
}

func TestSummarizeLeavesStalledRunsOut(t *testing.T) {
	rows := Summarize([]string{"r"}, []Sample{
		{Peer: "gotgt", Pattern: "r", IOPS: 100, CPUPerIO: 10 * time.Microsecond},
		{Peer: "gotgt", Pattern: "r", Stalled: true},
		{Peer: "gotgt", Pattern: "r", IOPS: 300, CPUPerIO: 30 * time.Microsecond},
		{Peer: "tandem", Pattern: "r", IOPS: 1000},
		{Peer: "tgt", Pattern: "r", Failed: true},
	})
	require.Len(t, rows, 1)
	g := rows[0].Cells["gotgt"]
	assert.Equal(t, Cell{IOPS: 200, CPUPerIO: 20 * time.Microsecond, Runs: 2, Stalled: 1}, g)
	assert.Equal(t, 1, rows[0].Cells["tandem"].Runs)
	assert.Equal(t, Cell{Failed: 1}, rows[0].Cells["tgt"])
	assert.Equal(t, "no run (1 failed)", cellValue(rows[0].Cells["tgt"], false))
}

func TestStallWatch(t *testing.T) {
	t0 := time.Unix(0, 0)
	w := StallWatch{Limit: 10 * time.Second, MinStep: 1000}
	assert.False(t, w.Observe(t0, 5000))
	assert.False(t, w.Observe(t0.Add(9*time.Second), 5000), "not yet the limit")
	assert.False(t, w.Observe(t0.Add(12*time.Second), 6000), "progress resets the watch")
	assert.False(t, w.Observe(t0.Add(15*time.Second), 6100), "a keep-alive is no progress")
	assert.False(t, w.Observe(t0.Add(21*time.Second), 6200))
	assert.True(t, w.Observe(t0.Add(22*time.Second), 6300), "10 s without progress is a stall")
}

func TestParseQemuBench(t *testing.T) {
	d, err := ParseQemuBench("Sending 1000 requests...\nRun completed in 2.500 seconds.\n")
	require.NoError(t, err)
	assert.Equal(t, 2500*time.Millisecond, d)
	_, err = ParseQemuBench("qemu-img: Could not open 'iscsi://x': connection refused\n")
	require.ErrorContains(t, err, "connection refused")
}

func TestTable(t *testing.T) {
	rows := []Row{
		{Pattern: "4k", Cells: map[string]Cell{
			"tandem": {IOPS: 100000, CPUPerIO: 9 * time.Microsecond, Runs: 3},
			"tgt":    {IOPS: 50000, CPUPerIO: 20 * time.Microsecond, Runs: 3},
			"gotgt":  {Runs: 0, Stalled: 3},
		}},
		{Pattern: "1m", Cells: map[string]Cell{
			"tandem": {MiBps: 1500, Runs: 3},
			"tgt":    {MiBps: 1000, Runs: 2, Stalled: 1},
			"gotgt":  {MiBps: 750, Runs: 3},
		}},
	}
	out := Table(rows, []string{"tandem", "tgt", "gotgt"}, "tandem", map[string]bool{"1m": true},
		Meta{Date: time.Date(2026, 12, 6, 0, 0, 0, 0, time.UTC), Machine: "2 cores", Reps: 3, Command: "make bench-peers"})
	assert.Contains(t, out, "| pattern | tandem | tgt | gotgt | tandem / tgt | tandem / gotgt | CPU/IO tandem | CPU/IO tgt | CPU/IO gotgt |\n|---|---|---|---|---|---|---|---|---|\n")
	assert.Contains(t, out, "| 4k | 100.0k | 50.0k | no run (3 stalled) | 2.00x | - | 9.0 us | 20.0 us | - |")
	assert.Contains(t, out, "| 1m | 1500 MiB/s | 1000 MiB/s (1 stalled) | 750 MiB/s | 1.50x | 2.00x | - | - | - |")
	assert.Contains(t, out, "`make bench-peers` on 2 cores, 2026-12-06")
}
