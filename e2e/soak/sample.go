package soak

import (
	"bufio"
	"fmt"
	"strconv"
	"strings"
)

// Sample is one process's resources after one round.
type Sample struct {
	FDs     int
	RSSKiB  int
	Threads int
	// Goroutines from the process's metrics (go_goroutines); -1 when it
	// has none (tandem-target serves no metrics: its Threads stand in).
	Goroutines int
}

// ParseStatus reads VmRSS (KiB) and Threads from /proc/PID/status.
func ParseStatus(status string) (rssKiB, threads int, err error) {
	var haveRSS, haveThreads bool
	sc := bufio.NewScanner(strings.NewReader(status))
	for sc.Scan() {
		k, v, ok := strings.Cut(sc.Text(), ":")
		if !ok {
			continue
		}
		f := strings.Fields(v)
		if len(f) == 0 {
			continue
		}
		switch k {
		case "VmRSS":
			rssKiB, err = strconv.Atoi(f[0])
			haveRSS = err == nil
		case "Threads":
			threads, err = strconv.Atoi(f[0])
			haveThreads = err == nil
		}
		if err != nil {
			return 0, 0, fmt.Errorf("/proc status line %q: %w", sc.Text(), err)
		}
	}
	if !haveRSS || !haveThreads {
		return 0, 0, fmt.Errorf("/proc status without VmRSS or Threads: the process is a zombie or has exited")
	}
	return rssKiB, threads, nil
}

// MetricValue is the value of an unlabelled sample name in a Prometheus
// text exposition.
func MetricValue(exposition, name string) (float64, error) {
	for _, line := range strings.Split(exposition, "\n") {
		f := strings.Fields(line)
		if len(f) == 2 && f[0] == name {
			return strconv.ParseFloat(f[1], 64)
		}
	}
	return 0, fmt.Errorf("metric %s not in the exposition: is the agent's metrics_address on?", name)
}

// CheckKeys judges the registrations READ KEYS lists after a round: only
// the active node's key, exactly want registrations (its fence session and
// its writer's, one I_T nexus each). A key left behind by the other node
// is a fence that did not take; more registrations of the active's key are
// I_T nexuses piling up round after round.
func CheckKeys(keys []uint64, active uint64, want int) error {
	for _, k := range keys {
		if k != active {
			return fmt.Errorf("key %#x registered beside the active node's %#x (keys %#x): the fence did not remove it", k, active, keys)
		}
	}
	if len(keys) != want {
		return fmt.Errorf("%d registrations of the active node's key %#x, want %d (its fence and writer sessions): registrations pile up", len(keys), active, want)
	}
	return nil
}
