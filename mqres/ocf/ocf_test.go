package ocf

import (
	"bytes"
	"encoding/xml"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/tandem-ha/tandem/mqres"
	"github.com/tandem-ha/tandem/mqres/mqrestest"
)

func envOf(kv map[string]string) Env {
	return func(k string) (string, bool) { v, ok := kv[k]; return v, ok }
}

func run(action string, kv map[string]string) (int, string, string) {
	var out, errb bytes.Buffer
	rc := Run(action, envOf(kv), &out, &errb)
	return rc, out.String(), errb.String()
}

func TestMetadata(t *testing.T) {
	rc, out, _ := run("meta-data", nil)
	require.Equal(t, Success, rc)
	var md struct {
		Name   string `xml:"name,attr"`
		Params []struct {
			Name     string `xml:"name,attr"`
			Required string `xml:"required,attr"`
		} `xml:"parameters>parameter"`
		Actions []struct {
			Name string `xml:"name,attr"`
		} `xml:"actions>action"`
	}
	require.NoError(t, xml.Unmarshal([]byte(out), &md))
	assert.Equal(t, "ibmmq", md.Name)
	var names, actions []string
	for _, p := range md.Params {
		names = append(names, p.Name)
	}
	for _, a := range md.Actions {
		actions = append(actions, a.Name)
	}
	assert.Equal(t, []string{"qmgr", "mqbin", "user", "shared_mount", "start_timeout", "stop_timeout", "end_timeout", "monitor_timeout"}, names)
	assert.Equal(t, "1", md.Params[0].Required)
	assert.ElementsMatch(t, []string{"start", "stop", "monitor", "validate-all", "meta-data"}, actions)
}

func TestExitCodes(t *testing.T) {
	missing := t.TempDir()
	tests := []struct {
		desc   string
		action string
		env    map[string]string
		want   int
	}{
		{"unknown action", "promote", nil, ErrUnimplemented},
		{"no action", "", nil, ErrUnimplemented},
		{"usage", "usage", nil, Success},
		{"no qmgr", "validate-all", nil, ErrConfigured},
		{"bad qmgr", "start", map[string]string{"OCF_RESKEY_qmgr": "QM 1"}, ErrConfigured},
		{"bad timeout", "start", map[string]string{"OCF_RESKEY_qmgr": "QM1", "OCF_RESKEY_start_timeout": "soon"}, ErrConfigured},
		{"not installed", "validate-all", map[string]string{"OCF_RESKEY_qmgr": "QM1", "OCF_RESKEY_mqbin": missing}, ErrInstalled},
		{"not installed: start", "start", map[string]string{"OCF_RESKEY_qmgr": "QM1", "OCF_RESKEY_mqbin": missing}, ErrInstalled},
		{"not installed: probe", "monitor", map[string]string{"OCF_RESKEY_qmgr": "QM1", "OCF_RESKEY_mqbin": missing, "OCF_RESKEY_CRM_meta_interval": "0"}, NotRunning},
		{"not installed: recurring monitor", "monitor", map[string]string{"OCF_RESKEY_qmgr": "QM1", "OCF_RESKEY_mqbin": missing, "OCF_RESKEY_CRM_meta_interval": "20000"}, ErrInstalled},
		{"not installed: stop", "stop", map[string]string{"OCF_RESKEY_qmgr": "QM1", "OCF_RESKEY_mqbin": missing}, Success},
	}
	for _, tt := range tests {
		t.Run(tt.desc, func(t *testing.T) {
			rc, _, stderr := run(tt.action, tt.env)
			assert.Equal(t, tt.want, rc, stderr)
		})
	}
}

func TestConfig(t *testing.T) {
	cfg, err := Config(envOf(map[string]string{"OCF_RESKEY_qmgr": "QM1", "OCF_RESKEY_CRM_meta_timeout": "20000"}))
	require.NoError(t, err)
	assert.Equal(t, "mqm", cfg.User, "default run-as user")
	assert.Equal(t, "/opt/mqm/bin", cfg.BinDir)
	assert.Equal(t, 18*time.Second, cfg.StartTimeout)
	assert.Equal(t, 10*time.Second, cfg.MonitorTimeout)

	cfg, err = Config(envOf(map[string]string{"OCF_RESKEY_qmgr": "QM1", "OCF_RESKEY_user": "", "OCF_RESKEY_start_timeout": "300", "OCF_RESKEY_CRM_meta_timeout": "20000"}))
	require.NoError(t, err)
	assert.Equal(t, "", cfg.User, "empty means no switch")
	assert.Equal(t, 300*time.Second, cfg.StartTimeout, "explicit beats the operation timeout")
	var _ mqres.Config = cfg
}

// TestMain removes the MQ stand-in that mqrestest built.
func TestMain(m *testing.M) { os.Exit(mqrestest.Run(m)) }

// TestOCFTester runs Debian's ocf-tester (resource-agents) against the agent,
// through the shell wrapper, with the MQ stand-in as MQ.
func TestOCFTester(t *testing.T) {
	tester, err := exec.LookPath("ocf-tester")
	if err != nil {
		if os.Getenv("MQRES_REQUIRE_OCF_TESTER") != "" {
			t.Fatal("ocf-tester not found: apt-get install -y resource-agents")
		}
		t.Skip("ocf-tester not found (apt-get install -y resource-agents); `make mqres-test` installs it")
	}
	// ocf-tester checks the agent as user nobody: every directory on the
	// way must be world-readable, which t.TempDir's are not.
	dir := t.TempDir()
	for d := dir; d != os.TempDir() && d != "/"; d = filepath.Dir(d) {
		require.NoError(t, os.Chmod(d, 0o755))
	}
	bin := mqrestest.Bin(t)
	agentBin := filepath.Join(dir, "ocf-ibmmq")
	out, err := exec.Command("go", "build", "-o", agentBin, "github.com/tandem-ha/tandem/mqres/cmd/ocf-ibmmq").CombinedOutput()
	require.NoError(t, err, "go build ocf-ibmmq: %s", out)
	agentDir := filepath.Join(dir, "resource.d", "tandem")
	require.NoError(t, os.MkdirAll(agentDir, 0o755))
	wrapper, err := os.ReadFile("ibmmq")
	require.NoError(t, err)
	agent := filepath.Join(agentDir, "ibmmq")
	require.NoError(t, os.WriteFile(agent, wrapper, 0o755))

	env := append(os.Environ(),
		"MQSTUB_PREFIX="+filepath.Join(dir, "var-mqm"), "MQSTUB_HOST=node1",
		"TANDEM_OCF_IBMMQ="+agentBin)
	crt := exec.Command(filepath.Join(bin, "crtmqm"), "-md", filepath.Join(dir, "MQHA", "qmgrs"), "-ld", filepath.Join(dir, "MQHA", "log"), "QM1")
	crt.Env = env
	out, err = crt.CombinedOutput()
	require.NoError(t, err, "%s", out)
	t.Cleanup(func() {
		procs, _ := mqres.ProcFS{}.Find("QM1")
		for _, p := range procs {
			mqres.ProcFS{}.Kill(p.PID)
		}
	})

	cmd := exec.Command(tester, "-v", "-n", "mq", "-o", "qmgr=QM1", "-o", "mqbin="+bin, "-o", "user=", agent)
	cmd.Env = env
	out, err = cmd.CombinedOutput()
	t.Logf("ocf-tester:\n%s", out)
	require.NoError(t, err)
	assert.Contains(t, string(out), "passed all tests")
	assert.NotContains(t, strings.ToLower(string(out)), "* rc=")
}
