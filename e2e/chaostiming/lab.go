package chaostiming

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"time"

	"github.com/tandem-ha/tandem/e2e/partition"
	"github.com/tandem-ha/tandem/e2e/soak"
)

// Options of a run.
type Options struct {
	AgentBin, TargetBin, WriterBin string
	Duration                       time.Duration
	// Realtime false passes --no-realtime to the agents.
	Realtime bool
	// Burners is the number of busy loops in the active node (one per CPU).
	Burners int
	Log     io.Writer
}

// Result of a run.
type Result struct {
	Failovers uint64
	// Worst gap bound per node, and on which link.
	Worst [2]float64
	Link  [2]string
}

// Run runs the chaos for o.Duration and reads both agents' metrics.
func Run(o Options) (res Result, err error) {
	dir, err := os.MkdirTemp("", "chaos-timing-")
	if err != nil {
		return res, err
	}
	defer os.RemoveAll(dir)
	po := partition.Options{
		AgentBin: o.AgentBin, TargetBin: o.TargetBin, WriterBin: o.WriterBin, Dir: dir,
		Timing: partition.Timing{Keepalive: 200 * time.Millisecond, DeadTime: time.Second, InitDead: 10 * time.Second, Monitor: time.Second},
		Fence:  true, DiskHB: true, LogLevel: "warn",
		AgentEnv: []string{"GOGC=10"},
	}
	if !o.Realtime {
		po.AgentArgs = []string{"--no-realtime"}
	}
	l, err := partition.New(po)
	if err != nil {
		return res, err
	}
	defer l.Close()
	if err := l.StartTarget(); err != nil {
		return res, err
	}
	for i := range 2 {
		if err := l.StartAgent(i); err != nil {
			return res, err
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := l.WaitState(ctx, 0, "active"); err != nil {
		return res, err
	}
	if err := l.WaitState(ctx, 1, "standby"); err != nil {
		return res, err
	}
	// 10 % random loss on every link of both nodes, in and out.
	for i := range 2 {
		body := "  chain in { type filter hook input priority 0; policy accept; numgen random mod 10 == 0 drop; }\n" +
			"  chain out { type filter hook output priority 0; policy accept; numgen random mod 10 == 0 drop; }\n"
		if err := l.Net.SetTable(l.Node(i).Name, "inet", "chaos_loss", body); err != nil {
			return res, fmt.Errorf("loss rules on %s: %w", partition.Nodes[i], err)
		}
	}
	// The active node's CPUs saturated, at the applications' priority.
	for b := range o.Burners {
		if _, err := l.Node(0).Start(fmt.Sprintf("burn%d", b), 0, l.Path("burn.log"), "sh", "-c", "while :; do :; done"); err != nil {
			return res, err
		}
	}
	// Bursts of 300 ms total loss on the dedicated link, every 3 s.
	end := time.Now().Add(o.Duration)
	for time.Now().Before(end) {
		if err := l.Node(0).SetLinks(false, partition.DedicatedIf); err != nil {
			return res, err
		}
		time.Sleep(300 * time.Millisecond)
		if err := l.Node(0).SetLinks(true, partition.DedicatedIf); err != nil {
			return res, err
		}
		time.Sleep(min(2700*time.Millisecond, time.Until(end)))
	}
	for i := range 2 {
		exp, err := metrics(l, i)
		if err != nil {
			return res, err
		}
		f, err := soak.MetricValue(exp, "tandem_failovers_total")
		if err != nil {
			return res, err
		}
		res.Failovers += uint64(f)
		if res.Worst[i], res.Link[i], err = WorstGap(exp); err != nil {
			return res, err
		}
	}
	return res, nil
}

func metrics(l *partition.Lab, i int) (string, error) {
	n := l.Node(i)
	c := http.Client{Timeout: 3 * time.Second, Transport: &http.Transport{DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
		return n.DialContext(ctx, network, addr)
	}}}
	resp, err := c.Get("http://127.0.0.1:9464/metrics")
	if err != nil {
		return "", fmt.Errorf("metrics of %s: %w", partition.Nodes[i], err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return string(b), err
}
