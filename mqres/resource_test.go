package mqres

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/tandem-ha/tandem/mqres/internal/stub"
)

func requireState(t *testing.T, r *Resource, want State) {
	t.Helper()
	got, err := r.Monitor(ctx(t))
	require.NoError(t, err)
	require.Equal(t, want, got)
}

func TestStartStop(t *testing.T) {
	l := newLab(t)
	l.create()
	r := l.resource(l.a, nil)
	requireState(t, r, StateStopped)

	require.NoError(t, r.Start(ctx(t)))
	requireState(t, r, StateRunning)
	procs, err := ProcFS{}.Find(l.qm)
	require.NoError(t, err)
	assert.Len(t, procs, 2, "amqzxma0 and amqzmuc0")

	require.NoError(t, r.Start(ctx(t)), "start of a running queue manager succeeds")
	require.NoError(t, r.Stop(ctx(t)))
	requireState(t, r, StateStopped)
	st, err := r.Status(ctx(t))
	require.NoError(t, err)
	assert.Equal(t, QMEndedImmediately, st)
	procs, _ = ProcFS{}.Find(l.qm)
	assert.Empty(t, procs)

	require.NoError(t, r.Stop(ctx(t)), "stop of a stopped queue manager succeeds")
	assert.Equal(t, []string{"crtmqm -md " + l.shared + "/qmgrs -ld " + l.shared + "/log " + l.qm,
		"strmqm " + l.qm, "endmqm -i " + l.qm}, l.a.commands())
}

func TestStopNeverStarted(t *testing.T) {
	l := newLab(t)
	l.create()
	require.NoError(t, l.resource(l.a, nil).Stop(ctx(t)))
	assert.NotContains(t, strings.Join(l.a.commands(), "\n"), "endmqm")
}

func TestSlowStart(t *testing.T) {
	l := newLab(t)
	l.create()
	l.a.faults(map[string]string{"slow_start": "1s"})
	r := l.resource(l.a, nil)
	begin := time.Now()
	require.NoError(t, r.Start(ctx(t)))
	assert.GreaterOrEqual(t, time.Since(begin), time.Second, "waited through STARTING")
	requireState(t, r, StateRunning)
	require.NoError(t, r.Stop(ctx(t)))
}

func TestSlowStartTimeout(t *testing.T) {
	l := newLab(t)
	l.create()
	l.a.faults(map[string]string{"slow_start": "5s"})
	r := l.resource(l.a, func(c *Config) { c.StartTimeout = 700 * time.Millisecond })
	err := r.Start(ctx(t))
	require.Error(t, err)
	assert.Contains(t, err.Error(), "STARTING")
	// STARTING counts as running for the monitor: the agent will stop it.
	requireState(t, r, StateRunning)
	require.NoError(t, r.Stop(ctx(t)))
	requireState(t, r, StateStopped)
}

func TestHungDspmq(t *testing.T) {
	l := newLab(t)
	l.create()
	r := l.resource(l.a, func(c *Config) { c.MonitorTimeout = 300 * time.Millisecond })
	require.NoError(t, r.Start(ctx(t)))
	l.a.faults(map[string]string{"hang": "dspmq"})
	begin := time.Now()
	st, err := r.Monitor(ctx(t))
	require.ErrorIs(t, err, context.DeadlineExceeded)
	assert.Equal(t, StateFailed, st)
	assert.Less(t, time.Since(begin), 3*time.Second, "the monitor must not hang with dspmq")
	l.a.faults(nil)
	require.NoError(t, r.Stop(ctx(t)))
}

