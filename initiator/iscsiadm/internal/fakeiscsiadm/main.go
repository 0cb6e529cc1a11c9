// Command fakeiscsiadm imitates open-iscsi's iscsiadm for tests; see
// package iscsiadmtest. It reads and writes the state file named by
// $FAKE_ISCSIADM_STATE.
package main

import (
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/tandem-ha/tandem/initiator/iscsiadm/iscsiadmtest"
)

type args struct {
	mode, typ, portal, target, op, name, value, level, sid string
	login, logout, discover, rescan                        bool
}

func parse(a []string) (args, error) {
	var r args
	for i := 0; i < len(a); i++ {
		next := func() string {
			if i+1 < len(a) {
				i++
				return a[i]
			}
			return ""
		}
		switch a[i] {
		case "-m", "--mode":
			r.mode = next()
		case "-t", "--type":
			r.typ = next()
		case "-p", "--portal":
			r.portal = next()
		case "-T", "--targetname":
			r.target = next()
		case "-o", "--op":
			r.op = next()
		case "-n", "--name":
			r.name = next()
		case "-v", "--value":
			r.value = next()
		case "-P", "--print":
			r.level = next()
		case "-r", "--sid":
			r.sid = next()
		case "-l", "--login":
			r.login = true
		case "-u", "--logout":
			r.logout = true
		case "--discover":
			r.discover = true
		case "-R", "--rescan":
			r.rescan = true
		case "-S", "--show":
		default:
			return r, fmt.Errorf("unrecognized character '%s'", a[i])
		}
	}
	return r, nil
}

func portal(p string) string {
	p, _, _ = strings.Cut(p, ",")
	if p != "" && !strings.Contains(p, ":") {
		p += ":3260"
	}
	return p
}

// commaPortal is how iscsiadm prints a portal in brackets: "IP,PORT".
func commaPortal(p string) string {
	i := strings.LastIndex(p, ":")
	return p[:i] + "," + p[i+1:]
}

type run struct {
	st          *iscsiadmtest.State
	stdout, err strings.Builder
}

func (r *run) errf(format string, a ...any) { fmt.Fprintf(&r.err, "iscsiadm: "+format+"\n", a...) }

func main() {
	path := os.Getenv(iscsiadmtest.StateEnv)
	st, err := iscsiadmtest.Load(path)
	if err != nil {
		fmt.Fprintf(os.Stderr, "iscsiadm: fake: state file %q: %v\n", path, err)
		os.Exit(1)
	}
	st.Calls = append(st.Calls, os.Args[1:])
	r := &run{st: st}
	rc := r.exec(os.Args[1:])
	if err := iscsiadmtest.Save(path, st); err != nil {
		fmt.Fprintf(os.Stderr, "iscsiadm: fake: save state: %v\n", err)
		os.Exit(1)
	}
	os.Stdout.WriteString(r.stdout.String())
	os.Stderr.WriteString(r.err.String())
	os.Exit(rc)
}

func (r *run) scripted(op string) (int, bool) {
	rc, ok := r.st.Fail[op]
	if !ok {
		return 0, false
	}
	if rc < 0 {
		iscsiadmtest.Save(os.Getenv(iscsiadmtest.StateEnv), r.st)
		time.Sleep(time.Hour) // hang until the caller's deadline kills us
	}
	r.errf("%s failed (scripted, exit %d)", op, rc)
	return rc, true
}

func (r *run) exec(a []string) int {
	p, err := parse(a)
	if err != nil {
		r.errf("%v", err)
		return 7
	}
	switch {
	case p.mode == "discoverydb" || p.mode == "discovery":
		return r.discovery(p)
	case p.mode == "node":
		return r.node(p)
	case p.mode == "session":
		return r.session(p)
	}
	r.errf("Invalid mode %q", p.mode)
	return 7
}

func (r *run) findTarget(name, portalAddr string) *iscsiadmtest.Target {
	for i, t := range r.st.Targets {
		if t.Name == name && t.Portal == portalAddr {
			return &r.st.Targets[i]
		}
	}
	return nil
}

