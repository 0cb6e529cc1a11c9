package clock

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
)

func TestFake(t *testing.T) {
	start := time.Unix(1000, 0)
	f := NewFake(start)
	tk := f.NewTicker(time.Second)
	f.Advance(500 * time.Millisecond)
	assert.Empty(t, tk.C())
	f.Advance(3 * time.Second)
	assert.Equal(t, start.Add(time.Second), <-tk.C())
	assert.Empty(t, tk.C(), "missed ticks are dropped")
	assert.Equal(t, start.Add(3500*time.Millisecond), f.Now())
	tk.Stop()
	f.Advance(time.Hour)
	assert.Empty(t, tk.C())
}

func TestFakeTimeout(t *testing.T) {
	f := NewFake(time.Unix(0, 0))
	ctx, cancel := WithTimeout(context.Background(), f, time.Second)
	defer cancel()
	assert.Equal(t, 1, f.Timers())
	f.Advance(999 * time.Millisecond)
	assert.NoError(t, ctx.Err())
	f.Advance(time.Millisecond)
	<-ctx.Done()
	assert.ErrorIs(t, context.Cause(ctx), context.DeadlineExceeded)
	assert.Equal(t, 0, f.Timers())

	ctx2, cancel2 := WithTimeout(context.Background(), f, time.Second)
	cancel2()
	assert.ErrorIs(t, context.Cause(ctx2), context.Canceled)
	assert.Equal(t, 0, f.Timers(), "cancel stops the timer")
	f.Advance(time.Hour)
	assert.ErrorIs(t, context.Cause(ctx2), context.Canceled)
}
