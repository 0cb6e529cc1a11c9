package daemon

import (
	"context"
	"net/http"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestReloadRefusesAnInvalidFile(t *testing.T) {
	f, err := start(t, oneLUN, Options{})
	require.NoError(t, err)
	good, err := os.ReadFile(f.cfgPath)
	require.NoError(t, err)

	bad := writeConfig(t, f.dir, "targets:\n  - name: "+iqn+"\n    luns: [{id: 0, path: "+f.dir+"/lun0, size: 1MiB, serial: \"a b\"}]\n")
	require.Equal(t, f.cfgPath, bad)
	err = f.m.Reload(context.Background())
	require.Error(t, err)
	assert.ErrorContains(t, err, "nothing changed")
	assert.ErrorContains(t, err, "targets[0].luns[0].serial")
	require.Len(t, f.m.Targets(), 1, "still served")
	assert.Len(t, f.m.Targets()[0].LUNs, 1)

	restart := writeConfig(t, f.dir, oneLUN)
	require.NoError(t, os.WriteFile(restart, []byte("listen: [\"127.0.0.1:3261\"]\nstate_dir: state\nadmin_socket: a.sock\ntargets:\n  - name: "+iqn+"\n    luns: [{id: 0, path: "+f.dir+"/lun0, size: 1MiB}]\n"), 0o644))
	err = f.m.Reload(context.Background())
	require.Error(t, err)
	assert.ErrorContains(t, err, "listen changed")

	// Negative control: a valid edit is served, with the change logged.
	require.NoError(t, os.WriteFile(f.cfgPath, good, 0o644))
	lun1 := filepath.Join(f.dir, "lun1")
	require.NoError(t, os.WriteFile(f.cfgPath, append(good, []byte("    alias: edited\n")...), 0o644))
	require.NoError(t, f.m.Reload(context.Background()))
	assert.Equal(t, "edited", f.m.Targets()[0].Alias)
	assert.Contains(t, f.log.String(), "alias= -> alias=edited")

	// After a reload, the API writes again.
	code, body := do(t, f.h, "POST", "/v1/targets/"+iqn+"/luns/1", `{"path":"`+lun1+`","size":1048576}`)
	assert.Equal(t, http.StatusCreated, code, body)
}