func TestEndImmediateNeverEnds(t *testing.T) {
	for _, refuse := range []string{"i", "i,p"} {
		t.Run(refuse, func(t *testing.T) {
			l := newLab(t)
			l.create()
			r := l.resource(l.a, func(c *Config) { c.EndTimeout = 500 * time.Millisecond })
			require.NoError(t, r.Start(ctx(t)))
			l.a.faults(map[string]string{"refuse_end": refuse})
			require.NoError(t, r.Stop(ctx(t)))
			cmds := l.a.commands()
			assert.Equal(t, []string{"endmqm -i " + l.qm, "endmqm -p " + l.qm}, cmds[len(cmds)-2:])
			procs, _ := ProcFS{}.Find(l.qm)
			assert.Empty(t, procs)
			requireState(t, r, StateStopped)
			st, _ := r.Status(ctx(t))
			if refuse == "i" {
				assert.Equal(t, QMEndedPreemptively, st)
			} else {
				assert.Equal(t, QMEndedUnexpectedly, st, "killed")
			}
			// And it starts again after the kill.
			l.a.faults(nil)
			require.NoError(t, r.Start(ctx(t)))
			require.NoError(t, r.Stop(ctx(t)))
		})
	}
}

func TestCrashThenRestart(t *testing.T) {
	l := newLab(t)
	l.create()
	r := l.resource(l.a, nil)
	l.a.faults(map[string]string{"crash_after": "200ms"})
	require.NoError(t, r.Start(ctx(t)))
	require.Eventually(t, func() bool {
		st, err := r.Status(ctx(t))
		return err == nil && st == QMEndedUnexpectedly
	}, 5*time.Second, 50*time.Millisecond)
	l.a.faults(nil)
	require.Eventually(t, func() bool {
		s, err := r.Monitor(ctx(t))
		return err == nil && s == StateStopped
	}, 5*time.Second, 50*time.Millisecond, "no leftovers once amqzmuc0 followed its parent")
	require.NoError(t, r.Start(ctx(t)))
	requireState(t, r, StateRunning)
	require.NoError(t, r.Stop(ctx(t)))
}

func TestLocalDiskRefused(t *testing.T) {
	l := newLab(t)
	// The classic mistake: crtmqm without -md/-ld puts the queue manager
	// under this node's /var/mqm.
	_, err := l.resource(l.a, nil).Crtmqm(ctx(t), Setup{QMgr: l.qm, DataDir: filepath.Join(l.a.prefix, "qmgrs"), LogDir: filepath.Join(l.a.prefix, "log")})
	require.NoError(t, err)
	r := l.resource(l.a, func(c *Config) {
		c.SharedMount = l.shared
		c.IsMount = func(string) (bool, error) { return true, nil }
	})
	err = r.Start(ctx(t))
	require.Error(t, err)
	assert.Contains(t, err.Error(), "created on local disk")
	assert.Contains(t, err.Error(), "crtmqm -md "+l.shared+"/qmgrs -ld "+l.shared+"/log")
	assert.NotContains(t, strings.Join(l.a.commands(), "\n"), "strmqm", "refused before strmqm")
}

func TestSharedCheck(t *testing.T) {
	l := newLab(t)
	l.create()
	mounted := false
	r := l.resource(l.a, func(c *Config) {
		c.SharedMount = l.shared
		c.IsMount = func(p string) (bool, error) { return mounted && p == l.shared, nil }
	})
	err := r.Start(ctx(t))
	require.Error(t, err)
	assert.Contains(t, err.Error(), "is not mounted")

	mounted = true
	p, err := r.QMPaths(ctx(t))
	require.NoError(t, err)
	assert.Equal(t, Paths{Data: filepath.Join(l.shared, "qmgrs", l.qm), Log: filepath.Join(l.shared, "log", l.qm) + "/"}, p)
	require.NoError(t, r.Start(ctx(t)))
	require.NoError(t, r.Stop(ctx(t)))
}

