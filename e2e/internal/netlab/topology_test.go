package netlab

import (
	"net/netip"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func pfx(s string) netip.Prefix { return netip.MustParsePrefix(s) }

// two is two nodes on a bridge in a third namespace, plus a tap there.
func two() Topology {
	return Topology{
		Prefix:     "tndt",
		Namespaces: []string{"a", "b", "c"},
		Bridges:    []Bridge{{NS: "c", Name: "br", Addr: pfx("10.219.1.100/24")}},
		Veths: []Veth{
			{A: End{NS: "a", Dev: "pub", Addr: pfx("10.219.1.1/24")}, B: End{NS: "c", Dev: "pa", Bridge: "br"}},
			{A: End{NS: "b", Dev: "pub", Addr: pfx("10.219.1.2/24")}, B: End{NS: "c", Dev: "pb", Bridge: "br"}},
		},
		Taps:   []Tap{{NS: "c", Name: "t0", Bridge: "br"}},
		Tables: []Table{{NS: "a", Family: "inet", Name: "f", Body: "  chain in { type filter hook input priority 0; policy accept; udp dport 9 drop; }\n"}},
	}
}

func TestValidate(t *testing.T) {
	require.NoError(t, two().Validate())
	for _, tc := range []struct {
		desc string
		edit func(*Topology)
		want string
	}{
		{"no namespaces", func(t *Topology) { t.Namespaces = nil }, "no namespaces"},
		{"unknown namespace", func(t *Topology) { t.Veths[0].A.NS = "x" }, `namespace "x" is not declared`},
		{"long name", func(t *Topology) { t.Veths[0].A.Dev = "a-very-long-name0" }, "1..15 bytes"},
		{"twice", func(t *Topology) { t.Veths[1].B.Dev = "pa" }, "declared twice"},
		{"unknown bridge", func(t *Topology) { t.Veths[0].B.Bridge = "nope" }, `bridge "nope" is not declared`},
		{"bridge elsewhere", func(t *Topology) { t.Taps[0].NS = "a" }, `bridge "br" is not declared in that namespace`},
		{"tap without bridge", func(t *Topology) { t.Taps[0].Bridge = "" }, "no bridge"},
		{"table without family", func(t *Topology) { t.Tables[0].Family = "" }, "needs a declared namespace"},
	} {
		t.Run(tc.desc, func(t *testing.T) {
			topo := two()
			tc.edit(&topo)
			assert.ErrorContains(t, topo.Validate(), tc.want)
		})
	}
}

func TestPlan(t *testing.T) {
	topo := two()
	var lines []string
	for _, s := range topo.plan(map[string]string{"a": "A", "b": "B", "c": "C"}) {
		lines = append(lines, strings.Join(s, " "))
	}
	assert.Equal(t, []string{
		"ip -n A link set dev lo up",
		"ip -n B link set dev lo up",
		"ip -n C link set dev lo up",
		"ip -n C link add name br type bridge mcast_snooping 0 forward_delay 0",
		"ip link add name pub netns A type veth peer name pa netns C",
		"ip link add name pub netns B type veth peer name pb netns C",
		"ip -n C link set dev pa master br up",
		"ip -n C link set dev pb master br up",
		"ip -n C addr add 10.219.1.100/24 dev br",
		"ip -n C link set dev br up",
		"ip -n A addr add 10.219.1.1/24 dev pub",
		"ip -n A link set dev pub up",
		"ip -n B addr add 10.219.1.2/24 dev pub",
		"ip -n B link set dev pub up",
		"ip -n C tuntap add dev t0 mode tap",
		"ip -n C link set dev t0 master br up",
	}, lines)
}

func TestBuildAndClose(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("netlab: building namespaces needs root")
	}
	l, err := Build(two())
	require.NoError(t, err)
	t.Cleanup(func() { l.Close() })
	a, c := l.Node("a"), l.Node("c")
	for _, n := range []string{"a", "b", "c"} {
		assert.FileExists(t, "/run/netns/"+l.Netns(n))
	}
	assert.True(t, c.HasAddr("br", "10.219.1.100"))
	assert.False(t, c.HasAddr("br", "10.219.1.1"), "negative control")

	// UDP from c to a over the bridge; the nft table drops port 9 only.
	srv, err := a.ListenPacket("udp4", "10.219.1.1:0")
	require.NoError(t, err)
	defer srv.Close()
	cli, err := c.ListenPacket("udp4", "10.219.1.100:0")
	require.NoError(t, err)
	defer cli.Close()
	_, err = cli.WriteTo([]byte("hi"), srv.LocalAddr())
	require.NoError(t, err)
	require.NoError(t, srv.SetReadDeadline(time.Now().Add(5*time.Second)))
	buf := make([]byte, 8)
	k, _, err := srv.ReadFrom(buf)
	require.NoError(t, err)
	assert.Equal(t, "hi", string(buf[:k]))

	require.NoError(t, l.SetTable("a", "inet", "f", ""))
	require.NoError(t, l.SetTable("a", "inet", "f", ""), "removing twice is fine")
	require.NoError(t, l.AddTap(Tap{NS: "c", Name: "t1", Bridge: "br"}))
	require.Error(t, l.AddTap(Tap{NS: "c", Name: "t1", Bridge: "br"}), "a tap declared twice is refused")

	// A node's processes run in its namespace and die with the lab.
	p, err := a.Start("sleeper", time.Second, t.TempDir()+"/log", "sleep", "60")
	require.NoError(t, err)
	_, err = a.Start("sleeper", time.Second, t.TempDir()+"/log", "sleep", "60")
	require.ErrorContains(t, err, "already running")
	require.Eventually(t, func() bool { return len(a.PIDs()) == 1 }, 5*time.Second, 10*time.Millisecond)
	assert.Equal(t, []int{p.PID()}, a.PIDs(), "the PID is sleep's own, not ip's")

	require.NoError(t, l.Close())
	assert.False(t, p.Running())
	for _, n := range []string{"a", "b", "c"} {
		assert.NoFileExists(t, "/run/netns/"+l.Netns(n))
	}
}

func TestBuildFailureTearsDown(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("netlab: building namespaces needs root")
	}
	topo := two()
	// The last step fails, after every namespace and link exists.
	topo.Tables[0].Body = "this is not nft\n"
	// Only this topology's namespaces count: other packages' labs build
	// and tear down theirs while this test runs.
	ours := func() []string {
		var names []string
		entries, _ := os.ReadDir("/run/netns")
		for _, e := range entries {
			if strings.HasPrefix(e.Name(), topo.Prefix) {
				names = append(names, e.Name())
			}
		}
		return names
	}
	before := ours()
	_, err := Build(topo)
	require.ErrorContains(t, err, "nft")
	assert.Equal(t, before, ours(), "no namespace left behind")
}
