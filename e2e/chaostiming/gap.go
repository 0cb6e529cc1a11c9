// Package chaostiming is `make chaos-timing`: the partition lab at the
// agent's default timings (keepalive 200 ms, deadtime 1 s) with the active
// node's CPUs saturated by busy loops in its namespace, 10 % random loss
// on every link of both nodes (nftables numgen), bursts of 300 ms total
// loss on the dedicated link, and GOGC=10 in the agents; it counts
// failovers (must be 0) and reports the worst heartbeat gap from the
// agents' tandem_heartbeat_gap_seconds histograms.
package chaostiming

import (
	"fmt"
	"math"
	"strconv"
	"strings"
)

// WorstGap is the upper bound of the highest non-empty bucket of
// tandem_heartbeat_gap_seconds over all links in a Prometheus exposition
// (+Inf when a gap passed the last bucket), and the link it was seen on.
func WorstGap(exposition string) (float64, string, error) {
	// Cumulative counts per link and bound; a bucket is non-empty when its
	// count exceeds the one of the bound below it.
	type b struct{ le, n float64 }
	per := map[string][]b{}
	for _, line := range strings.Split(exposition, "\n") {
		if !strings.HasPrefix(line, "tandem_heartbeat_gap_seconds_bucket{") {
			continue
		}
		lbl, val, ok := strings.Cut(strings.TrimPrefix(line, "tandem_heartbeat_gap_seconds_bucket{"), "} ")
		if !ok {
			return 0, "", fmt.Errorf("histogram line %q: no value", line)
		}
		n, err := strconv.ParseFloat(strings.TrimSpace(val), 64)
		if err != nil {
			return 0, "", fmt.Errorf("histogram line %q: %w", line, err)
		}
		var link, le string
		for _, kv := range strings.Split(lbl, ",") {
			k, v, _ := strings.Cut(kv, "=")
			v = strings.Trim(v, `"`)
			switch k {
			case "link":
				link = v
			case "le":
				le = v
			}
		}
		bound, err := strconv.ParseFloat(le, 64)
		if err != nil {
			return 0, "", fmt.Errorf("histogram line %q: le: %w", line, err)
		}
		per[link] = append(per[link], b{bound, n})
	}
	if len(per) == 0 {
		return 0, "", fmt.Errorf("no tandem_heartbeat_gap_seconds in the exposition: is the agent's metrics_address on?")
	}
	worst, at := 0.0, ""
	for link, bs := range per {
		prev := 0.0
		for _, x := range bs { // exposition order: ascending le
			if x.n > prev && x.le > worst {
				worst, at = x.le, link
			}
			prev = x.n
		}
	}
	return worst, at, nil
}

// Inf reports whether a WorstGap bound is the +Inf bucket.
func Inf(v float64) bool { return math.IsInf(v, 1) }
