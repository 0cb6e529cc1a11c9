package iscsiadm

import (
	"bufio"
	"strconv"
	"strings"

	"github.com/dell/goiscsi"
)

// Target names one node record: goiscsi's type (Portal "IP:PORT",
// GroupTag, Target IQN), so code written against goiscsi keeps working.
type Target = goiscsi.ISCSITarget

// ParseDiscovery parses the output of sendtargets discovery, one
// "IP:PORT,TPGT IQN" per line (e.g. "10.200.0.1:3260,1
// iqn.2026-11.io.tandem:disk"). IPv6 portals come as "[::1]:3260,1".
// Lines that do not look like that are skipped.
func ParseDiscovery(out string) []Target {
	var ts []Target
	for _, line := range strings.Split(out, "\n") {
		f := strings.Fields(line)
		if len(f) < 2 || !strings.HasPrefix(f[1], "iqn.") && !strings.HasPrefix(f[1], "eui.") && !strings.HasPrefix(f[1], "naa.") {
			continue
		}
		portal, tag, _ := strings.Cut(f[0], ",")
		if !strings.Contains(portal, ":") {
			continue
		}
		ts = append(ts, Target{Portal: portal, GroupTag: tag, Target: f[1]})
	}
	return ts
}

// Disk is one LUN of a session with the SCSI disk the kernel attached.
type Disk struct {
	// Host, Channel, ID and LUN are the SCSI address (scsiH:C:I:L).
	Host, Channel, ID int
	LUN               uint64
	// Name is the block device name ("sda"), empty while none is attached.
	Name string
	// State is the SCSI device state ("running", "offline", "blocked"...).
	State string
}

// Session is one iSCSI session as `iscsiadm -m session -P 3` shows it:
// goiscsi's ISCSISession (Target, Portal, SID, iface and states) plus the
// attached disks. Secrets are not parsed.
type Session struct {
	goiscsi.ISCSISession
	// HostNumber is the SCSI host of the session, -1 when unknown.
	HostNumber int
	// RecoveryTimeout is the replacement timeout in effect, in seconds
	// (-1 when not shown).
	RecoveryTimeout int
	Disks           []Disk
}

// LoggedIn reports whether the session and its connection are up.
func (s Session) LoggedIn() bool {
	return s.ISCSISessionState == goiscsi.ISCSISessionStateLOGGEDIN &&
		(s.ISCSIConnectionState == "" || s.ISCSIConnectionState == goiscsi.ISCSIConnectionStateLOGGEDIN)
}

// Disk returns the disk of lun.
func (s Session) Disk(lun uint64) (Disk, bool) {
	for _, d := range s.Disks {
		if d.LUN == lun {
			return d, true
		}
	}
	return Disk{}, false
}

// ParseSessions parses `iscsiadm -m session -P 3` (open-iscsi
// usr/session_info.c). It accepts -P 1 and -P 2 output too (no disks).
//
//	Target: iqn.2026-11.io.tandem:disk (non-flash)
//		Current Portal: 10.200.0.1:3260,1
//		...
//		SID: 1
//		iSCSI Connection State: LOGGED IN
//		iSCSI Session State: LOGGED_IN
//		...
//		Recovery Timeout: 120
//		...
//		Host Number: 2	State: running
//		scsi2 Channel 00 Id 0 Lun: 0
//			Attached scsi disk sda		State: running
//
// Several sessions can share one "Target:" header (one per portal or
// iface): each "Current Portal:" after a complete session starts a new one.
func ParseSessions(out string) []Session {
	var (
		res    []Session
		cur    *Session
		target string
		disk   *Disk
	)
	flush := func() {
		if cur != nil {
			res = append(res, *cur)
		}
		cur, disk = nil, nil
	}
	start := func() {
		flush()
		cur = &Session{HostNumber: -1, RecoveryTimeout: -1}
		cur.Target = target
	}
	sc := bufio.NewScanner(strings.NewReader(out))
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		key, val, _ := strings.Cut(line, ":")
		val = strings.TrimSpace(val)
		switch {
		case key == "Target":
			flush()
			target = firstField(val)
		case key == "Current Portal":
			if cur == nil || cur.Portal != "" {
				start()
			}
			cur.Portal, _, _ = strings.Cut(val, ",")
		case cur == nil:
		case key == "Iface Transport":
			cur.IfaceTransport = goiscsi.ISCSITransportName(val)
		case key == "Iface Initiatorname":
			cur.IfaceInitiatorname = val
		case key == "Iface IPaddress":
			cur.IfaceIPaddress = val
		case key == "SID":
			cur.SID = val
		case key == "iSCSI Connection State":
			cur.ISCSIConnectionState = goiscsi.ISCSIConnectionState(val)
		case key == "iSCSI Session State":
			cur.ISCSISessionState = goiscsi.ISCSISessionState(val)
		case key == "Recovery Timeout":
			if n, err := strconv.Atoi(val); err == nil {
				cur.RecoveryTimeout = n
			}
		case key == "Host Number":
			if n, err := strconv.Atoi(firstField(val)); err == nil {
				cur.HostNumber = n
			}
		case strings.HasPrefix(line, "scsi") && strings.Contains(line, " Channel "):
			// "scsi2 Channel 00 Id 0 Lun: 0"
			f := strings.Fields(strings.ReplaceAll(line, ":", " "))
			if len(f) < 7 {
				continue
			}
			d := Disk{}
			d.Host, _ = strconv.Atoi(strings.TrimPrefix(f[0], "scsi"))
			d.Channel, _ = strconv.Atoi(f[2])
			d.ID, _ = strconv.Atoi(f[4])
			d.LUN, _ = strconv.ParseUint(f[6], 10, 64)
			cur.Disks = append(cur.Disks, d)
			disk = &cur.Disks[len(cur.Disks)-1]
		case strings.HasPrefix(line, "Attached scsi disk") && disk != nil:
			// "Attached scsi disk sda		State: running"
			f := strings.Fields(line)
			if len(f) >= 4 {
				disk.Name = f[3]
			}
			if _, st, ok := strings.Cut(line, "State:"); ok {
				disk.State = strings.TrimSpace(st)
			}
		}
	}
	flush()
	return res
}

// firstField returns the first space-separated word of s, or "".
func firstField(s string) string {
	f := strings.Fields(s)
	if len(f) == 0 {
		return ""
	}
	return f[0]
}
