package config

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

const goodSecret = "0123456789abcdef"

// writeFile writes content to dir/name with mode and returns the path.
func writeFile(t *testing.T, dir, name, content string, mode os.FileMode) string {
	t.Helper()
	p := filepath.Join(dir, name)
	require.NoError(t, os.WriteFile(p, []byte(content), mode))
	require.NoError(t, os.Chmod(p, mode)) // WriteFile honours the umask
	return p
}

func load(t *testing.T, dir, yaml string) (*Config, error) {
	t.Helper()
	return Load(writeFile(t, dir, "target.yaml", yaml, 0o644))
}

func TestLoadDefaults(t *testing.T) {
	dir := t.TempDir()
	cfg, err := load(t, dir, `
targets:
  - name: iqn.2024-01.com.example:disk
    luns:
      - id: 1
        path: lun1.img
        size: 10GiB
`)
	require.NoError(t, err)
	def := DefaultConfig()
	assert.Equal(t, def.Listen, cfg.Listen)
	assert.Equal(t, def.Limits, cfg.Limits)
	assert.Equal(t, "/var/lib/tandem/target", cfg.StateDir)
	assert.Equal(t, "/run/tandem/target.sock", cfg.AdminSocket)
	assert.Equal(t, "127.0.0.1:9465", cfg.MetricsAddress)
	assert.True(t, cfg.MetricsEnabled())
	require.Len(t, cfg.Targets, 1)
	l := cfg.Targets[0].LUNs[0]
	assert.Equal(t, filepath.Join(dir, "lun1.img"), l.Path, "relative paths resolve against the config's directory")
	assert.Equal(t, int64(10<<30), l.Size)
	assert.Equal(t, uint32(512), l.BlockSize)
	assert.True(t, l.WriteCache, "write_cache defaults to true")
	assert.False(t, l.Thin)
	assert.Equal(t, DefaultSerial("iqn.2024-01.com.example:disk", 1), l.Serial)
	assert.Len(t, l.Serial, 16)
}

func TestLoadFull(t *testing.T) {
	dir := t.TempDir()
	writeFile(t, dir, "in.secret", goodSecret+"\n", 0o600)
	writeFile(t, dir, "out.secret", "fedcba9876543210", 0o600)
	writeFile(t, dir, "disc.secret", "discoverysecret1", 0o400)
	cfg, err := load(t, dir, `
listen: ["0.0.0.0:3261", "[::1]:3262", ":3263"]
state_dir: /tmp/state
admin_socket: /tmp/state/target.sock
limits:
  max_sessions: 8
  queue_depth: 32
  max_recv_data_segment_length: 65536
  max_burst_length: 262144
  first_burst_length: 65536
  max_outstanding_r2t: 4
  nop_interval: 2s
  nop_timeout: 1m
  immediate_data: false
  initial_r2t: true
  header_digest: false
  data_digest: false
discovery:
  chap: {user: disc, secret_file: disc.secret}
targets:
  - name: iqn.2024-01.com.example:disk
    alias: demo disk
    initiators: [iqn.2024-01.com.example:host1, eui.02004567A425678D]
    chap:
      user: alice
      secret_file: in.secret
      mutual_user: target
      mutual_secret_file: out.secret
    luns:
      - {id: 0, path: /dev/vg/lv, block_size: 4096, thin: true, write_cache: false, read_only: true, serial: ABC123}
      - {id: 1, path: /tmp/b.img, size: 1073741824}
  - name: naa.60014055a4b3c2d1e0f9a8b7c6d5e4f3
`)
	require.NoError(t, err)
	assert.Equal(t, []string{"0.0.0.0:3261", "[::1]:3262", ":3263"}, cfg.Listen)
	assert.Equal(t, Limits{
		MaxSessions: 8, QueueDepth: 32, MaxRecvDataSegmentLength: 65536, MaxBurstLength: 262144,
		FirstBurstLength: 65536, MaxOutstandingR2T: 4, NopInterval: 2 * time.Second, NopTimeout: time.Minute, InitialR2T: true,
	}, cfg.Limits)
	assert.Equal(t, []byte("discoverysecret1"), cfg.Discovery.CHAP.Secret)
	tg := cfg.Targets[0]
	assert.Equal(t, "demo disk", tg.Alias)
	assert.Equal(t, []byte(goodSecret), tg.CHAP.Secret, "one trailing newline is dropped")
	assert.Equal(t, []byte("fedcba9876543210"), tg.CHAP.MutualSecret)
	assert.Equal(t, "target", tg.CHAP.MutualUser)
	assert.True(t, tg.CHAP.Enabled())
	assert.Equal(t, LUN{ID: 0, Path: "/dev/vg/lv", BlockSize: 4096, Thin: true, ReadOnly: true, Serial: "ABC123"}, tg.LUNs[0])
	assert.True(t, tg.LUNs[1].WriteCache)
	assert.Empty(t, cfg.Targets[1].LUNs)
	assert.False(t, cfg.Targets[1].CHAP.Enabled())
}

