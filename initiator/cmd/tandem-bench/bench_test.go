package main

import (
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestParseTarget(t *testing.T) {
	p, n, l, err := parseTarget("iscsi://127.0.0.1:3261/iqn.2025-01.io.tandem:d/3", "", 0, false)
	require.NoError(t, err)
	assert.Equal(t, []any{"127.0.0.1:3261", "iqn.2025-01.io.tandem:d", uint64(3)}, []any{p, n, l})

	p, n, l, err = parseTarget("10.0.0.1", "iqn.x", 2, true)
	require.NoError(t, err)
	assert.Equal(t, []any{"10.0.0.1", "iqn.x", uint64(2)}, []any{p, n, l})

	_, _, _, err = parseTarget("10.0.0.1", "", 0, false)
	assert.Error(t, err)
	_, _, _, err = parseTarget("iscsi:///x/0", "", 0, false)
	assert.Error(t, err)
	_, _, _, err = parseTarget("iscsi://h/iqn.x/1", "", 2, true)
	assert.Error(t, err)
}

func TestSummarize(t *testing.T) {
	r := summarize(Spec{Name: "randread", Size: 4096, Depth: 32}, 1000, 2*time.Second)
	assert.InDelta(t, 500, r.IOPS, 1e-9)
	assert.InDelta(t, 500*4096.0/(1<<20), r.MiBps, 1e-9)
	assert.InDelta(t, 32*2.0/1000*1e6, r.AvgLatency, 1e-6)
}
