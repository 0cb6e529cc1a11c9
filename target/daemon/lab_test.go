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

func TestLabFaultsAPI(t *testing.T) {
	dir := t.TempDir()
	m := NewManager(iscsi.NewServer(iscsi.Config{}), nil)
	require.NoError(t, m.AddTarget(config.Target{Name: iqn, LUNs: []config.LUN{
		{ID: 0, Path: filepath.Join(dir, "lun0"), Size: 1 << 20, BlockSize: 512, WriteCache: true},
		{ID: 2, Path: filepath.Join(dir, "lun2"), Size: 1 << 20, BlockSize: 512, WriteCache: true, Thin: true, Faults: true},
	}}))
	t.Cleanup(func() { _ = m.Close() })
	h := NewAPIHandler(m, nil)
	url := "/v1/targets/" + iqn + "/luns/2/faults"

	code, body := do(t, h, "GET", url, "")
	require.Equal(t, http.StatusOK, code, body)
	var st FaultStatus
	require.NoError(t, json.Unmarshal([]byte(body), &st))
	assert.Empty(t, st.Faults, "a faulty LUN starts healthy")

	code, body = do(t, h, "PUT", url, `{"faults":[{"op":"read","off":4096,"len":512,"err":"eio"},{"op":"write","delay":"2s"}]}`)
	require.Equal(t, http.StatusOK, code, body)
	require.NoError(t, json.Unmarshal([]byte(body), &st))
	assert.Equal(t, []FaultSpec{{Op: "read", Off: 4096, Len: 512, Err: "eio"}, {Op: "write", Delay: "2s"}}, st.Faults)
	l, err := m.lun(iqn, 2)
	require.NoError(t, err)
	_, err = l.be.ReadAt(make([]byte, 512), 4096)
	assert.Error(t, err, "the fault reaches the LU's backend")

	for _, bad := range []string{
		`{"faults":[{"op":"read","err":"enospc"}]}`,
		`{"faults":[{"delay":"soon"}]}`,
		`{"faults":[{"op":"trim","err":"eio"}]}`,
		`{"fault":[]}`,
	} {
		code, body = do(t, h, "PUT", url, bad)
		assert.Equal(t, http.StatusBadRequest, code, "%s: %s", bad, body)
	}
	code, body = do(t, h, "GET", url, "")
	require.Equal(t, http.StatusOK, code)
	require.NoError(t, json.Unmarshal([]byte(body), &st))
	assert.Len(t, st.Faults, 2, "a refused PUT changes nothing")

	code, body = do(t, h, "PUT", "/v1/targets/"+iqn+"/luns/0/faults", `{"faults":[]}`)
	assert.Equal(t, http.StatusConflict, code)
	assert.Contains(t, body, "set faults: true")
	code, body = do(t, h, "GET", "/v1/targets/"+iqn+"/luns/0/faults", "")
	assert.Equal(t, http.StatusOK, code, "every LUN has counters")
	assert.Contains(t, body, `"read_errors": 0`)

	code, _ = do(t, h, "PUT", url, `{"faults":[]}`)
	require.Equal(t, http.StatusOK, code)
	_, err = l.be.ReadAt(make([]byte, 512), 4096)
	assert.NoError(t, err, "healed")
}