func (r *run) discovery(p args) int {
	pt := portal(p.portal)
	if p.typ != "sendtargets" && p.typ != "st" {
		r.errf("Unknown discovery type %q", p.typ)
		return 30
	}
	if r.st.DiscoveryDB == nil {
		r.st.DiscoveryDB = map[string]map[string]string{}
	}
	if p.mode == "discoverydb" && !p.discover {
		switch p.op {
		case "new":
			if rc, bad := r.scripted("new"); bad {
				return rc
			}
			r.st.DiscoveryDB[pt] = map[string]string{"discovery.sendtargets.auth.authmethod": "None"}
			fmt.Fprintf(&r.stdout, "New discovery record for [%s] added.\n", commaPortal(pt))
			return 0
		case "update":
			if rc, bad := r.scripted("update"); bad {
				return rc
			}
			rec, ok := r.st.DiscoveryDB[pt]
			if !ok {
				r.errf("Discovery record [%s] not found.", commaPortal(pt))
				return 21
			}
			rec[p.name] = p.value
			return 0
		}
		r.errf("Invalid operation %q", p.op)
		return 7
	}
	if rc, bad := r.scripted("discovery"); bad {
		return rc
	}
	if r.st.DaemonDown {
		r.errf("can not connect to iSCSI daemon (111)!")
		r.errf("Cannot perform discovery. Initiatorname required.")
		r.errf("Could not perform SendTargets discovery: could not connect to iscsid")
		return 20
	}
	var found []iscsiadmtest.Target
	for _, t := range r.st.Targets {
		if t.Portal == pt {
			found = append(found, t)
		}
	}
	if len(found) == 0 {
		r.errf("cannot make connection to %s: Connection refused", strings.Split(pt, ":")[0])
		r.errf("cannot make connection to %s: Connection refused", strings.Split(pt, ":")[0])
		r.errf("connection login retries (reopen_max) 5 exceeded")
		r.errf("Could not perform SendTargets discovery: encountered connection failure")
		return 4
	}
	rec := r.st.DiscoveryDB[pt]
	if t := found[0]; t.DiscoverySecret != "" {
		if rec["discovery.sendtargets.auth.authmethod"] != "CHAP" || rec["discovery.sendtargets.auth.username"] != t.DiscoveryUser ||
			rec["discovery.sendtargets.auth.password"] != t.DiscoverySecret {
			r.errf("Login failed to authenticate with target ")
			r.errf("discovery login to %s rejected: initiator failed authorization\n", strings.Split(pt, ":")[0])
			r.errf("Could not perform SendTargets discovery: iSCSI login failed due to authorization failure")
			return 24
		}
	}
	if r.st.Nodes == nil {
		r.st.Nodes = map[string]map[string]string{}
	}
	for _, t := range found {
		// Discovery (re)writes the node record from iscsid.conf's
		// defaults: any CHAP set before is gone.
		r.st.Nodes[t.Name+"|"+t.Portal] = map[string]string{"node.session.auth.authmethod": "None",
			"node.session.timeo.replacement_timeout": "120"}
		fmt.Fprintf(&r.stdout, "%s,%s %s\n", t.Portal, t.Tag, t.Name)
	}
	return 0
}

func (r *run) bracket(t, pt string) string {
	return fmt.Sprintf("[iface: default, target: %s, portal: %s]", t, commaPortal(pt))
}

