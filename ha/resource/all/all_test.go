package all

import (
	"testing"

	"github.com/stretchr/testify/assert"

	"github.com/tandem-ha/tandem/ha/resource"
)

func TestAllRegistered(t *testing.T) {
	assert.Equal(t, []string{"fence", "filesystem", "iscsi", "lsb", "mq", "script", "vip"}, resource.Types())
}
