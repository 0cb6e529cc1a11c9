package doctor

import (
	"net/netip"
	"os"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/tandem-ha/tandem/ha/config"
	"github.com/tandem-ha/tandem/ha/control"
	"github.com/tandem-ha/tandem/ha/resource"
)

// goodNode is a node where every check passes.
func goodNode() *Facts {
	cfg := config.DefaultConfig()
	cfg.Cluster, cfg.Nodes, cfg.Node, cfg.Peer = "prod", []string{"alpha", "beta"}, "alpha", "beta"
	cfg.KeyFile = "/etc/tandem/authkey"
	cfg.Links = []config.Link{{Name: "lan", Port: 694, Local: netip.MustParseAddr("10.0.0.1")}}
	cfg.Resources = []resource.Spec{
		{Type: "iscsi", Name: "disk", Params: map[string]string{"portal": "10.0.0.9:3260", "target": "iqn.2026-12.io.tandem:mq"}},
		{Type: "vip", Name: "vip", Params: map[string]string{"address": "10.0.0.10/24", "interface": "eth0"}},
		{Type: "script", Name: "svc", Params: map[string]string{"path": "/etc/ha.d/resource.d/svc"}},
		{Type: "mq", Name: "QM1", Params: map[string]string{"shared_mount": "/MQHA"}},
	}
	return &Facts{
		Role: "node", ConfigPath: "/etc/tandem/agent.yaml", Config: &cfg, Uname: "alpha", KernelRelease: "6.1.0-27-amd64",
		Key:      FileFact{Path: "/etc/tandem/authkey", Exists: true, Mode: 0o600},
		SpecErrs: map[string]string{},
		Files:    map[string]FileFact{"/etc/ha.d/resource.d/svc": {Path: "/etc/ha.d/resource.d/svc", Exists: true, Mode: 0o755}},
		Addrs:    map[string][]netip.Prefix{"eth0": {netip.MustParsePrefix("10.0.0.1/24")}, "lo": {netip.MustParsePrefix("127.0.0.1/8")}},
		Agent:    &control.Status{Links: []control.LinkStatus{{Name: "lan", Up: true, RTT: 200 * time.Microsecond}}},
		Iscsid:   true, InitiatorName: "iqn.1993-08.org.debian:01:alpha", PeerInitiatorName: "iqn.1993-08.org.debian:01:beta",
		Logins: []LoginFact{{What: "resource disk", Portal: "10.0.0.9:3260", Target: "iqn.2026-12.io.tandem:mq", CHAP: true, PRTypes: []uint8{1, 3, 5, 6, 7, 8}}},
		MQ: []MQFact{{Name: "QM1", QMgr: "QM1", SharedMount: "/MQHA", Data: "/MQHA/qmgrs/QM1", Log: "/MQHA/log/QM1",
			DataOnMountDev: true, LogOnMountDev: true}},
		Realtime: true, Mlock: true,
	}
}

func find(t *testing.T, rs []Result, name string) Result {
	t.Helper()
	for _, r := range rs {
		if r.Name == name {
			return r
		}
	}
	t.Fatalf("no result %q in %+v", name, rs)
	return Result{}
}

func TestGoodNodePasses(t *testing.T) {
	rs := Run(goodNode())
	assert.False(t, Failed(rs))
	for _, r := range rs {
		if r.Name == "clock" {
			assert.Equal(t, Skip, r.Status, "the offset is not measured: said so")
			continue
		}
		assert.Equal(t, Pass, r.Status, "%s: %s", r.Name, r.Detail)
	}
}

