package config

import (
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestLoadLVAndWait(t *testing.T) {
	cfg, err := load(t, t.TempDir(), "targets:\n  - name: iqn.2024-01.com.example:a\n    luns: [{id: 0, lv: vg0/mq, wait: 30s}]")
	require.NoError(t, err)
	l := cfg.Targets[0].LUNs[0]
	assert.Equal(t, "vg0/mq", l.LV)
	assert.Empty(t, l.Path)
	assert.Equal(t, 30*time.Second, l.Wait)
}

func TestLoadLVErrors(t *testing.T) {
	tgt := "targets:\n  - name: iqn.2024-01.com.example:a\n    luns: "
	tests := []struct {
		desc, luns string
		want       []string
	}{
		{"lv and path", "[{id: 0, lv: vg0/a, path: /tmp/a}]", []string{"targets[0].luns[0].lv: set together with path"}},
		{"lv without slash", "[{id: 0, lv: vg0}]", []string{"targets[0].luns[0].lv:", "not VG/NAME"}},
		{"lv bad name", "[{id: 0, lv: vg0/_tmeta_x}]", []string{"targets[0].luns[0].lv:", "reserves"}},
		{"lv with size", "[{id: 0, lv: vg0/a, size: 1GiB}]", []string{"targets[0].luns[0].size:", "volume resize"}},
		{"same lv twice", "[{id: 0, lv: vg0/a}, {id: 1, lv: vg0/a}]", []string{"targets[0].luns[1].lv:", "already used by targets[0].luns[0]"}},
		{"same file spelled twice", "[{id: 0, path: /tmp/a}, {id: 1, path: /tmp//a}]", []string{"targets[0].luns[1].path:", "already used"}},
		{"wait too long", "[{id: 0, lv: vg0/a, wait: 1h}]", []string{"targets[0].luns[0].wait:", "outside"}},
	}
	for _, tc := range tests {
		t.Run(tc.desc, func(t *testing.T) {
			_, err := load(t, t.TempDir(), tgt+tc.luns)
			require.Error(t, err)
			for _, w := range tc.want {
				assert.Contains(t, err.Error(), w)
			}
		})
	}
}

func TestSaveAtomicWithBackup(t *testing.T) {
	dir := t.TempDir()
	path := writeFile(t, dir, "target.yaml", "listen: [\"127.0.0.1:3260\"]\nstate_dir: s\n", 0o640)
	old, err := os.ReadFile(path)
	require.NoError(t, err)
	cfg, err := Load(path)
	require.NoError(t, err)
	cfg.Targets = []Target{{Name: "iqn.2024-01.com.example:a", LUNs: []LUN{
		{ID: 0, LV: "vg0/a", BlockSize: 512, WriteCache: true, Serial: "s0", Wait: 5 * time.Second}}}}

	require.NoError(t, Save(path, cfg, "# written by a test\n"))
	bak, err := os.ReadFile(path + ".bak")
	require.NoError(t, err)
	assert.Equal(t, old, bak, "the previous file is kept")
	st, err := os.Stat(path)
	require.NoError(t, err)
	assert.Equal(t, os.FileMode(0o640), st.Mode().Perm(), "the operator's mode is kept")
	left, _ := filepath.Glob(filepath.Join(dir, ".target.yaml.tmp-*"))
	assert.Empty(t, left, "no temporary file is left")

	got, err := Load(path)
	require.NoError(t, err)
	assert.Equal(t, cfg, got, "what Save writes, Load reads back")
}

func TestWriteSecretAndGenerate(t *testing.T) {
	s := GenerateSecret()
	assert.GreaterOrEqual(t, len(s), MinSecretLength)
	assert.LessOrEqual(t, len(s), MaxSecretLength)
	assert.NotEqual(t, s, GenerateSecret(), "two secrets differ")
	path := filepath.Join(t.TempDir(), "chap", "t.secret")
	require.NoError(t, WriteSecret(path, s))
	st, err := os.Stat(path)
	require.NoError(t, err)
	assert.Equal(t, os.FileMode(0o600), st.Mode().Perm())
	got, err := ReadSecret(path)
	require.NoError(t, err)
	assert.Equal(t, s, got)
}

func TestDiff(t *testing.T) {
	a := DefaultConfig()
	a.Targets = []Target{{Name: "iqn.2024-01.com.example:a", LUNs: []LUN{{ID: 0, Path: "/a", BlockSize: 512}}},
		{Name: "iqn.2024-01.com.example:b"}}
	assert.Empty(t, Diff(a, a.Clone()), "no change, no lines")

	b := a.Clone()
	b.Targets[0].LUNs[0].BlockSize = 4096
	b.Targets[0].LUNs = append(b.Targets[0].LUNs, LUN{ID: 1, Path: "/b", BlockSize: 512})
	b.Targets[0].CHAP = CHAP{User: "u", SecretFile: "/s", Secret: []byte("topsecret-value")}
	b.Targets = b.Targets[:1]
	d := Diff(a, b)
	require.Len(t, d, 4, "%q", d)
	assert.Contains(t, d[0], "~ targets[iqn.2024-01.com.example:a].luns[0]: path=/a size=0 block_size=512")
	assert.Contains(t, d[0], "-> path=/a size=0 block_size=4096")
	assert.Contains(t, d[1], "- targets[iqn.2024-01.com.example:b]")
	assert.Contains(t, d[2], "+ targets[iqn.2024-01.com.example:a].chap: user=u secret=/s#")
	assert.Contains(t, d[3], "+ targets[iqn.2024-01.com.example:a].luns[1]")
	for _, line := range d {
		assert.NotContains(t, line, "topsecret", "secrets never appear")
	}
	c := b.Clone()
	c.Targets[0].CHAP.Secret = []byte("another-secret!!")
	assert.Len(t, Diff(b, c), 1, "a rotated secret is a change")
}
