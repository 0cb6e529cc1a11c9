package agent

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/tandem-ha/tandem/ha/internal/clock"
	"github.com/tandem-ha/tandem/ha/resource"
)

// opLog records the operations of recRes resources in order.
type opLog struct {
	mu  sync.Mutex
	ops []string
}

func (l *opLog) add(s string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.ops = append(l.ops, s)
}

func (l *opLog) get() []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]string(nil), l.ops...)
}

// recRes is a Forcer whose Stop fails the first failStops times, or hangs
// until its context ends while hang is set (then clears hang).
type recRes struct {
	name      string
	log       *opLog
	failStops int
	hang      bool
}

func (r *recRes) Name() string { return r.name }
func (r *recRes) Start(context.Context) error {
	r.log.add("start " + r.name)
	return nil
}
func (r *recRes) Stop(ctx context.Context) error {
	r.log.add("stop " + r.name)
	if r.hang {
		r.hang = false
		<-ctx.Done()
		return nil // the runtime reports the expired context
	}
	if r.failStops > 0 {
		r.failStops--
		return errors.New("device busy")
	}
	return nil
}
func (r *recRes) ForceStop(context.Context) error {
	r.log.add("force " + r.name)
	return nil
}
func (r *recRes) Monitor(context.Context) (resource.Status, error) {
	return resource.StatusRunning, nil
}

func releaseGroup(l *opLog, svc *recRes) []resource.Resource {
	return []resource.Resource{&recRes{name: "vip", log: l}, svc}
}

func TestReleaseStopsInReverseOrder(t *testing.T) {
	l := &opLog{}
	fenced := 0
	err := Release(testConfig(0), ReleaseOptions{Resources: releaseGroup(l, &recRes{name: "svc", log: l}),
		Fence: func(string) { fenced++ }, Clock: clock.NewFake(time.Unix(0, 0)), Log: logger(t)})
	require.NoError(t, err)
	assert.Equal(t, []string{"stop svc", "stop vip"}, l.get())
	assert.Zero(t, fenced)
}

func TestReleaseForcesAFailedStop(t *testing.T) {
	l := &opLog{}
	fenced := 0
	err := Release(testConfig(0), ReleaseOptions{Resources: releaseGroup(l, &recRes{name: "svc", log: l, failStops: 1}),
		Fence: func(string) { fenced++ }, Clock: clock.NewFake(time.Unix(0, 0)), Log: logger(t)})
	require.NoError(t, err)
	assert.Equal(t, []string{"stop svc", "force svc", "stop svc", "stop vip"}, l.get())
	assert.Zero(t, fenced)
}

func TestReleaseFencesWhenStopFailsAfterForce(t *testing.T) {
	l := &opLog{}
	var reasons []string
	err := Release(testConfig(0), ReleaseOptions{Resources: releaseGroup(l, &recRes{name: "svc", log: l, failStops: 2}),
		Fence: func(r string) { reasons = append(reasons, r) }, Clock: clock.NewFake(time.Unix(0, 0)), Log: logger(t)})
	require.ErrorIs(t, err, ErrNotReleased)
	assert.Equal(t, []string{"stop svc", "force svc", "stop svc"}, l.get(), "nothing after the fence decision")
	require.Len(t, reasons, 1)
	assert.Contains(t, reasons[0], "svc")
}

// A stop that hangs ends at its StopTimeout on the injected clock, then
// escalates like a failed one.
func TestReleaseTimesOutAHangingStopOnTheClock(t *testing.T) {
	l := &opLog{}
	clk := clock.NewFake(time.Unix(0, 0))
	cfg := testConfig(0)
	done := make(chan error, 1)
	go func() {
		done <- Release(cfg, ReleaseOptions{Resources: releaseGroup(l, &recRes{name: "svc", log: l, hang: true}),
			Fence: func(string) { t.Error("fenced") }, Clock: clk, Log: logger(t)})
	}()
	require.Eventually(t, func() bool { return clk.Timers() == 1 }, 10*time.Second, time.Millisecond, "stop armed its timeout")
	clk.Advance(cfg.Resources[1].StopTimeout - time.Millisecond)
	assert.Empty(t, done, "still within the stop timeout")
	assert.Equal(t, []string{"stop svc"}, l.get())
	clk.Advance(time.Millisecond)
	require.NoError(t, <-done)
	assert.Equal(t, []string{"stop svc", "force svc", "stop svc", "stop vip"}, l.get())
}
