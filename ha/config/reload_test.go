package config

import (
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
)

func TestReload(t *testing.T) {
	base := func() *Config {
		c := DefaultConfig()
		c.Nodes, c.Node, c.Peer, c.Key = []string{"a", "b"}, "a", "b", []byte("0123456789abcdef")
		return &c
	}
	tests := []struct {
		desc    string
		mod     func(c *Config)
		level   string
		restart []string
	}{
		{desc: "unchanged", mod: func(*Config) {}, level: "info"},
		{desc: "log level applies live", mod: func(c *Config) { c.Log.Level = "debug" }, level: "debug"},
		{desc: "log format needs a restart", mod: func(c *Config) { c.Log.Format = "json" }, level: "info", restart: []string{"log.format"}},
		{desc: "timings and metrics", mod: func(c *Config) {
			c.Timing.DeadTime = 9 * time.Second
			c.MetricsAddress = "off"
		}, level: "info", restart: []string{"timing", "metrics_address"}},
		{desc: "key content", mod: func(c *Config) { c.Key = []byte("another key 0123") }, level: "info", restart: []string{"key_file (its content)"}},
	}
	for _, tc := range tests {
		t.Run(tc.desc, func(t *testing.T) {
			f := base()
			tc.mod(f)
			level, restart := Reload(base(), f)
			assert.Equal(t, tc.level, level)
			assert.Equal(t, tc.restart, restart)
		})
	}
	assert.Contains(t, RestartAdvice([]string{"timing"}), "applied at the agent's next start: timing")
}