func (r *run) node(p args) int {
	pt := portal(p.portal)
	key := p.target + "|" + pt
	if r.st.Nodes == nil {
		r.st.Nodes = map[string]map[string]string{}
	}
	rec, ok := r.st.Nodes[key]
	switch {
	case p.op == "new":
		if rc, bad := r.scripted("new"); bad {
			return rc
		}
		if !ok {
			r.st.Nodes[key] = map[string]string{"node.session.auth.authmethod": "None", "node.session.timeo.replacement_timeout": "120"}
		}
		fmt.Fprintf(&r.stdout, "New iSCSI node %s added\n", r.bracket(p.target, pt))
		return 0
	case p.op == "delete":
		if !ok {
			r.errf("No records found")
			return 21
		}
		delete(r.st.Nodes, key)
		return 0
	case p.op == "update":
		if rc, bad := r.scripted("update"); bad {
			return rc
		}
		if !ok {
			r.errf("No records found")
			return 21
		}
		rec[p.name] = p.value
		return 0
	case p.login:
		return r.login(p, pt, rec, ok)
	case p.logout:
		if rc, bad := r.scripted("logout"); bad {
			return rc
		}
		for i, s := range r.st.Sessions {
			if s.Target == p.target && s.Portal == pt {
				fmt.Fprintf(&r.stdout, "Logging out of session [sid: %d, target: %s, portal: %s]\n", s.SID, s.Target, commaPortal(pt))
				for _, d := range s.Disks {
					if r.st.DevDir != "" {
						os.Remove(filepath.Join(r.st.DevDir, d))
					}
				}
				r.st.Sessions = append(r.st.Sessions[:i], r.st.Sessions[i+1:]...)
				fmt.Fprintf(&r.stdout, "Logout of [sid: %d, target: %s, portal: %s] successful.\n", s.SID, s.Target, commaPortal(pt))
				return 0
			}
		}
		r.errf("No matching sessions found")
		return 21
	}
	r.errf("Invalid operation %q", p.op)
	return 7
}

func (r *run) login(p args, pt string, rec map[string]string, ok bool) int {
	if rc, bad := r.scripted("login"); bad {
		return rc
	}
	if !ok {
		r.errf("No records found")
		return 21
	}
	for _, s := range r.st.Sessions {
		if s.Target == p.target && s.Portal == pt {
			r.errf("default: 1 session requested, but 1 already present.")
			r.errf("Could not log into all portals")
			return 15
		}
	}
	fmt.Fprintf(&r.stdout, "Logging in to %s\n", r.bracket(p.target, pt))
	fail := func(rc int, why string) int {
		if rc == 20 {
			r.errf("can not connect to iSCSI daemon (111)!")
		}
		r.errf("Could not login to %s.", r.bracket(p.target, pt))
		r.errf("initiator reported error (%d - %s)", rc, why)
		r.errf("Could not log into all portals")
		return rc
	}
	if r.st.DaemonDown {
		return fail(20, "could not connect to iscsid")
	}
	t := r.findTarget(p.target, pt)
	if t == nil {
		return fail(4, "encountered connection failure")
	}
	if t.Secret != "" && (rec["node.session.auth.authmethod"] != "CHAP" ||
		rec["node.session.auth.username"] != t.User || rec["node.session.auth.password"] != t.Secret) {
		return fail(24, "iSCSI login failed due to authorization failure")
	}
	if in := rec["node.session.auth.password_in"]; in != "" && rec["node.session.auth.authmethod"] == "CHAP" &&
		(in != t.MutualSecret || rec["node.session.auth.username_in"] != t.MutualUser) {
		return fail(19, "encountered non-retryable iSCSI login failure")
	}
	r.st.NextSID++
	s := iscsiadmtest.Session{SID: r.st.NextSID, Target: t.Name, Portal: pt, Host: r.st.NextSID + 1, Disks: map[string]string{}, State: "LOGGED_IN"}
	if !r.st.NoDisk {
		for _, lun := range t.LUNs {
			name := "sd" + string(rune('a'+r.st.NextDisk%26))
			r.st.NextDisk++
			s.Disks[strconv.FormatUint(lun, 10)] = name
			if r.st.DevDir != "" {
				os.WriteFile(filepath.Join(r.st.DevDir, name), nil, 0o600)
			}
		}
	}
	r.st.Sessions = append(r.st.Sessions, s)
	fmt.Fprintf(&r.stdout, "Login to %s successful.\n", r.bracket(p.target, pt))
	return 0
}

