package daemon

import (
	"bytes"
	"context"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/tandem-ha/tandem/lvm"
	"github.com/tandem-ha/tandem/lvm/lvmtest"
	"github.com/tandem-ha/tandem/target/config"
	"github.com/tandem-ha/tandem/target/iscsi"
)

// fixture is a daemon started from a config file, in process.
type fixture struct {
	m       *Manager
	h       http.Handler
	dir     string
	cfgPath string
	log     *bytes.Buffer
}

func writeConfig(t *testing.T, dir, body string) string {
	t.Helper()
	p := filepath.Join(dir, "target.yaml")
	require.NoError(t, os.WriteFile(p, []byte("listen: [\"127.0.0.1:3260\"]\nstate_dir: state\nadmin_socket: a.sock\n"+body), 0o644))
	return p
}

func start(t *testing.T, body string, o Options) (*fixture, error) {
	t.Helper()
	dir := t.TempDir()
	f := &fixture{dir: dir, cfgPath: writeConfig(t, dir, strings.ReplaceAll(body, "DIR", dir)), log: &bytes.Buffer{}}
	cfg, err := config.Load(f.cfgPath)
	if err != nil {
		return f, err
	}
	o.ConfigPath = f.cfgPath
	o.Log = slog.New(slog.NewTextHandler(f.log, nil))
	f.m = New(iscsi.NewServer(iscsi.Config{}), o)
	t.Cleanup(func() { _ = f.m.Close() })
	f.h = NewAPIHandler(f.m, o.Log)
	return f, f.m.Start(context.Background(), cfg)
}

const oneLUN = "targets:\n  - name: " + iqn + "\n    luns: [{id: 0, path: DIR/lun0, size: 1MiB}]\n"

func TestAPIRefusesWhatTheConfigRefuses(t *testing.T) {
	f, err := start(t, oneLUN, Options{})
	require.NoError(t, err)
	before, err := os.ReadFile(f.cfgPath)
	require.NoError(t, err)
	lunURL := "/v1/targets/" + iqn + "/luns/1"
	tests := []struct {
		desc, method, path, body string
		code                     int
		want                     []string
	}{
		{"second LUN on a file another LUN exports", "POST", lunURL, `{"path":"` + f.dir + `/lun0"}`, 400,
			[]string{"targets[0].luns[1].path", "already used by targets[0].luns[0]"}},
		{"the same file spelled otherwise", "POST", lunURL, `{"path":"` + f.dir + `//lun0"}`, 400,
			[]string{"already used"}},
		{"3-byte CHAP secret", "PUT", "/v1/targets/" + iqn + "/chap", `{"user":"u","secret":"abc"}`, 400,
			[]string{"targets[0].chap.secret_file", "holds 3 bytes", "12"}},
		{"3-byte discovery secret", "PUT", "/v1/discovery/chap", `{"user":"u","secret":"abc"}`, 400,
			[]string{"discovery.chap.secret_file", "holds 3 bytes"}},
		{"serial with spaces", "POST", lunURL, `{"path":"` + f.dir + `/lun1","size":1048576,"serial":"a b"}`, 400,
			[]string{"targets[0].luns[1].serial", "without spaces"}},
		{"bad block size", "POST", lunURL, `{"path":"` + f.dir + `/lun1","size":1048576,"block_size":1000}`, 400,
			[]string{"targets[0].luns[1].block_size", "use 512 or 4096"}},
		{"relative path", "POST", lunURL, `{"path":"lun1","size":1048576}`, 400, []string{"relative"}},
		{"bad initiator name", "PUT", "/v1/targets/" + iqn + "/acl/host1", "", 400, []string{"initiators[0]", "iqn."}},
		{"bad target name", "POST", "/v1/targets", `{"name":"disk1"}`, 400, []string{"targets[1].name"}},
	}
	for _, tc := range tests {
		t.Run(tc.desc, func(t *testing.T) {
			code, body := do(t, f.h, tc.method, tc.path, tc.body)
			assert.Equal(t, tc.code, code, body)
			for _, w := range tc.want {
				assert.Contains(t, body, w)
			}
		})
	}
	_, err = os.Stat(filepath.Join(f.dir, "lun1"))
	assert.True(t, os.IsNotExist(err), "no file is left behind by a refused LUN")
	secrets, _ := filepath.Glob(filepath.Join(f.dir, "chap", "*"))
	assert.Empty(t, secrets, "no secret file is left behind by a refused CHAP")
	after, err := os.ReadFile(f.cfgPath)
	require.NoError(t, err)
	assert.Equal(t, before, after, "a refused change does not touch the config")
	require.Len(t, f.m.Targets(), 1)
	assert.Len(t, f.m.Targets()[0].LUNs, 1)

	// Negative control: the same calls with good values pass.
	code, body := do(t, f.h, "POST", lunURL, `{"path":"`+f.dir+`/lun1","size":1048576,"serial":"ab"}`)
	assert.Equal(t, http.StatusCreated, code, body)
	code, body = do(t, f.h, "PUT", "/v1/targets/"+iqn+"/chap", `{"user":"u","secret":"0123456789abcdef"}`)
	assert.Equal(t, http.StatusOK, code, body)
}