func TestMarshalRoundTrip(t *testing.T) {
	dir := t.TempDir()
	writeFile(t, dir, "in.secret", goodSecret, 0o600)
	cfg := DefaultConfig()
	cfg.Listen = []string{"127.0.0.1:3260"}
	cfg.StateDir = filepath.Join(dir, "state")
	cfg.AdminSocket = filepath.Join(dir, "s.sock")
	cfg.Targets = []Target{{
		Name: "iqn.2024-01.com.example:demo",
		CHAP: CHAP{User: "demo", SecretFile: filepath.Join(dir, "in.secret")},
		LUNs: []LUN{{ID: 1, Path: filepath.Join(dir, "lun1.img"), Size: 10 << 30, BlockSize: 512, Thin: true, WriteCache: false, Serial: "S1"}},
	}}
	b, err := cfg.Marshal()
	require.NoError(t, err)
	assert.Contains(t, string(b), "nop_interval: 10s")
	assert.NotContains(t, string(b), goodSecret, "secrets are never written")
	got, err := Load(writeFile(t, dir, "c.yaml", string(b), 0o644))
	require.NoError(t, err)
	cfg.Targets[0].CHAP.Secret = []byte(goodSecret)
	assert.Equal(t, cfg, got)
}

func TestLoadErrors(t *testing.T) {
	lun := "\n    luns: [{id: 1, path: /tmp/x.img}]"
	tests := []struct {
		desc string
		yaml string
		want []string // substrings of the error
	}{
		{"unknown key", "listn: [\"127.0.0.1:1\"]", []string{"invalid keys: listn"}},
		{"unknown nested key", "targets: [{name: iqn.2024-01.com.example:a, lunz: []}]", []string{"lunz"}},
		{"bad yaml", "targets: [", []string{"read config"}},
		{"wrong type", "limits: {max_sessions: many}", []string{"max_sessions"}},
		{"empty listen", "listen: []", []string{"listen: no portal"}},
		{"listen no port", "listen: [\"127.0.0.1\"]", []string{"listen[0]:", "not host:port"}},
		{"listen hostname", "listen: [\"localhost:3260\"]", []string{"listen[0]:", "not an IP address"}},
		{"listen bad port", "listen: [\"127.0.0.1:99999\"]", []string{"listen[0]:", "not 1..65535"}},
		{"listen duplicate", "listen: [\"127.0.0.1:1\", \"127.0.0.1:1\"]", []string{"listen[1]:", "twice"}},
		{"empty state dir", "state_dir: \"\"", []string{"state_dir: empty"}},
		{"empty admin socket", "admin_socket: \"\"", []string{"admin_socket: empty"}},
		{"long admin socket", "admin_socket: /" + strings.Repeat("a", 120), []string{"admin_socket: path is"}},
		{"metrics hostname", "metrics_address: localhost:9465", []string{"metrics_address:", "use IP:PORT"}},
		{"max sessions zero", "limits: {max_sessions: 0}", []string{"limits.max_sessions:"}},
		{"queue depth zero", "limits: {queue_depth: 0}", []string{"limits.queue_depth: 0 is outside 1..65535"}},
		{"mrdsl small", "limits: {max_recv_data_segment_length: 511}", []string{"limits.max_recv_data_segment_length: 511 is outside 512..16777215 (RFC 7143 section 13.12)"}},
		{"burst small", "limits: {max_burst_length: 100, first_burst_length: 100}", []string{"limits.max_burst_length: 100 is outside 512..16777215", "limits.first_burst_length: 100"}},
		{"burst big", "limits: {max_burst_length: 16777216}", []string{"limits.max_burst_length: 16777216 is outside"}},
		{"first burst above max", "limits: {max_burst_length: 65536, first_burst_length: 131072}", []string{"limits.first_burst_length: 131072 exceeds max_burst_length 65536"}},
		{"r2t zero", "limits: {max_outstanding_r2t: 0}", []string{"limits.max_outstanding_r2t: 0 is outside 1..65535"}},
		{"nop negative", "limits: {nop_interval: -1s}", []string{"limits.nop_interval: negative"}},
		{"nop timeout zero", "limits: {nop_timeout: 0s}", []string{"limits.nop_timeout:"}},
		{"negative number", "limits: {queue_depth: -1}", []string{"queue_depth"}},
		{"bad target name", "targets: [{name: iqn.2024-01.com.Example:a}]", []string{"targets[0].name:", "lowercase"}},
		{"no prefix", "targets: [{name: disk1}]", []string{"targets[0].name:", "must start with iqn., eui. or naa."}},
		{"bad date", "targets: [{name: iqn.2024-13.com.example:a}]", []string{"targets[0].name:", "not a valid yyyy-mm date"}},
		{"no date", "targets: [{name: iqn.com.example:a}]", []string{"targets[0].name:", "date yyyy-mm"}},
		{"no domain", "targets: [{name: \"iqn.2024-01.:a\"}]", []string{"targets[0].name:", "reversed domain"}},
		{"bad eui", "targets: [{name: eui.0200456}]", []string{"targets[0].name:", "16 hex digits"}},
		{"bad naa", "targets: [{name: naa.0123456789abcdef01}]", []string{"targets[0].name:", "16 or 32 hex digits"}},
		{"name too long", "targets: [{name: iqn.2024-01.com.example:" + strings.Repeat("a", 220) + "}]", []string{"targets[0].name:", "the limit is 223"}},
		{"duplicate target", "targets: [{name: iqn.2024-01.com.example:a}, {name: iqn.2024-01.com.example:a}]", []string{"targets[1].name:", "also the name of targets[0]"}},
		{"bad initiator", "targets: [{name: iqn.2024-01.com.example:a, initiators: [host1]}]", []string{"targets[0].initiators[0]:"}},
		{"duplicate initiator", "targets: [{name: iqn.2024-01.com.example:a, initiators: [eui.0123456789ABCDEF, eui.0123456789abcdef]}]", []string{"targets[0].initiators[1]:", "twice"}},
		{"bad alias", "targets: [{name: iqn.2024-01.com.example:a, alias: \"a\\tb\"}]", []string{"targets[0].alias:"}},
		{"duplicate lun", "targets:\n  - name: iqn.2024-01.com.example:a\n    luns: [{id: 1, path: /tmp/a}, {id: 1, path: /tmp/b}]", []string{"targets[0].luns[1].id:", "unique"}},
		{"duplicate path", "targets:\n  - name: iqn.2024-01.com.example:a" + lun + "\n  - name: iqn.2024-01.com.example:b" + lun, []string{"targets[1].luns[0].path:", "already used by targets[0].luns[0]"}},
		{"empty path", "targets:\n  - name: iqn.2024-01.com.example:a\n    luns: [{id: 1}]", []string{"targets[0].luns[0].path: empty"}},
		{"lun too big", "targets:\n  - name: iqn.2024-01.com.example:a\n    luns: [{id: 16384, path: /tmp/a}]", []string{"targets[0].luns[0].id: 16384 is above 16383"}},
		{"block size", "targets:\n  - name: iqn.2024-01.com.example:a\n    luns: [{id: 1, path: /tmp/a, block_size: 1024}]", []string{"targets[0].luns[0].block_size: 1024 is not supported: use 512 or 4096"}},
		{"size unaligned", "targets:\n  - name: iqn.2024-01.com.example:a\n    luns: [{id: 1, path: /tmp/a, size: 1000}]", []string{"targets[0].luns[0].size: 1000 is not a multiple of the block size 512"}},
		{"size garbage", "targets:\n  - name: iqn.2024-01.com.example:a\n    luns: [{id: 1, path: /tmp/a, size: 10 parsecs}]", []string{"size", "not a byte count"}},
		{"serial spaces", "targets:\n  - name: iqn.2024-01.com.example:a\n    luns: [{id: 1, path: /tmp/a, serial: \"a b\"}]", []string{"targets[0].luns[0].serial:"}},
		{"chap without user", "targets: [{name: iqn.2024-01.com.example:a, chap: {secret_file: /tmp/s}}]", []string{"targets[0].chap.user: empty but other CHAP keys are set"}},
		{"chap without secret", "targets: [{name: iqn.2024-01.com.example:a, chap: {user: alice}}]", []string{"targets[0].chap.secret_file: user is set but no secret file"}},
		{"mutual without secret", "discovery: {chap: {user: a, secret_file: in.secret, mutual_user: t}}", []string{"discovery.chap.mutual_secret_file: mutual_user is set"}},
		{"mutual secret without user", "discovery: {chap: {user: a, secret_file: in.secret, mutual_secret_file: out.secret}}", []string{"discovery.chap.mutual_user: empty but mutual_secret_file is set"}},
		{"missing secret file", "discovery: {chap: {user: a, secret_file: nope.secret}}", []string{"discovery.chap.secret_file:", "no such file", "chmod 600"}},
		{"group readable secret", "discovery: {chap: {user: a, secret_file: group.secret}}", []string{"discovery.chap.secret_file:", "accessible by group or others (mode 0640)", "run `chmod 600 "}},
		{"world readable secret", "targets: [{name: iqn.2024-01.com.example:a, chap: {user: a, secret_file: world.secret}}]", []string{"targets[0].chap.secret_file:", "chmod 600"}},
		{"short secret", "discovery: {chap: {user: a, secret_file: short.secret}}", []string{"discovery.chap.secret_file:", "holds 11 bytes, CHAP secrets need 12"}},
		{"same mutual secret", "discovery: {chap: {user: a, secret_file: in.secret, mutual_user: t, mutual_secret_file: in2.secret}}", []string{"discovery.chap.mutual_secret_file: holds the same secret", "12.1.3"}},
		{"secret is a directory", "discovery: {chap: {user: a, secret_file: dir.secret}}", []string{"not a regular file"}},
		{"unknown cache", "targets:\n  - name: iqn.2024-01.com.example:a\n    luns: [{id: 1, path: /tmp/a, cache: lazy}]", []string{"targets[0].luns[0].cache: \"lazy\" is unknown"}},
		{"volatile read-only", "targets:\n  - name: iqn.2024-01.com.example:a\n    luns: [{id: 1, path: /tmp/a, cache: volatile, read_only: true}]", []string{"targets[0].luns[0].cache: a read-only LUN"}},
		{"audit on the lun", "targets:\n  - name: iqn.2024-01.com.example:a\n    luns: [{id: 1, path: /tmp/a, audit: /tmp/a}]", []string{"targets[0].luns[0].audit: is the LUN's own path"}},
		{"several problems at once", "listen: [\"x\"]\nlimits: {queue_depth: 0}", []string{"listen[0]:", "limits.queue_depth:"}},
	}
	for _, tc := range tests {
		t.Run(tc.desc, func(t *testing.T) {
			dir := t.TempDir()
			writeFile(t, dir, "in.secret", goodSecret, 0o600)
			writeFile(t, dir, "in2.secret", goodSecret+"\n", 0o600)
			writeFile(t, dir, "out.secret", "fedcba9876543210", 0o600)
			writeFile(t, dir, "group.secret", goodSecret, 0o640)
			writeFile(t, dir, "world.secret", goodSecret, 0o604)
			writeFile(t, dir, "short.secret", "0123456789a", 0o600)
			require.NoError(t, os.Mkdir(filepath.Join(dir, "dir.secret"), 0o700))
			_, err := load(t, dir, tc.yaml)
			require.Error(t, err)
			for _, w := range tc.want {
				assert.Contains(t, err.Error(), w)
			}
		})
	}
}

