package soak

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestParseStatus(t *testing.T) {
	rss, thr, err := ParseStatus("Name:\ttandem-agent\nVmRSS:\t   21344 kB\nThreads:\t9\n")
	require.NoError(t, err)
	assert.Equal(t, 21344, rss)
	assert.Equal(t, 9, thr)
	_, _, err = ParseStatus("Name:\tzombie\nState:\tZ (zombie)\nThreads:\t1\n")
	assert.ErrorContains(t, err, "without VmRSS")
}

func TestMetricValue(t *testing.T) {
	exp := "# HELP go_goroutines x\n# TYPE go_goroutines gauge\ngo_goroutines 42\ngo_threads 9\n"
	v, err := MetricValue(exp, "go_goroutines")
	require.NoError(t, err)
	assert.Equal(t, 42.0, v)
	_, err = MetricValue(exp, "process_open_fds")
	assert.Error(t, err)
}

func TestCheckKeys(t *testing.T) {
	const a, b = 0xa, 0xb
	assert.NoError(t, CheckKeys([]uint64{a, a}, a, 2))
	assert.ErrorContains(t, CheckKeys([]uint64{a, b}, a, 2), "did not remove")
	assert.ErrorContains(t, CheckKeys([]uint64{a, a, a}, a, 2), "pile up")
	assert.ErrorContains(t, CheckKeys(nil, a, 2), "pile up")
}
