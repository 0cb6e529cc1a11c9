package heartbeat

import (
	"bytes"
	"errors"
	"flag"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/tandem-ha/tandem/ha/config"
	_ "github.com/tandem-ha/tandem/ha/resource/all" // the types --check knows
	"github.com/tandem-ha/tandem/tools/importer"
)

var update = flag.Bool("update", false, "rewrite testdata/*.golden")

type testCase struct {
	name string
	mode fs.FileMode
	in   Input
}

var cases = []testCase{
	{name: "seed", mode: 0o600},
	{name: "sample", mode: 0o644, in: Input{Addresses: map[string]string{"10.20.0.1": "alpha.example.net", "10.20.0.2": "beta.example.net"}}},
	{name: "crc", mode: 0o600, in: Input{Addresses: map[string]string{"192.0.2.1": "a", "192.0.2.2": "b"}}},
	{name: "seed-qmgr", mode: 0o600, in: Input{MQQueueManager: "QMHA"}},
}

// input reads testdata/<dir> as tandemctl reads /etc/ha.d.
func input(t *testing.T, tc testCase, dir string) Input {
	t.Helper()
	src := filepath.Join("testdata", strings.TrimSuffix(tc.name, "-qmgr"))
	in := tc.in
	read := func(n string) string {
		b, err := os.ReadFile(filepath.Join(src, n))
		require.NoError(t, err)
		return string(b)
	}
	in.HaCf, in.Haresources, in.Authkeys = read(HaCf), read(Haresources), read(Authkeys)
	in.AuthkeysMode = tc.mode
	// git keeps no empty directory: a case without scripts has none.
	ents, err := os.ReadDir(filepath.Join(src, ResourceDir))
	if !errors.Is(err, fs.ErrNotExist) {
		require.NoError(t, err)
	}
	for _, e := range ents {
		in.Scripts = append(in.Scripts, e.Name())
	}
	in.Dir = dir
	in.KeyFile = "/etc/tandem/authkey"
	in.Rand = bytes.NewReader(bytes.Repeat([]byte{7}, 64))
	return in
}

func render(t *testing.T, r *Result) string {
	b, err := r.Config.Marshal()
	require.NoError(t, err)
	var out strings.Builder
	out.Write(b)
	out.WriteString("# findings\n")
	for _, f := range r.Findings {
		out.WriteString(f.String() + "\n")
	}
	return out.String()
}

// Golden: the agent.yaml and the report of each sample.
func TestGolden(t *testing.T) {
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			r, err := Convert(input(t, tc, "/etc/ha.d"))
			require.NoError(t, err)
			got := render(t, r)
			golden := filepath.Join("testdata", tc.name+".golden")
			if *update {
				require.NoError(t, os.WriteFile(golden, []byte(got), 0o644))
			}
			want, err := os.ReadFile(golden)
			require.NoError(t, err, "run go test -update")
			assert.Equal(t, string(want), got)
			assert.NotContains(t, got, string(r.Key), "the key is never in the config or the report")
			assert.NotContains(t, got, "mysecretpassword", "a stonith_host password is not echoed")
		})
	}
}

// Every imported config passes tandem-agent --check (config.Load with the
// node), on each node.
func TestImportedConfigLoads(t *testing.T) {
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			src := filepath.Join("testdata", strings.TrimSuffix(tc.name, "-qmgr"))
			require.NoError(t, os.CopyFS(dir, os.DirFS(src)))
			initDir := filepath.Join(dir, "init.d")
			require.NoError(t, os.MkdirAll(initDir, 0o755))
			for _, s := range []string{"httpd", "squid"} {
				require.NoError(t, os.WriteFile(filepath.Join(initDir, s), []byte("#!/bin/sh\n"), 0o755))
			}
			in := input(t, tc, dir)
			in.InitDir = initDir
			in.KeyFile = filepath.Join(dir, "authkey")
			r, err := Convert(in)
			require.NoError(t, err)
			require.NoError(t, os.WriteFile(in.KeyFile, r.Key, 0o600))
			path := filepath.Join(dir, "agent.yaml")
			require.NoError(t, r.Config.WriteFile(path))
			for _, node := range r.Config.Nodes {
				c, err := config.Load(path, config.Options{Node: node})
				require.NoError(t, err, node)
				assert.Equal(t, r.Config.Nodes, c.Nodes, "node names keep their case")
			}
		})
	}
}

