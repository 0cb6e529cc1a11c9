package mqres

import (
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/tandem-ha/tandem/mqres/internal/stub"
)

// stubBin is the directory holding the stand-in's multi-call links.
var stubBin string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "mqstub-bin-")
	if err != nil {
		panic(err)
	}
	code := func() int {
		defer os.RemoveAll(dir)
		out, err := exec.Command("go", "build", "-o", filepath.Join(dir, "mqstub"), "github.com/tandem-ha/tandem/mqres/cmd/mqstub").CombinedOutput()
		if err != nil {
			fmt.Fprintf(os.Stderr, "build mqstub: %v\n%s", err, out)
			return 1
		}
		if out, err := exec.Command(filepath.Join(dir, "mqstub"), "install", dir).CombinedOutput(); err != nil {
			fmt.Fprintf(os.Stderr, "install mqstub: %v\n%s", err, out)
			return 1
		}
		stubBin = dir
		return m.Run()
	}()
	os.Exit(code)
}

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
	qm     string
	shared string
	a, b   *node
}

func newLab(t *testing.T) *lab {
	t.Helper()
	root := t.TempDir()
	l := &lab{t: t, qm: fmt.Sprintf("T%06d", rand.IntN(1000000)), shared: filepath.Join(root, "MQHA")}
	require.NoError(t, os.MkdirAll(l.shared, 0o755))
	mk := func(name string) *node {
		p := filepath.Join(root, name)
		return &node{t: t, prefix: p, host: name, run: ExecRunner{Dir: stubBin, Env: append(os.Environ(), "MQSTUB_PREFIX="+p, "MQSTUB_HOST="+name)}}
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
	cfg.BinDir = stubBin
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