func TestAPIChangesAreWrittenBack(t *testing.T) {
	f, err := start(t, oneLUN, Options{})
	require.NoError(t, err)
	code, body := do(t, f.h, "POST", "/v1/targets/"+iqn+"/luns/1", `{"path":"`+f.dir+`/lun1","size":2097152}`)
	require.Equal(t, http.StatusCreated, code, body)
	code, body = do(t, f.h, "PUT", "/v1/targets/"+iqn+"/chap", `{"user":"u","secret":"0123456789abcdef","mutual_user":"t","mutual_secret":"fedcba9876543210"}`)
	require.Equal(t, http.StatusOK, code, body)
	code, body = do(t, f.h, "PUT", "/v1/targets/"+iqn+"/acl/iqn.2024-01.test:node1", "")
	require.Equal(t, http.StatusOK, code, body)

	raw, err := os.ReadFile(f.cfgPath)
	require.NoError(t, err)
	assert.NotContains(t, string(raw), "0123456789abcdef", "the config names secret files, never secrets")
	cfg, err := config.Load(f.cfgPath)
	require.NoError(t, err, "the written config loads")
	tg := cfg.Targets[0]
	require.Len(t, tg.LUNs, 2)
	assert.Equal(t, []string{"iqn.2024-01.test:node1"}, tg.Initiators)
	assert.Equal(t, []byte("0123456789abcdef"), tg.CHAP.Secret)
	st, err := os.Stat(tg.CHAP.SecretFile)
	require.NoError(t, err)
	assert.Equal(t, os.FileMode(0o600), st.Mode().Perm())
	_, err = os.Stat(f.cfgPath + ".bak")
	assert.NoError(t, err, "the previous config is kept")

	// A rotation replaces the file the config names and removes the old one.
	old := tg.CHAP.SecretFile
	code, body = do(t, f.h, "PUT", "/v1/targets/"+iqn+"/chap", `{"user":"u","secret":"another-secret-16"}`)
	require.Equal(t, http.StatusOK, code, body)
	_, err = os.Stat(old)
	assert.True(t, os.IsNotExist(err), "the rotated-out secret file is removed")

	// A hand edit not reloaded is not overwritten.
	require.NoError(t, os.WriteFile(f.cfgPath, append(raw, []byte("# edited\n")...), 0o644))
	code, body = do(t, f.h, "DELETE", "/v1/targets/"+iqn+"/luns/1", "")
	assert.Equal(t, http.StatusConflict, code, body)
	assert.Contains(t, body, "reload it first")
}

func TestSecondLUNOnTheSameBackingNamesTheHolder(t *testing.T) {
	f, err := start(t, oneLUN+"  - name: iqn.2024-01.test:other\n", Options{})
	require.NoError(t, err)
	// A symlink passes the path check; the lock catches it.
	link := filepath.Join(f.dir, "alias")
	require.NoError(t, os.Symlink(filepath.Join(f.dir, "lun0"), link))
	code, body := do(t, f.h, "POST", "/v1/targets/iqn.2024-01.test:other/luns/0", `{"path":"`+link+`"}`)
	assert.Equal(t, http.StatusConflict, code, body)
	assert.Contains(t, body, "in use")
	assert.Contains(t, body, "this process")
	assert.Len(t, f.m.Targets()[1].LUNs, 0)
}