// TestBadNodesFail: each pitfall fails its check with its fix, and only
// that check (the other results stay as on the good node).
func TestBadNodesFail(t *testing.T) {
	tests := []struct {
		desc, check string
		spoil       func(f *Facts)
		detail, fix string
	}{
		{"key file 0644", "key_file", func(f *Facts) { f.Key.Mode = 0o644 }, "mode 0644", "chmod 600 /etc/tandem/authkey"},
		{"key file of another user", "key_file", func(f *Facts) { f.Key.UID = 1000 }, "uid 1000", "chown root:root"},
		{"wrong node name", "node_name", func(f *Facts) { f.Uname = "mqmaster" }, `this host is "mqmaster"`, "uname -n"},
		{"script not executable", "scripts: svc", func(f *Facts) {
			f.Files["/etc/ha.d/resource.d/svc"] = FileFact{Path: "/etc/ha.d/resource.d/svc", Exists: true, Mode: 0o644}
		}, "is not executable (mode 0644)", "chmod +x /etc/ha.d/resource.d/svc"},
		{"script missing", "scripts: svc", func(f *Facts) { f.Files = map[string]FileFact{} }, "does not exist", "install the script"},
		{"vip outside the subnet", "vip: vip", func(f *Facts) { f.Config.Resources[1].Params["address"] = "10.1.0.10/24" },
			"10.1.0.10/24 is in no subnet of eth0 (its addresses: 10.0.0.1/24)", "pick a free address"},
		{"duplicate initiator name", "initiator_name", func(f *Facts) { f.PeerInitiatorName = f.InitiatorName },
			"is also the peer's", "iscsi-iname"},
		{"initiator name unset", "initiator_name", func(f *Facts) { f.InitiatorName = "" }, "sets no InitiatorName", "iscsi-iname"},
		{"iscsid down", "iscsid", func(f *Facts) { f.Iscsid = false }, "not running", "systemctl enable --now iscsid"},
		{"wrong chap", "target_login: resource disk", func(f *Facts) { f.Logins[0].Err = "login: authentication failure" },
			"authentication failure", "secret_file match the target's CHAP"},
		{"no type 5", "target_login: resource disk", func(f *Facts) { f.Logins[0].PRTypes = []uint8{1, 3} },
			"does not offer Write Exclusive, Registrants Only", "type 5"},
		{"mq data on local disk", "mq_shared: QM1", func(f *Facts) { f.MQ[0].Data = "/var/mqm/qmgrs/QM1" },
			"data path /var/mqm/qmgrs/QM1 outside the shared filesystem /MQHA", "crtmqm -md /MQHA/qmgrs -ld /MQHA/log QM1"},
		{"mq log through a symlink", "mq_shared: QM1", func(f *Facts) { f.MQ[0].LogOnMountDev = false },
			"log path /MQHA/log/QM1 outside", "crtmqm"},
		{"link down", "links: lan", func(f *Facts) { f.Agent.Links[0].Up = false }, "no heartbeat of beta", "UDP port 694"},
		{"link address missing", "links: lan", func(f *Facts) { f.Addrs["eth0"] = []netip.Prefix{netip.MustParsePrefix("10.0.0.7/24")} },
			"10.0.0.1 is on no interface", "ip addr add"},
		{"old kernel", "kernel", func(f *Facts) { f.KernelRelease = "2.6.32-754.el6.x86_64" }, "older than 3.2", "RHEL 7+"},
		{"bad resource", "resources: svc", func(f *Facts) { f.SpecErrs["svc"] = "params.agrs is not a script parameter" }, "agrs", "tandem-agent params script"},
	}
	for _, tc := range tests {
		t.Run(tc.desc, func(t *testing.T) {
			f := goodNode()
			tc.spoil(f)
			rs := Run(f)
			require.True(t, Failed(rs))
			r := find(t, rs, tc.check)
			assert.Equal(t, Fail, r.Status)
			assert.Contains(t, r.Detail, tc.detail)
			assert.Contains(t, r.Fix, tc.fix)
			for _, o := range rs {
				if o.Name != tc.check && o.Status == Fail {
					t.Errorf("%s also failed: %s", o.Name, o.Detail)
				}
			}
		})
	}
}

func TestWarnings(t *testing.T) {
	f := goodNode()
	f.Realtime, f.Mlock, f.PeerInitiatorName = false, false, ""
	rs := Run(f)
	assert.False(t, Failed(rs), "warnings do not fail the run")
	assert.Equal(t, Warn, find(t, rs, "realtime: scheduling").Status)
	assert.Equal(t, Warn, find(t, rs, "realtime: mlock").Status)
	assert.Equal(t, Warn, find(t, rs, "initiator_name").Status)
}

func TestNoConfigSkipsWhatNeedsIt(t *testing.T) {
	f := &Facts{Role: "node", ConfigPath: "/etc/tandem/agent.yaml", ConfigErr: "read config: no such file", KernelRelease: "6.1.0"}
	rs := Run(f)
	assert.True(t, Failed(rs))
	assert.Equal(t, Fail, find(t, rs, "config").Status)
	assert.Equal(t, Skip, find(t, rs, "key_file").Status)
	assert.Equal(t, Pass, find(t, rs, "kernel").Status)
}

// TestGatherKeyAndScript runs the probes on files the test made: a 0644
// key file and a non-executable script fail, fixed ones pass.
func TestGatherKeyAndScript(t *testing.T) {
	dir := t.TempDir()
	key, script := dir+"/authkey", dir+"/svc"
	require.NoError(t, os.WriteFile(key, []byte("0123456789abcdef0123"), 0o644))
	require.NoError(t, os.WriteFile(script, []byte("#!/bin/sh\n"), 0o644))
	cfg := config.Config{Cluster: "doc", Nodes: []string{"alpha", "beta"}, Node: "alpha", KeyFile: key,
		Links:     []config.Link{{Name: "lo", Mode: config.ModeUnicast, Addresses: map[string]string{"alpha": "127.0.0.1", "beta": "127.0.0.2"}}},
		Resources: []resource.Spec{{Type: "script", Name: "svc", Params: map[string]string{"path": script}}},
	}
	path := dir + "/agent.yaml"
	require.NoError(t, cfg.WriteFile(path))
	opt := Options{Role: "node", ConfigPath: path, Node: "alpha", Socket: dir + "/none.sock", InitiatorNameFile: dir + "/none"}
	rs := Run(Gather(t.Context(), opt))
	assert.Equal(t, Fail, find(t, rs, "key_file").Status)
	assert.Equal(t, Fail, find(t, rs, "scripts: svc").Status)
	assert.Equal(t, Skip, find(t, rs, "links: lo").Status, "no agent: reachability unknown, said so")

	require.NoError(t, os.Chmod(key, 0o600))
	require.NoError(t, os.Chmod(script, 0o755))
	rs = Run(Gather(t.Context(), opt))
	assert.Equal(t, Pass, find(t, rs, "key_file").Status)
	assert.Equal(t, Pass, find(t, rs, "scripts: svc").Status)
	assert.Equal(t, Pass, find(t, rs, "resources").Status)
}
