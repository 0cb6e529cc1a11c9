package daemon

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/tandem-ha/tandem/target/admin"
	"github.com/tandem-ha/tandem/target/config"
	"github.com/tandem-ha/tandem/target/iscsi"
)

const iqn = "iqn.2024-01.test:disk"

func newManager(t *testing.T) (*Manager, *iscsi.Server, string) {
	t.Helper()
	dir := t.TempDir()
	srv := iscsi.NewServer(iscsi.Config{})
	m := NewManager(srv, nil)
	require.NoError(t, m.AddTarget(config.Target{Name: iqn, LUNs: []config.LUN{
		{ID: 0, Path: filepath.Join(dir, "lun0"), Size: 1 << 20, BlockSize: 512, WriteCache: true},
	}}))
	t.Cleanup(func() { _ = m.Close() })
	return m, srv, dir
}

func do(t *testing.T, h http.Handler, method, path, body string) (int, string) {
	t.Helper()
	req := httptest.NewRequest(method, path, strings.NewReader(body))
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	return rec.Code, rec.Body.String()
}

func TestAPI(t *testing.T) {
	m, srv, dir := newManager(t)
	h := admin.NewHandler(m, nil)

	code, body := do(t, h, "GET", "/v1/targets", "")
	require.Equal(t, http.StatusOK, code)
	var targets []admin.Target
	require.NoError(t, json.Unmarshal([]byte(body), &targets))
	require.Len(t, targets, 1)
	assert.Equal(t, iqn, targets[0].Name)
	require.Len(t, targets[0].LUNs, 1)
	assert.Equal(t, int64(1<<20), targets[0].LUNs[0].Size)

	lun1 := filepath.Join(dir, "lun1")
	code, body = do(t, h, "POST", "/v1/targets/"+iqn+"/luns/1", `{"path":"`+lun1+`","size":2097152}`)
	require.Equal(t, http.StatusCreated, code, body)
	code, _ = do(t, h, "POST", "/v1/targets/"+iqn+"/luns/1", `{"path":"`+lun1+`"}`)
	assert.Equal(t, http.StatusConflict, code)

	code, body = do(t, h, "POST", "/v1/targets/"+iqn+"/luns/1/resize", `{"size":4194304}`)
	require.Equal(t, http.StatusOK, code, body)
	fi, err := os.Stat(lun1)
	require.NoError(t, err)
	assert.Equal(t, int64(4<<20), fi.Size())
	code, _ = do(t, h, "POST", "/v1/targets/"+iqn+"/luns/1/resize", `{"size":1024}`)
	assert.Equal(t, http.StatusBadRequest, code, "shrinking is refused")

	_, body = do(t, h, "GET", "/v1/targets", "")
	require.NoError(t, json.Unmarshal([]byte(body), &targets))
	require.Len(t, targets[0].LUNs, 2)
	assert.Equal(t, int64(4<<20), targets[0].LUNs[1].Size)

	code, _ = do(t, h, "DELETE", "/v1/targets/"+iqn+"/luns/1", "")
	assert.Equal(t, http.StatusOK, code)
	code, _ = do(t, h, "DELETE", "/v1/targets/"+iqn+"/luns/1", "")
	assert.Equal(t, http.StatusNotFound, code)
	code, _ = do(t, h, "DELETE", "/v1/targets/nope/luns/0", "")
	assert.Equal(t, http.StatusNotFound, code)
	code, _ = do(t, h, "DELETE", "/v1/targets/"+iqn+"/luns/x", "")
	assert.Equal(t, http.StatusBadRequest, code)

	code, body = do(t, h, "PUT", "/v1/targets/"+iqn+"/chap", `{"user":"u","secret":"0123456789abcdef"}`)
	require.Equal(t, http.StatusOK, code, body)
	info, ok := srv.TargetInfo(iqn)
	require.True(t, ok)
	require.Len(t, info.Auth.Incoming, 1)
	assert.Equal(t, "u", info.Auth.Incoming[0].User)
	code, _ = do(t, h, "PUT", "/v1/targets/"+iqn+"/chap", `{"user":"u"}`)
	assert.Equal(t, http.StatusBadRequest, code)
	code, _ = do(t, h, "PUT", "/v1/targets/"+iqn+"/chap", `{"bogus":1}`)
	assert.Equal(t, http.StatusBadRequest, code)
}
