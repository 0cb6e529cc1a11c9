package iscsiadm

import (
	"testing"

	"github.com/dell/goiscsi"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// sessionP3 is `iscsiadm -m session -P 3` of open-iscsi 2.1 with two
// sessions to one target (two portals), the second one failed and without
// a disk yet.
const sessionP3 = `iSCSI Transport Class version 2.0-870
version 2.1.8
Target: iqn.2026-11.io.tandem:disk (non-flash)
	Current Portal: 10.200.0.1:3260,1
	Persistent Portal: 10.200.0.1:3260,1
		**********
		Interface:
		**********
		Iface Name: default
		Iface Transport: tcp
		Iface Initiatorname: iqn.1993-08.org.debian:01:node-a
		Iface IPaddress: 10.200.0.2
		Iface HWaddress: default
		Iface Netdev: default
		SID: 1
		iSCSI Connection State: LOGGED IN
		iSCSI Session State: LOGGED_IN
		Internal iscsid Session State: NO CHANGE
		*********
		Timeouts:
		*********
		Recovery Timeout: 5
		Target Reset Timeout: 30
		LUN reset Timeout: 30
		Abort Timeout: 15
		*****
		CHAP:
		*****
		username: node-a
		password: ********
		username_in: <empty>
		password_in: ********
		************************
		Attached SCSI devices:
		************************
		Host Number: 2	State: running
		scsi2 Channel 00 Id 0 Lun: 0
			Attached scsi disk sda		State: running
		scsi2 Channel 00 Id 0 Lun: 1
			Attached scsi disk sdb		State: running
	Current Portal: 10.201.0.1:3260,2
	Persistent Portal: 10.201.0.1:3260,2
		**********
		Interface:
		**********
		Iface Name: default
		Iface Transport: tcp
		SID: 2
		iSCSI Connection State: TRANSPORT WAIT
		iSCSI Session State: FAILED
		Internal iscsid Session State: REOPEN
		************************
		Attached SCSI devices:
		************************
		Host Number: 3	State: running
		scsi3 Channel 00 Id 0 Lun: 0
Target: iqn.2026-11.io.tandem:other (non-flash)
	Current Portal: [fd00::1]:3260,1
		SID: 7
		iSCSI Connection State: LOGGED IN
		iSCSI Session State: LOGGED_IN
`

func TestParseSessions(t *testing.T) {
	ss := ParseSessions(sessionP3)
	require.Len(t, ss, 3)
	a := ss[0]
	assert.Equal(t, "iqn.2026-11.io.tandem:disk", a.Target)
	assert.Equal(t, "10.200.0.1:3260", a.Portal)
	assert.Equal(t, "1", a.SID)
	assert.Equal(t, "iqn.1993-08.org.debian:01:node-a", a.IfaceInitiatorname)
	assert.Equal(t, goiscsi.ISCSITransportNameTCP, a.IfaceTransport)
	assert.True(t, a.LoggedIn())
	assert.Equal(t, 5, a.RecoveryTimeout)
	assert.Equal(t, 2, a.HostNumber)
	assert.Empty(t, a.Password, "secrets are not parsed")
	assert.Equal(t, []Disk{{Host: 2, LUN: 0, Name: "sda", State: "running"}, {Host: 2, LUN: 1, Name: "sdb", State: "running"}}, a.Disks)
	d, ok := a.Disk(1)
	assert.True(t, ok)
	assert.Equal(t, "sdb", d.Name)

	b := ss[1]
	assert.Equal(t, "iqn.2026-11.io.tandem:disk", b.Target)
	assert.Equal(t, "10.201.0.1:3260", b.Portal)
	assert.False(t, b.LoggedIn())
	require.Len(t, b.Disks, 1)
	assert.Empty(t, b.Disks[0].Name, "LUN without an attached disk")

	assert.Equal(t, "[fd00::1]:3260", ss[2].Portal)
	assert.Equal(t, -1, ss[2].HostNumber)
	assert.Nil(t, ParseSessions("iscsiadm: No active sessions.\n"))
}

func TestParseDiscovery(t *testing.T) {
	out := "10.200.0.1:3260,1 iqn.2026-11.io.tandem:disk\n[fd00::1]:3260,1 iqn.2026-11.io.tandem:v6\ngarbage\n10.0.0.1 iqn.x\n"
	assert.Equal(t, []Target{
		{Portal: "10.200.0.1:3260", GroupTag: "1", Target: "iqn.2026-11.io.tandem:disk"},
		{Portal: "[fd00::1]:3260", GroupTag: "1", Target: "iqn.2026-11.io.tandem:v6"},
	}, ParseDiscovery(out))
}

func TestNormalizePortal(t *testing.T) {
	for in, want := range map[string]string{
		"10.0.0.1": "10.0.0.1:3260", "10.0.0.1:3261": "10.0.0.1:3261", "10.0.0.1:3260,1": "10.0.0.1:3260",
		"[fd00::1]": "[fd00::1]:3260", "[fd00::1]:3262": "[fd00::1]:3262",
	} {
		assert.Equal(t, want, NormalizePortal(in), in)
	}
}

func TestRedactArgs(t *testing.T) {
	args := []string{"-m", "node", "-o", "update", "-n", "node.session.auth.password", "-v", "s3cret"}
	assert.Equal(t, "***", redactArgs(args)[7])
	assert.Equal(t, "s3cret", args[7], "the caller's slice is untouched")
	args[5] = "node.session.auth.username"
	assert.Equal(t, "s3cret", redactArgs(args)[7])
	args[5] = "discovery.sendtargets.auth.password_in"
	assert.Equal(t, "***", redactArgs(args)[7])
	assert.Equal(t, "pw=*** and ***", redact("pw=abc and xyz", []string{"abc", "xyz", ""}))
}

func TestOpErrorText(t *testing.T) {
	e := &OpError{Op: "login to iqn.x at 10.0.0.1:3260", ExitCode: 24, Err: ExitAuthFailed,
		Stderr: "iscsiadm: Could not login to [iface: default, target: iqn.x, portal: 10.0.0.1,3260].\n" +
			"iscsiadm: initiator reported error (24 - iSCSI login failed due to authorization failure)\n" +
			"iscsiadm: Could not log into all portals\n"}
	assert.Equal(t, "iscsiadm login to iqn.x at 10.0.0.1:3260: iscsiadm exit 24 (authorization failure): "+
		"initiator reported error (24 - iSCSI login failed due to authorization failure) / Could not log into all portals; "+
		"check the CHAP user and secret on both the initiator and the target", e.Error())
	assert.ErrorIs(t, e, ExitAuthFailed)
	assert.NotErrorIs(t, e, ExitFatalLogin)
	assert.Equal(t, ExitAuthFailed, e.Code())
	assert.Equal(t, "iscsiadm exit 99", ExitCode(99).String())
}

func FuzzParseSessions(f *testing.F) {
	f.Add(sessionP3)
	f.Add("Target: x\n\tCurrent Portal: 1.2.3.4:3260,1\n\t\tscsi2 Channel 00 Id 0 Lun: 0\n\t\t\tAttached scsi disk\n")
	f.Add("\t\tAttached scsi disk sda State: running\nscsi Channel Lun:\n")
	f.Add("Target")       // past crasher: header without a value
	f.Add("Host Number:") // same for the host number
	f.Fuzz(func(t *testing.T, s string) {
		for _, ss := range ParseSessions(s) {
			_ = ss.LoggedIn()
		}
	})
}

func FuzzParseDiscovery(f *testing.F) {
	f.Add("10.200.0.1:3260,1 iqn.2026-11.io.tandem:disk\n")
	f.Add(",  iqn.\n:,1 eui.\n")
	f.Fuzz(func(t *testing.T, s string) {
		for _, tg := range ParseDiscovery(s) {
			if tg.Target == "" || tg.Portal == "" {
				t.Fatalf("empty field in %+v", tg)
			}
		}
	})
}
