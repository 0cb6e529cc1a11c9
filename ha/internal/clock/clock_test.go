package clock

import (
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