func TestStartFailsOnALUNItCannotOpen(t *testing.T) {
	tests := []struct {
		desc, luns string
		prep       func(dir string)
		want       []string
	}{
		{"missing file", "[{id: 0, path: DIR/nope}]", nil, []string{"lun 0", "no such file", "size"}},
		{"a directory", "[{id: 0, path: DIR/d}]", func(dir string) { _ = os.Mkdir(filepath.Join(dir, "d"), 0o700) },
			[]string{"lun 0", "neither a regular file nor a block device"}},
		{"an lv not active", "[{id: 0, lv: vg0/mq}]", nil, []string{"lv vg0/mq", "not active", "lvchange -ay vg0/mq"}},
		{"an lv that does not exist", "[{id: 1, lv: vg0/nope}]", nil, []string{"lv vg0/nope", "not found"}},
		{"waiting in vain", "[{id: 0, path: DIR/late, wait: 50ms}]", nil, []string{"waited 50ms"}},
	}
	for _, tc := range tests {
		t.Run(tc.desc, func(t *testing.T) {
			fake := lvmtest.New(lvmtest.VG{Name: "vg0", Size: 1 << 30})
			fake.VGs[0].LVs = append(fake.VGs[0].LVs, &lvmtest.LV{Name: "mq", Type: "linear", Size: 8 << 20})
			dir := t.TempDir()
			if tc.prep != nil {
				tc.prep(dir)
			}
			cfgPath := writeConfig(t, dir, strings.ReplaceAll("targets:\n  - name: "+iqn+"\n    luns: "+tc.luns+"\n", "DIR", dir))
			cfg, err := config.Load(cfgPath)
			require.NoError(t, err)
			m := New(iscsi.NewServer(iscsi.Config{}), Options{ConfigPath: cfgPath, WaitPoll: 10 * time.Millisecond,
				LVM: lvm.New(lvm.Options{Runner: fake, DevDir: filepath.Join(dir, "dev")})})
			defer m.Close()
			err = m.Start(context.Background(), cfg)
			require.Error(t, err)
			for _, w := range tc.want {
				assert.ErrorContains(t, err, w)
			}
			assert.Empty(t, m.Targets())
		})
	}
}

func TestLVBackedLUNAndWait(t *testing.T) {
	dir := t.TempDir()
	fake := lvmtest.New(lvmtest.VG{Name: "vg0", Size: 1 << 30})
	fake.DevDir = filepath.Join(dir, "dev")
	client := lvm.New(lvm.Options{Runner: fake, DevDir: fake.DevDir})
	_, err := client.Create(context.Background(), "vg0", "mq", 8<<20)
	require.NoError(t, err)
	// The fake's device node is an empty file: give it the LV's size.
	require.NoError(t, os.Truncate(filepath.Join(fake.DevDir, "vg0", "mq"), 8<<20))

	// The late file appears while Start waits for it (or before it first
	// looks: either way Start must serve it, not fail).
	late := filepath.Join(dir, "late")
	done := make(chan error, 1)
	var f *fixture
	go func() {
		var err error
		f, err = start(t, "targets:\n  - name: "+iqn+"\n    luns: [{id: 0, lv: vg0/mq}, {id: 1, path: "+late+", wait: 5m}]\n",
			Options{LVM: client, WaitPoll: 5 * time.Millisecond})
		done <- err
	}()
	// Written aside and renamed in, as a device node appears whole: a file
	// seen half-written (0 bytes) is an error Start is right to report.
	require.NoError(t, os.WriteFile(late+".tmp", make([]byte, 1<<20), 0o600))
	require.NoError(t, os.Rename(late+".tmp", late))
	require.NoError(t, <-done)
	lus := f.m.Targets()[0].LUNs
	require.Len(t, lus, 2)
	assert.Equal(t, "vg0/mq", lus[0].LV)
	assert.Equal(t, filepath.Join(fake.DevDir, "vg0", "mq"), lus[0].Path)
	assert.Equal(t, int64(8<<20), lus[0].Size)

	// lvextend, then a resize with no size takes the device's new size.
	_, err = client.Resize(context.Background(), "vg0", "mq", 16<<20, false)
	require.NoError(t, err)
	require.NoError(t, os.Truncate(filepath.Join(fake.DevDir, "vg0", "mq"), 16<<20))
	code, body := do(t, f.h, "POST", "/v1/targets/"+iqn+"/luns/0/resize", `{"size":0}`)
	require.Equal(t, http.StatusOK, code, body)
	assert.Equal(t, int64(16<<20), f.m.Targets()[0].LUNs[0].Size)
	code, body = do(t, f.h, "POST", "/v1/targets/"+iqn+"/luns/0/resize", `{"size":33554432}`)
	assert.Equal(t, http.StatusBadRequest, code, "a device is grown with lvextend, not by the target")
	assert.Contains(t, body, "volume resize")
}