func (r *run) session(p args) int {
	if rc, bad := r.scripted("session"); bad {
		return rc
	}
	if p.rescan {
		for _, s := range r.st.Sessions {
			if strconv.Itoa(s.SID) == p.sid {
				fmt.Fprintf(&r.stdout, "Rescanning session [sid: %d, target: %s, portal: %s]\n", s.SID, s.Target, commaPortal(s.Portal))
				return 0
			}
		}
		r.errf("Could not get session info for sid %s", p.sid)
		return 2
	}
	if len(r.st.Sessions) == 0 {
		r.errf("No active sessions.")
		return 21
	}
	if p.level == "" {
		for _, s := range r.st.Sessions {
			fmt.Fprintf(&r.stdout, "tcp: [%d] %s,1 %s (non-flash)\n", s.SID, s.Portal, s.Target)
		}
		return 0
	}
	level, _ := strconv.Atoi(p.level)
	fmt.Fprintf(&r.stdout, "iSCSI Transport Class version 2.0-870\nversion 2.1.8\n")
	for _, s := range r.st.Sessions {
		rec := r.st.Nodes[s.Target+"|"+s.Portal]
		b := &r.stdout
		fmt.Fprintf(b, "Target: %s (non-flash)\n", s.Target)
		fmt.Fprintf(b, "\tCurrent Portal: %s,1\n\tPersistent Portal: %s,1\n", s.Portal, s.Portal)
		fmt.Fprintf(b, "\t\t**********\n\t\tInterface:\n\t\t**********\n")
		fmt.Fprintf(b, "\t\tIface Name: default\n\t\tIface Transport: tcp\n")
		fmt.Fprintf(b, "\t\tIface Initiatorname: iqn.1993-08.org.debian:01:fake\n\t\tIface IPaddress: 10.200.0.2\n")
		fmt.Fprintf(b, "\t\tIface HWaddress: default\n\t\tIface Netdev: default\n")
		fmt.Fprintf(b, "\t\tSID: %d\n", s.SID)
		conn := "LOGGED IN"
		if s.State != "LOGGED_IN" {
			conn = "TRANSPORT WAIT"
		}
		fmt.Fprintf(b, "\t\tiSCSI Connection State: %s\n\t\tiSCSI Session State: %s\n", conn, s.State)
		fmt.Fprintf(b, "\t\tInternal iscsid Session State: NO CHANGE\n")
		if level < 2 {
			continue
		}
		fmt.Fprintf(b, "\t\t*********\n\t\tTimeouts:\n\t\t*********\n")
		fmt.Fprintf(b, "\t\tRecovery Timeout: %s\n\t\tTarget Reset Timeout: 30\n\t\tLUN reset Timeout: 30\n\t\tAbort Timeout: 15\n",
			rec["node.session.timeo.replacement_timeout"])
		fmt.Fprintf(b, "\t\t*****\n\t\tCHAP:\n\t\t*****\n")
		user, userIn := rec["node.session.auth.username"], rec["node.session.auth.username_in"]
		if user == "" {
			user = "<empty>"
		}
		if userIn == "" {
			userIn = "<empty>"
		}
		fmt.Fprintf(b, "\t\tusername: %s\n\t\tpassword: ********\n\t\tusername_in: %s\n\t\tpassword_in: ********\n", user, userIn)
		fmt.Fprintf(b, "\t\t************************\n\t\tNegotiated iSCSI params:\n\t\t************************\n")
		fmt.Fprintf(b, "\t\tHeaderDigest: None\n\t\tDataDigest: None\n\t\tMaxRecvDataSegmentLength: 262144\n")
		fmt.Fprintf(b, "\t\tMaxXmitDataSegmentLength: 262144\n\t\tFirstBurstLength: 65536\n\t\tMaxBurstLength: 262144\n")
		fmt.Fprintf(b, "\t\tImmediateData: Yes\n\t\tInitialR2T: Yes\n\t\tMaxOutstandingR2T: 1\n")
		if level < 3 {
			continue
		}
		fmt.Fprintf(b, "\t\t************************\n\t\tAttached SCSI devices:\n\t\t************************\n")
		fmt.Fprintf(b, "\t\tHost Number: %d\tState: running\n", s.Host)
		luns := make([]string, 0, len(s.Disks))
		for l := range s.Disks {
			luns = append(luns, l)
		}
		sort.Strings(luns)
		for _, l := range luns {
			fmt.Fprintf(b, "\t\tscsi%d Channel 00 Id 0 Lun: %s\n", s.Host, l)
			fmt.Fprintf(b, "\t\t\tAttached scsi disk %s\t\tState: running\n", s.Disks[l])
		}
	}
	return 0
}
