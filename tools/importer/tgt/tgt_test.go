package tgt

import (
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"testing/fstest"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	tconfig "github.com/tandem-ha/tandem/target/config"
)

var update = flag.Bool("update", false, "rewrite testdata/*.golden")

var samples = []string{"sample", "doc"}

func convert(t *testing.T, sample string) *Result {
	t.Helper()
	r, err := Convert(Input{FS: os.DirFS(filepath.Join("testdata", sample)), Path: DefaultPath, SecretDir: "secrets"})
	require.NoError(t, err)
	return r
}

func render(t *testing.T, r *Result) string {
	b, err := r.Config.Marshal()
	require.NoError(t, err)
	var out strings.Builder
	out.Write(b)
	out.WriteString("# secret files\n")
	for _, s := range r.Secrets {
		out.WriteString(s.Path + "\n")
	}
	out.WriteString("# findings\n")
	for _, f := range r.Findings {
		out.WriteString(f.String() + "\n")
	}
	return out.String()
}

func TestGolden(t *testing.T) {
	for _, s := range samples {
		t.Run(s, func(t *testing.T) {
			r := convert(t, s)
			got := render(t, r)
			golden := filepath.Join("testdata", s+".golden")
			if *update {
				require.NoError(t, os.WriteFile(golden, []byte(got), 0o644))
			}
			want, err := os.ReadFile(golden)
			require.NoError(t, err, "run go test -update")
			assert.Equal(t, string(want), got)
			for _, sec := range r.Secrets {
				assert.NotContains(t, got, strings.TrimSpace(string(sec.Data)), "passwords are never in the config or the report")
			}
		})
	}
}

// The imported config with its secret files passes target/config's Load
// (defaults, secrets, Validate): what tandem-target runs at start.
func TestImportedConfigLoads(t *testing.T) {
	for _, s := range samples {
		t.Run(s, func(t *testing.T) {
			r := convert(t, s)
			dir := t.TempDir()
			for _, sec := range r.Secrets {
				p := filepath.Join(dir, sec.Path)
				require.NoError(t, os.MkdirAll(filepath.Dir(p), 0o700))
				require.NoError(t, os.WriteFile(p, sec.Data, 0o600))
			}
			b, err := r.Config.Marshal()
			require.NoError(t, err)
			path := filepath.Join(dir, "target.yaml")
			require.NoError(t, os.WriteFile(path, b, 0o644))
			cfg, err := tconfig.Load(path)
			require.NoError(t, err, string(b))
			assert.Len(t, cfg.Targets, len(r.Config.Targets))
		})
	}
}

// LUN numbers as tgt-admin assigns them: explicit `lun N` kept, the rest
// the lowest free from 1, backing stores before direct stores, each kind by
// sorted path.
func TestLUNNumbering(t *testing.T) {
	r := convert(t, "sample")
	ids := func(tg tconfig.Target) map[string]uint64 {
		m := map[string]uint64{}
		for _, l := range tg.LUNs {
			m[l.Path] = l.ID
		}
		return m
	}
	assert.Equal(t, map[string]uint64{"/srv/luns/alpha.img": 1, "/srv/luns/zeta.img": 2, "/dev/sdz": 3}, ids(r.Config.Targets[1]))
	assert.Equal(t, map[string]uint64{"/srv/luns/archive0.img": 1, "/srv/luns/archive1.img": 2, "/dev/sdy": 5}, ids(r.Config.Targets[2]))
	// The include came first in the file, so its target comes first.
	assert.Equal(t, "iqn.2026-01.net.example:backup", r.Config.Targets[0].Name)
	arch := r.Config.Targets[2]
	assert.Equal(t, "iqn.2026-01.net.example:archive", arch.Name)
	assert.True(t, arch.LUNs[0].ReadOnly)
	assert.Equal(t, uint32(4096), arch.LUNs[0].BlockSize)
	assert.Equal(t, "ARCH0001", arch.LUNs[0].Serial)
	assert.False(t, r.Config.Targets[1].LUNs[0].WriteCache, "target-level write-cache off applies to every LUN")
}

func TestSecrets(t *testing.T) {
	r := convert(t, "sample")
	db := r.Config.Targets[1].CHAP
	assert.Equal(t, tconfig.CHAP{User: "dbuser", SecretFile: "secrets/db-in.secret", MutualUser: "dbtarget", MutualSecretFile: "secrets/db-out.secret"}, db)
	got := map[string]string{}
	for _, s := range r.Secrets {
		got[s.Path] = string(s.Data)
	}
	assert.Equal(t, "dbpassword0001\n", got["secrets/db-in.secret"])
	assert.Equal(t, "discoverypass1\n", got["secrets/discovery-in.secret"])
	assert.NotContains(t, got, "otherpassword02\n", "a second incominguser is reported, not written")
}

func TestShortPasswordWarns(t *testing.T) {
	fsys := fstest.MapFS{"etc/tgt/targets.conf": {Data: []byte("<target iqn.2026-01.net.example:a>\nbacking-store /x\nincominguser u short\n</target>\n")}}
	r, err := Convert(Input{FS: fsys, Path: DefaultPath})
	require.NoError(t, err)
	var msgs []string
	for _, f := range r.Findings {
		msgs = append(msgs, f.String())
	}
	assert.Contains(t, strings.Join(msgs, "\n"), "warning /etc/tgt/targets.conf:3 incominguser u: the password is 5 bytes, CHAP needs at least 12")
	assert.NotContains(t, strings.Join(msgs, "\n"), "short")
}

func TestConvertErrors(t *testing.T) {
	for _, tc := range []struct{ desc, conf, want string }{
		{"unclosed", "<target iqn.2026-01.net.example:a>\nbacking-store /x\n", "ends inside <target"},
		{"nested target", "<target iqn.2026-01.net.example:a>\n<target iqn.2026-01.net.example:b>\n", "targets.conf:2: unexpected <target"},
		{"include loop", "include /etc/tgt/targets.conf\n", "nested more than 8 deep"},
	} {
		t.Run(tc.desc, func(t *testing.T) {
			_, err := Convert(Input{FS: fstest.MapFS{"etc/tgt/targets.conf": {Data: []byte(tc.conf)}}, Path: DefaultPath})
			assert.ErrorContains(t, err, tc.want)
		})
	}
}
