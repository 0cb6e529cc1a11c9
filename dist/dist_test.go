package dist

import (
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/tandem-ha/tandem/ha/agent"
	haconfig "github.com/tandem-ha/tandem/ha/config"
	_ "github.com/tandem-ha/tandem/ha/resource/all" // the sample agent.yaml uses vip
	targetconfig "github.com/tandem-ha/tandem/target/config"
)

func TestPackageVersion(t *testing.T) {
	at := time.Date(2026, 12, 6, 2, 58, 56, 0, time.UTC)
	for _, tc := range []struct{ desc, in, want string }{
		{desc: "tag", in: "v1.2.3", want: "1.2.3"},
		{desc: "after a tag", in: "v1.2.3-4-gabc1234", want: "1.2.3+4.gabc1234"},
		{desc: "after a tag, dirty", in: "v1.2.3-4-gabc1234-dirty", want: "1.2.3+4.gabc1234.dirty"},
		{desc: "tag, dirty", in: "v1.2.3-dirty", want: "1.2.3+dirty"},
		{desc: "no tag", in: "2cf553f", want: "0.0.0+git20261206025856.2cf553f"},
		{desc: "no tag, dirty", in: "2cf553f-dirty", want: "0.0.0+git20261206025856.2cf553f.dirty"},
	} {
		t.Run(tc.desc, func(t *testing.T) {
			got, err := PackageVersion(tc.in, at)
			require.NoError(t, err)
			assert.Equal(t, tc.want, got)
			assert.Regexp(t, `^[0-9][0-9A-Za-z.+~]*$`, got, "dpkg and rpm both accept it")
		})
	}
	_, err := PackageVersion("release one", at)
	assert.ErrorContains(t, err, "tag the commit")
}

func TestEpoch(t *testing.T) {
	got, err := Epoch("1796525701\n")
	require.NoError(t, err)
	assert.Equal(t, int64(1796525701), got.Unix())
	_, err = Epoch("yesterday")
	assert.ErrorContains(t, err, "git log -1 --format=%ct")
}

func TestPackagesShipNoTestDouble(t *testing.T) {
	for _, b := range Binaries {
		assert.NotContains(t, b.Pkg, "internal", "%s: test doubles live under internal/", b.Name)
		assert.Contains(t, b.Pkg, "/cmd/", b.Name)
	}
	assert.False(t, shipsTestDouble([]Binary{{Name: "mq", Pkg: "./mqres/cmd/mq"}}))
	assert.True(t, shipsTestDouble([]Binary{{Name: "mqstub", Pkg: "./mqres/internal/mqstub"}}), "negative control")
	assert.False(t, shipsTestDouble(Binaries))
}

func shipsTestDouble(bs []Binary) bool {
	for _, b := range bs {
		if strings.Contains(b.Pkg, "/internal/") || strings.Contains(b.Pkg, "test") || strings.Contains(b.Name, "stub") {
			return true
		}
	}
	return false
}

func TestPackagesLayout(t *testing.T) {
	pkgs := Packages(map[string][]string{"tandem-target": {"tandem-target.1"}, "tandem-agent": {"tandem-agent.1"}, "tandemctl": {"tandemctl.1", "tandemctl-status.1"}})
	byName := map[string]Package{}
	for _, p := range pkgs {
		byName[p.Name] = p
		dst := map[string]bool{}
		for _, f := range p.Files {
			key := f.Packager + f.Dst
			assert.False(t, dst[key], "%s: %s twice", p.Name, f.Dst)
			dst[key] = true
			if strings.HasPrefix(f.Dst, "/etc/tandem/") {
				assert.Equal(t, typeConfig, f.Type, "%s: upgrades must keep the user's %s", p.Name, f.Dst)
			}
		}
	}
	has := func(pkg, dst string) bool {
		for _, f := range byName[pkg].Files {
			if f.Dst == dst {
				return true
			}
		}
		return false
	}
	for pkg, dsts := range map[string][]string{
		"tandem-target": {"/usr/sbin/tandem-target", "/usr/lib/systemd/system/tandem-target.service", "/etc/tandem/target.yaml", "/var/lib/tandem", "/usr/share/man/man1/tandem-target.1.gz"},
		"tandem-agent": {"/usr/sbin/tandem-agent", "/usr/lib/systemd/system/tandem-agent.service", "/etc/tandem/agent.yaml",
			"/usr/lib/ocf/resource.d/tandem/ibmmq", "/usr/lib/tandem/ocf-ibmmq", "/etc/ha.d/resource.d/mq"},
		"tandemctl": {"/usr/bin/tandemctl", "/usr/share/man/man1/tandemctl-status.1.gz", "/usr/share/bash-completion/completions/tandemctl"},
	} {
		for _, d := range dsts {
			assert.True(t, has(pkg, d), "%s lacks %s", pkg, d)
		}
	}
}

// The restart policy cannot undo a self-fence: the status the agent exits
// with when fenced is the one systemd never restarts.
func TestAgentUnitNeverRestartsAFencedNode(t *testing.T) {
	unit := readAsset(t, "systemd/tandem-agent.service")
	assert.Equal(t, []string{strconv.Itoa(agent.ExitFenced)}, directive(unit, "RestartPreventExitStatus"))
	assert.Equal(t, []string{"on-failure"}, directive(unit, "Restart"))
	assert.Equal(t, []string{"notify"}, directive(unit, "Type"))
	// The guard must outlive the agent in the cgroup to release the group.
	assert.Equal(t, []string{"control-group"}, directive(unit, "KillMode"))
	assert.Empty(t, directive(unit, "ProtectSystem"), "the agent's mounts must be the host's")
	assert.Empty(t, directive("Restart=always\n", "RestartPreventExitStatus"), "negative control")
}

func TestTargetUnitKeepsFewCapabilities(t *testing.T) {
	unit := readAsset(t, "systemd/tandem-target.service")
	assert.Equal(t, []string{"CAP_NET_BIND_SERVICE"}, directive(unit, "CapabilityBoundingSet"))
	assert.Equal(t, []string{"notify"}, directive(unit, "Type"))
}

func directive(unit, key string) []string {
	var vs []string
	for _, m := range regexp.MustCompile(`(?m)^`+key+`=(.*)$`).FindAllStringSubmatch(unit, -1) {
		vs = append(vs, m[1])
	}
	return vs
}

func readAsset(t *testing.T, p string) string {
	b, err := assets.ReadFile(p)
	require.NoError(t, err)
	return string(b)
}

func TestDefaultConfigsLoad(t *testing.T) {
	dir := t.TempDir()
	tp := filepath.Join(dir, "target.yaml")
	require.NoError(t, os.WriteFile(tp, []byte(readAsset(t, "config/target.yaml")), 0o644))
	cfg, err := targetconfig.Load(tp)
	require.NoError(t, err)
	assert.Equal(t, []string{"127.0.0.1:3260"}, cfg.Listen, "loopback until told otherwise")

	key := filepath.Join(dir, "authkey")
	require.NoError(t, os.WriteFile(key, []byte("0123456789abcdef0123456789abcdef"), 0o600))
	ap := filepath.Join(dir, "agent.yaml")
	y := strings.Replace(readAsset(t, "config/agent.yaml"), "/etc/tandem/authkey", key, 1)
	require.NoError(t, os.WriteFile(ap, []byte(y), 0o644))
	acfg, err := haconfig.Load(ap, haconfig.Options{Node: "alpha"})
	require.NoError(t, err)
	assert.Equal(t, "beta", acfg.Peer)
}
