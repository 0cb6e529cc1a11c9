package mqres

import (
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/tandem-ha/tandem/mqres/internal/stub"
	"github.com/tandem-ha/tandem/mqres/mqrestest"
)

func TestMain(m *testing.M) { os.Exit(mqrestest.Run(m)) }

// node is one simulated machine: its own prefix (/var/mqm) and host name,
// sharing the lab's shared directory with its peer.
type node struct {
	t      *testing.T
	prefix string
	host   string
	run    ExecRunner
}

type lab struct {
	t      *testing.T
	bin    string // the stand-in's MQ commands
	qm     string
	shared string
	a, b   *node
}

func newLab(t *testing.T) *lab {
	t.Helper()
	root := t.TempDir()
	l := &lab{t: t, bin: mqrestest.Bin(t), qm: fmt.Sprintf("T%06d", rand.IntN(1000000)), shared: filepath.Join(root, "MQHA")}
	require.NoError(t, os.MkdirAll(l.shared, 0o755))
	mk := func(name string) *node {
		p := filepath.Join(root, name)
		return &node{t: t, prefix: p, host: name, run: ExecRunner{Dir: l.bin, Env: append(os.Environ(), "MQSTUB_PREFIX="+p, "MQSTUB_HOST="+name)}}
	}
	l.a, l.b = mk("a"), mk("b")
	t.Cleanup(func() {
		// Whatever a test left running dies with it.
		procs, _ := ProcFS{}.Find(l.qm)
		for _, p := range procs {
			ProcFS{}.Kill(p.PID)
		}
	})
	return l
}

// resource returns a Resource for the lab's queue manager on n.
func (l *lab) resource(n *node, mod func(*Config)) *Resource {
	cfg := DefaultConfig(l.qm)
	cfg.BinDir = l.bin
	cfg.User = ""
	cfg.Runner = n.run
	cfg.StartTimeout = 10 * time.Second
	cfg.StopTimeout = 10 * time.Second
	cfg.MonitorTimeout = 3 * time.Second
	cfg.PollInterval = 50 * time.Millisecond
	if mod != nil {
		mod(&cfg)
	}
	r, err := New(cfg)
	require.NoError(l.t, err)
	return r
}

// create runs crtmqm on node a with data and log on the shared directory.
func (l *lab) create() {
	_, err := l.resource(l.a, nil).Crtmqm(context.Background(), SetupFor(l.qm, l.shared))
	require.NoError(l.t, err)
}

func (n *node) faults(kv map[string]string) {
	require.NoError(n.t, stub.WriteFaults(n.prefix, kv))
}

// commands lists the MQ commands n ran (without dspmq polling).
func (n *node) commands() []string {
	var out []string
	for _, l := range stub.Invocations(n.prefix) {
		if !strings.HasPrefix(l, "dspmq") && !strings.HasPrefix(l, "amqz") {
			out = append(out, l)
		}
	}
	return out
}

func (n *node) cmd(name string, args ...string) string {
	res, err := n.run.Run(context.Background(), name, args...)
	require.NoError(n.t, err)
	return string(res.Stdout)
}

func ctx(t *testing.T) context.Context {
	c, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	return c
}
