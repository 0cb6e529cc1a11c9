package daemon

import (
	"encoding/json"
	"net/http"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/tandem-ha/tandem/target/audit"
	"github.com/tandem-ha/tandem/target/backstore"
	"github.com/tandem-ha/tandem/target/config"
	"github.com/tandem-ha/tandem/target/iscsi"
)

func TestLabAPI(t *testing.T) {
	dir := t.TempDir()
	m := NewManager(iscsi.NewServer(iscsi.Config{}), nil)
	auditPath := filepath.Join(dir, "lun1.audit")
	require.NoError(t, m.AddTarget(config.Target{Name: iqn, LUNs: []config.LUN{
		{ID: 0, Path: filepath.Join(dir, "lun0"), Size: 1 << 20, BlockSize: 512, WriteCache: true},
		{ID: 1, Path: filepath.Join(dir, "lun1"), Size: 1 << 20, BlockSize: 512, WriteCache: true,
			Cache: config.CacheVolatile, Audit: auditPath},
	}}))
	h := NewAPIHandler(m, nil)

	code, body := do(t, h, "GET", "/v1/targets", "")
	require.Equal(t, http.StatusOK, code, "the admin API is still served")
	assert.Contains(t, body, iqn)

	code, body = do(t, h, "POST", "/v1/targets/"+iqn+"/luns/1/power-cut", `{"mode":"tear","seed":3}`)
	require.Equal(t, http.StatusOK, code, body)
	var rep backstore.CutReport
	require.NoError(t, json.Unmarshal([]byte(body), &rep))
	assert.Equal(t, backstore.CutReport{}, rep, "nothing was written")
	code, body = do(t, h, "POST", "/v1/targets/"+iqn+"/luns/1/power-cut", "")
	assert.Equal(t, http.StatusOK, code, body)
	code, body = do(t, h, "POST", "/v1/targets/"+iqn+"/luns/1/power-cut", `{"mode":"melt"}`)
	assert.Equal(t, http.StatusBadRequest, code, body)
	code, body = do(t, h, "POST", "/v1/targets/"+iqn+"/luns/0/power-cut", "")
	assert.Equal(t, http.StatusConflict, code)
	assert.Contains(t, body, "set cache: volatile")
	code, _ = do(t, h, "POST", "/v1/targets/"+iqn+"/luns/7/power-cut", "")
	assert.Equal(t, http.StatusNotFound, code)

	code, body = do(t, h, "GET", "/v1/targets/"+iqn+"/luns/1/audit", "")
	require.Equal(t, http.StatusOK, code, body)
	var st AuditStatus
	require.NoError(t, json.Unmarshal([]byte(body), &st))
	assert.Equal(t, AuditStatus{Path: auditPath, Appended: 1}, st, "the start record")
	code, _ = do(t, h, "GET", "/v1/targets/"+iqn+"/luns/0/audit", "")
	assert.Equal(t, http.StatusConflict, code)

	require.NoError(t, m.Close())
	recs, torn, err := audit.ReadFile(auditPath)
	require.NoError(t, err)
	assert.False(t, torn)
	require.Len(t, recs, 1)
	assert.Equal(t, audit.KindStart, recs[0].Kind)
}
