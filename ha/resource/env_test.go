package resource

import (
	"context"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestEnvExpand(t *testing.T) {
	e := NewEnv()
	ctx := WithEnv(context.Background(), e)
	assert.Same(t, e, EnvFrom(ctx))
	assert.NotNil(t, EnvFrom(context.Background()), "process-wide fallback")

	s, err := Expand(ctx, "/dev/plain")
	require.NoError(t, err)
	assert.Equal(t, "/dev/plain", s)

	_, err = Expand(ctx, "${disk.device}")
	assert.ErrorContains(t, err, `${disk.device} is not set: list resource "disk" before this one`)

	e.Set("disk.device", "/dev/sda")
	s, err = Expand(ctx, "${disk.device}")
	require.NoError(t, err)
	assert.Equal(t, "/dev/sda", s)
	assert.Equal(t, []string{"disk.device", "x"}, References("${disk.device} ${x} $y"))
	e.Delete("disk.device")
	assert.Empty(t, e.Keys())
}