func TestLoadMissingFile(t *testing.T) {
	_, err := Load(filepath.Join(t.TempDir(), "nope.yaml"))
	require.Error(t, err)
	assert.Contains(t, err.Error(), "read config")
}

func TestCheckName(t *testing.T) {
	for _, ok := range []string{
		"iqn.2024-01.com.example:disk1",
		"iqn.1992-01.com.example",
		"iqn.2001-04.com.example:storage:diskarrays-sn-a8675309",
		"iqn.2007-10.com.github:sahlberg:libiscsi:iscsi-test",
		"eui.02004567A425678D",
		"naa.52004567BA64678D",
		"naa.62004567BA64678D0123456789ABCDEF",
	} {
		assert.NoError(t, CheckName(ok), ok)
	}
	for _, bad := range []string{"", "iqn.", "iqn.2024-01", "iqn.2024-1.com.x", "iqn.2024-01.-com.x", "iqn.2024-01.com..x", "iqn.2024-01.com.x:a b", "eui.xyz4567A425678D", "naa.1234", "IQN.2024-01.com.x"} {
		assert.Error(t, CheckName(bad), bad)
	}
}

func TestParseSize(t *testing.T) {
	for in, want := range map[string]int64{
		"0": 0, "512": 512, "1K": 1024, "10GiB": 10 << 30, "10gib": 10 << 30, "1 TiB": 1 << 40,
		"2MB": 2e6, "3G": 3 << 30, "4096B": 4096, "1kb": 1000,
	} {
		got, err := ParseSize(in)
		require.NoError(t, err, in)
		assert.Equal(t, want, got, in)
	}
	for _, bad := range []string{"", "GiB", "-1", "1.5G", "9999999999999T", "ten"} {
		_, err := ParseSize(bad)
		assert.Error(t, err, bad)
	}
}