func TestSeedMapping(t *testing.T) {
	r, err := Convert(input(t, cases[0], "/etc/ha.d"))
	require.NoError(t, err)
	c := r.Config
	assert.Equal(t, []string{"MQMaster", "MQSlave"}, c.Nodes)
	assert.Equal(t, config.Timing{Keepalive: 2 * time.Second, DeadTime: 30 * time.Second, InitDead: 30 * time.Second}, c.Timing)
	require.Len(t, c.Links, 1)
	assert.Equal(t, config.Link{Name: "eth1", Mode: config.ModeBroadcast, Interface: "eth1"}, c.Links[0])
	assert.Equal(t, "MQMaster", c.Failback.Preferred)
	require.Len(t, c.Resources, 2)
	assert.Equal(t, map[string]string{"address": "192.168.0.208/24", "interface": "eth0", "arp_count": "10", "arp_interval": "500ms"}, c.Resources[0].Params)
	assert.Equal(t, "script", c.Resources[1].Type)
	assert.Equal(t, "/etc/ha.d/resource.d/mq", c.Resources[1].Params["path"])
	assert.Equal(t, []byte(sampleKey), r.Key)
	var kinds []string
	for _, f := range r.Findings {
		kinds = append(kinds, string(f.Kind)+" "+f.Message[:min(len(f.Message), 20)])
	}
	assert.Contains(t, kinds, "warning a single heartbeat l")
	assert.Contains(t, kinds, "warning no fencing: heartbea")
}

// The proposed fence and disk heartbeat blocks are valid agent.yaml: added
// to the seed's import, the config still loads.
func TestProposalsLoad(t *testing.T) {
	dir := t.TempDir()
	in := input(t, cases[3], dir)
	in.KeyFile = filepath.Join(dir, "authkey")
	r, err := Convert(in)
	require.NoError(t, err)
	require.NoError(t, os.WriteFile(in.KeyFile, r.Key, 0o600))
	b, err := r.Config.Marshal()
	require.NoError(t, err)
	var fence, disk string
	for _, f := range r.Findings {
		switch {
		case strings.HasPrefix(f.Message, "no fencing"):
			fence = f.YAML
		case strings.HasPrefix(f.Message, "no disk heartbeat"):
			disk = f.YAML
		}
	}
	require.NotEmpty(t, fence)
	require.NotEmpty(t, disk)
	// The fence goes first (no filesystem here): splice its list item in.
	item := strings.TrimPrefix(fence, "resources:\n")
	doc := strings.Replace(string(b), "resources:\n", "resources:\n"+item, 1) + disk
	c, err := config.Parse([]byte(doc), config.Options{Node: "MQMaster"})
	require.NoError(t, err, doc)
	assert.Equal(t, "fence", c.Resources[0].Type)
	assert.True(t, c.DiskHeartbeat.Enabled())
}

func TestParseTime(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want time.Duration
	}{{"2", 2 * time.Second}, {"1.7", 1700 * time.Millisecond}, {"1500ms", 1500 * time.Millisecond}, {"30", 30 * time.Second}} {
		got, err := ParseTime(tc.in)
		require.NoError(t, err, tc.in)
		assert.Equal(t, tc.want, got, tc.in)
	}
	for _, bad := range []string{"", "2s", "-1", "fast"} {
		_, err := ParseTime(bad)
		assert.Error(t, err, bad)
	}
}

func TestConvertErrors(t *testing.T) {
	base := input(t, cases[0], "/etc/ha.d")
	for _, tc := range []struct {
		desc string
		edit func(*Input)
		want string
	}{
		{"one node", func(in *Input) { in.HaCf = "node a\nbcast eth0\n" }, "tandem runs exactly two nodes"},
		{"no link", func(in *Input) { in.HaCf = "node MQMaster\nnode MQSlave\n" }, "at least one heartbeat link"},
		{"preferred case", func(in *Input) { in.Haresources = "mqmaster mq\n" }, `preferred node "mqmaster" is not a node`},
		{"no auth", func(in *Input) { in.Authkeys = "1 sha1 0123456789abcdefgh\n" }, "no `auth N` line"},
		{"bad time", func(in *Input) { in.HaCf = "node MQMaster\nnode MQSlave\nbcast eth0\ndeadtime 30s\n" }, "ha.cf:4: deadtime"},
	} {
		t.Run(tc.desc, func(t *testing.T) {
			in := base
			tc.edit(&in)
			_, err := Convert(in)
			assert.ErrorContains(t, err, tc.want)
		})
	}
}

// Negative control for the golden check: a changed mapping shows up.
func TestGoldenDetectsChange(t *testing.T) {
	r, err := Convert(input(t, cases[0], "/etc/ha.d"))
	require.NoError(t, err)
	r.Config.Timing.DeadTime = 31 * time.Second
	want, err := os.ReadFile(filepath.Join("testdata", "seed.golden"))
	require.NoError(t, err)
	assert.NotEqual(t, string(want), render(t, r))
	_ = importer.Note
}
