package vm

import (
	"testing"

	"github.com/stretchr/testify/assert"
)

func TestWithLVM(t *testing.T) {
	o := WithLVM(ImageOptions{CacheDir: "c"})
	assert.Equal(t, append(append([]string(nil), DefaultModules...), LVMModules...), o.Modules, "nil Modules: the defaults plus LVM's")
	assert.Equal(t, append(append([]string(nil), DefaultHostBinaries...), LVMHostBinaries...), o.HostBinaries)
	assert.Equal(t, []File{{Path: LVMConfPath, Data: []byte(LVMConf), Mode: 0o644}}, o.Files)
	assert.Equal(t, "c", o.CacheDir)

	// The caller's lists are extended, never written through.
	mods := make([]string, 1, 8)
	mods[0] = "ext4"
	o = WithLVM(ImageOptions{Modules: mods})
	assert.Equal(t, append([]string{"ext4"}, LVMModules...), o.Modules)
	assert.Equal(t, "ext4", mods[:cap(mods)][0])
	assert.Empty(t, mods[:cap(mods)][1], "WithLVM wrote into the caller's backing array")
}