// TestPairSetup follows the documented two-node set-up: crtmqm -md -ld on the
// first node, the addmqinf line from dspmqinf -o command on the second; then
// the queue manager moves between the nodes through the shared directory.
func TestPairSetup(t *testing.T) {
	l := newLab(t)
	l.create()
	ra, rb := l.resource(l.a, nil), l.resource(l.b, nil)
	line, err := ra.AddmqinfLine(ctx(t))
	require.NoError(t, err)
	assert.Contains(t, line, "DataPath="+filepath.Join(l.shared, "qmgrs", l.qm))
	require.NoError(t, rb.Addmqinf(ctx(t), line))

	require.NoError(t, ra.Start(ctx(t)))
	put(t, l.a, "Q", "m1")
	st, err := rb.Status(ctx(t))
	require.NoError(t, err)
	assert.Equal(t, QMRunningElsewhere, st)
	requireState(t, rb, StateStopped)
	err = rb.Start(ctx(t))
	require.Error(t, err, "a second node must not start an active queue manager")
	assert.Contains(t, err.Error(), "active on another node")

	require.NoError(t, ra.Stop(ctx(t)))
	require.NoError(t, rb.Start(ctx(t)))
	requireState(t, rb, StateRunning)
	requireState(t, ra, StateStopped)
	assert.Equal(t, []string{"m1"}, drain(t, l.b, "Q"))
	require.NoError(t, rb.Stop(ctx(t)))
}

func put(t *testing.T, n *node, q string, msgs ...string) {
	t.Helper()
	out := n.cmd("mqstub", append([]string{"put", qmOf(n), q}, msgs...)...)
	require.Equal(t, len(msgs), strings.Count(out, "acked"), out)
}

func drain(t *testing.T, n *node, q string) []string {
	t.Helper()
	c, err := stub.Dial(n.prefix, qmOf(n))
	require.NoError(t, err)
	defer c.Close()
	var out []string
	for {
		m, err := c.Get(q)
		if errors.Is(err, stub.ErrNoMessage) {
			return out
		}
		require.NoError(t, err)
		out = append(out, string(m))
	}
}

// qmOf finds the lab queue manager through the node's mqs.ini.
func qmOf(n *node) string {
	b, _ := os.ReadFile(filepath.Join(n.prefix, "mqs.ini"))
	for _, l := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(strings.TrimSpace(l), "Name="); ok {
			return v
		}
	}
	return ""
}

// TestPersistentQueueSurvivesKill9 puts messages from several clients, kills
// the queue manager with SIGKILL mid-stream, restarts it and checks that
// every acknowledged message is still there, once.
func TestPersistentQueueSurvivesKill9(t *testing.T) {
	l := newLab(t)
	l.create()
	r := l.resource(l.a, nil)
	require.NoError(t, r.Start(ctx(t)))

	var mu sync.Mutex
	acked := map[string]bool{}
	var wg sync.WaitGroup
	for w := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c, err := stub.Dial(l.a.prefix, l.qm)
			if err != nil {
				return
			}
			defer c.Close()
			for i := 0; ; i++ {
				m := fmt.Sprintf("w%d-%d", w, i)
				if c.Put("ORDERS", []byte(m)) != nil {
					return // the queue manager died: unacknowledged
				}
				mu.Lock()
				acked[m] = true
				mu.Unlock()
			}
		}()
	}
	require.Eventually(t, func() bool { mu.Lock(); defer mu.Unlock(); return len(acked) >= 50 }, 10*time.Second, 10*time.Millisecond)
	procs, err := ProcFS{}.Find(l.qm)
	require.NoError(t, err)
	for _, p := range procs {
		if p.Name == "amqzxma0" {
			require.NoError(t, syscall.Kill(p.PID, syscall.SIGKILL))
		}
	}
	wg.Wait()
	require.NotEmpty(t, acked)

	require.NoError(t, r.Start(ctx(t)), "restart after the crash")
	got := drain(t, l.a, "ORDERS")
	seen := map[string]int{}
	for _, m := range got {
		seen[m]++
	}
	for m := range acked {
		assert.Equal(t, 1, seen[m], "acknowledged message %s", m)
	}
	for m, n := range seen {
		assert.Equal(t, 1, n, "duplicate %s", m)
	}
	t.Logf("%d acknowledged, %d recovered", len(acked), len(got))
	require.NoError(t, r.Stop(ctx(t)))
}