func TestDefaultSerialStable(t *testing.T) {
	a := DefaultSerial("iqn.2024-01.com.example:a", 1)
	assert.Equal(t, a, DefaultSerial("iqn.2024-01.com.example:a", 1))
	assert.NotEqual(t, a, DefaultSerial("iqn.2024-01.com.example:a", 2))
	assert.NotEqual(t, a, DefaultSerial("iqn.2024-01.com.example:b", 1))
}

func FuzzParseSize(f *testing.F) {
	for _, s := range []string{"10GiB", "0", "1 TiB", "-1", "9223372036854775807", "9999999999999T", "b"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		n, err := ParseSize(s)
		if err == nil && n < 0 {
			t.Fatalf("ParseSize(%q) = %d, negative", s, n)
		}
	})
}

func FuzzCheckName(f *testing.F) {
	for _, s := range []string{"iqn.2024-01.com.example:a", "eui.02004567A425678D", "naa.1", "iqn.2024-01.", ""} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		if CheckName(s) == nil && len(s) > maxNameLength {
			t.Fatalf("accepted %d-byte name", len(s))
		}
	})
}

func TestLoadLabKeys(t *testing.T) {
	dir := t.TempDir()
	cfg, err := load(t, dir, `targets:
  - name: iqn.2024-01.com.example:a
    luns: [{id: 0, path: lun0.img, size: 1MiB, cache: volatile, audit: lun0.audit, faults: true}]
`)
	require.NoError(t, err)
	l := cfg.Targets[0].LUNs[0]
	assert.Equal(t, CacheVolatile, l.Cache)
	assert.True(t, l.Faults)
	assert.Equal(t, filepath.Join(dir, "lun0.audit"), l.Audit, "relative to the config file")
	b, err := cfg.Marshal()
	require.NoError(t, err)
	assert.Contains(t, string(b), "cache: volatile")
	assert.Contains(t, string(b), "faults: true")
	assert.Contains(t, string(b), "audit: "+filepath.Join(dir, "lun0.audit"))
}

func TestMetricsAddressOff(t *testing.T) {
	cfg := DefaultConfig()
	cfg.MetricsAddress = "off"
	assert.False(t, cfg.MetricsEnabled())
	cfg.MetricsAddress = "bogus"
	assert.True(t, cfg.MetricsEnabled())
	require.ErrorContains(t, cfg.Validate(), "metrics_address")
}
