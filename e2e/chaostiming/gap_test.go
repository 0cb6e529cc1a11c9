package chaostiming

import (
	"math"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

const exp = `# TYPE tandem_heartbeat_gap_seconds histogram
tandem_heartbeat_gap_seconds_bucket{link="dedicated",le="0.1"} 0
tandem_heartbeat_gap_seconds_bucket{link="dedicated",le="0.25"} 90
tandem_heartbeat_gap_seconds_bucket{link="dedicated",le="0.5"} 99
tandem_heartbeat_gap_seconds_bucket{link="dedicated",le="+Inf"} 99
tandem_heartbeat_gap_seconds_bucket{link="public",le="0.1"} 0
tandem_heartbeat_gap_seconds_bucket{link="public",le="0.25"} 97
tandem_heartbeat_gap_seconds_bucket{link="public",le="0.5"} 97
tandem_heartbeat_gap_seconds_bucket{link="public",le="+Inf"} 97
`

func TestWorstGap(t *testing.T) {
	w, link, err := WorstGap(exp)
	require.NoError(t, err)
	assert.Equal(t, 0.5, w)
	assert.Equal(t, "dedicated", link)
	// A gap past the last bucket is +Inf, never hidden.
	w, _, err = WorstGap(exp + `tandem_heartbeat_gap_seconds_bucket{link="x",le="5"} 1` + "\n" + `tandem_heartbeat_gap_seconds_bucket{link="x",le="+Inf"} 2` + "\n")
	require.NoError(t, err)
	assert.True(t, math.IsInf(w, 1))
	_, _, err = WorstGap("go_goroutines 3\n")
	assert.Error(t, err)
}
