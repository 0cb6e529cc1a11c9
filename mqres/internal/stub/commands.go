package stub

import (
	"bufio"
	"flag"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"
)

// IBM MQ exit codes the stand-in reproduces.
const (
	rcOK           = 0
	rcRunning      = 5
	rcExists       = 8
	rcNotExist     = 16
	rcBadArgs      = 36
	rcNotAvailable = 40
	rcActiveNoSb   = 43
	rcStorage      = 69
	rcUnexpected   = 71
	rcNameError    = 72
)

// Main dispatches on argv[0]'s basename (multi-call, as installed through
// symlinks) or, for the mqstub binary itself, on the first argument.
func Main(args []string) int {
	name := filepath.Base(args[0])
	if name == "mqstub" || name == "stub" {
		if len(args) < 2 {
			fmt.Fprintln(os.Stderr, "usage: mqstub crtmqm|addmqinf|dspmqinf|strmqm|endmqm|dspmq|put|get|install DIR ...")
			return rcBadArgs
		}
		args = args[1:]
		name = args[0]
	}
	e := newEnv()
	if name != "amqzmuc0" {
		e.logInvocation(append([]string{name}, args[1:]...))
	}
	if e.faultList("hang")[name] {
		time.Sleep(time.Hour)
	}
	out := os.Stdout
	switch name {
	case "crtmqm":
		return crtmqm(e, out, args[1:])
	case "addmqinf":
		return addmqinf(e, out, args[1:])
	case "dspmqinf":
		return dspmqinf(e, out, args[1:])
	case "dspmq":
		return dspmq(e, out, args[1:])
	case "strmqm":
		return strmqm(e, out, args[1:])
	case "endmqm":
		return endmqm(e, out, args[1:])
	case "amqzxma0":
		return daemon(e, args[1:])
	case "amqzmuc0":
		io.Copy(io.Discard, os.Stdin) // lives until its parent goes
		return 0
	case "put":
		return putCmd(e, out, args[1:])
	case "get":
		return getCmd(e, out, args[1:])
	case "install":
		return install(args[1:])
	}
	fmt.Fprintf(os.Stderr, "mqstub: unknown command %q\n", name)
	return rcBadArgs
}

// Commands are the multi-call names install links.
var Commands = []string{"crtmqm", "addmqinf", "dspmqinf", "dspmq", "strmqm", "endmqm", "amqzxma0", "amqzmuc0"}

// install DIR links every command name in DIR to this executable.
func install(args []string) int {
	if len(args) != 1 {
		fmt.Fprintln(os.Stderr, "usage: mqstub install DIR")
		return rcBadArgs
	}
	self, err := os.Executable()
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return rcUnexpected
	}
	for _, c := range Commands {
		p := filepath.Join(args[0], c)
		os.Remove(p)
		if err := os.Symlink(self, p); err != nil {
			fmt.Fprintln(os.Stderr, err)
			return rcUnexpected
		}
	}
	return rcOK
}

func qmArg(fs *flag.FlagSet, args []string) (string, bool) {
	// MQ takes the queue manager name last, after the flags.
	if err := fs.Parse(args); err != nil || fs.NArg() != 1 {
		return "", false
	}
	return fs.Arg(0), true
}

func notKnown(out io.Writer) int {
	fmt.Fprintln(out, "AMQ7048E: The queue manager name is either not valid or not known.")
	return rcNameError
}

func crtmqm(e env, out io.Writer, args []string) int {
	fs := flag.NewFlagSet("crtmqm", flag.ContinueOnError)
	md := fs.String("md", filepath.Join(e.prefix, "qmgrs"), "data path parent")
	ld := fs.String("ld", filepath.Join(e.prefix, "log"), "log path parent")
	fs.String("q", "", "ignored")
	fs.String("u", "", "ignored")
	qm, ok := qmArg(fs, args)
	if !ok {
		fmt.Fprintln(out, "AMQ7002E? usage: crtmqm [-md DataPath] [-ld LogPath] QMgrName")
		return rcBadArgs
	}
	if _, ok := e.lookup(qm); ok {
		fmt.Fprintln(out, "AMQ8110E: IBM MQ queue manager already exists.")
		return rcExists
	}
	data, log := filepath.Join(*md, qm), filepath.Join(*ld, qm)
	if _, err := os.Stat(data); err == nil {
		fmt.Fprintf(out, "AMQ8110E: IBM MQ queue manager already exists (directory %s).\n", data)
		return rcExists
	}
	for _, d := range []string{data, log} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			fmt.Fprintf(out, "AMQ6235E: Directory '%s' missing: %v\n", d, err)
			return rcStorage
		}
	}
	ini := fmt.Sprintf("#* Module Name: qm.ini (IBM MQ stand-in, not MQ)\nLog:\n   LogPrimaryFiles=3\n   LogType=CIRCULAR\n   LogPath=%s/\n", log)
	if err := os.WriteFile(filepath.Join(data, "qm.ini"), []byte(ini), 0o644); err != nil {
		fmt.Fprintln(out, "AMQ6235E:", err)
		return rcStorage
	}
	s := stanza{"Name": qm, "Prefix": e.prefix, "Directory": qm, "InstallationName": "Installation1"}
	if *md != filepath.Join(e.prefix, "qmgrs") {
		s["DataPath"] = data
	}
	if err := e.addStanza(s); err != nil {
		fmt.Fprintln(out, "AMQ6235E:", err)
		return rcUnexpected
	}
	fmt.Fprintf(out, "IBM MQ queue manager '%s' created.\nDirectory '%s' created.\nThe queue manager is associated with installation 'Installation1'.\nCreating or replacing default objects for queue manager '%s'.\nDefault objects statistics : 83 created. 0 replaced. 0 failed.\nCompleting setup.\nSetup completed.\n", qm, data, qm)
	return rcOK
}

func addmqinf(e env, out io.Writer, args []string) int {
	s := stanza{}
	for i := 0; i+1 < len(args); i += 2 {
		switch args[i] {
		case "-s": // stanza type: QueueManager is the only one
		case "-v":
			k, v, ok := strings.Cut(args[i+1], "=")
			if !ok {
				fmt.Fprintln(out, "usage: addmqinf [-s QueueManager] -v Name=Value ...")
				return rcBadArgs
			}
			s[k] = v
		default:
			fmt.Fprintln(out, "usage: addmqinf [-s QueueManager] -v Name=Value ...")
			return rcBadArgs
		}
	}
	if s["Name"] == "" || s["Directory"] == "" {
		fmt.Fprintln(out, "AMQ7017? addmqinf needs -v Name= and -v Directory=")
		return rcBadArgs
	}
	if _, ok := e.lookup(s["Name"]); ok {
		fmt.Fprintln(out, "AMQ8110E: IBM MQ queue manager already exists.")
		return rcExists
	}
	if err := e.addStanza(s); err != nil {
		fmt.Fprintln(out, err)
		return rcUnexpected
	}
	fmt.Fprintln(out, "IBM MQ configuration information added.")
	return rcOK
}

func dspmqinf(e env, out io.Writer, args []string) int {
	fs := flag.NewFlagSet("dspmqinf", flag.ContinueOnError)
	o := fs.String("o", "stanza", "stanza|command")
	fs.Bool("s", false, "ignored")
	qm, ok := qmArg(fs, args)
	if !ok {
		return rcBadArgs
	}
	s, ok := e.lookup(qm)
	if !ok {
		fmt.Fprintf(out, "AMQ8147E: IBM MQ object %s not found.\n", qm)
		return 44
	}
	switch *o {
	case "stanza":
		fmt.Fprint(out, formatStanza(s))
	case "command":
		prefix := s["Prefix"]
		if prefix == "" {
			prefix = e.prefix
		}
		fmt.Fprintf(out, "addmqinf -s QueueManager -v Name=%s -v Directory=%s -v Prefix=%s -v DataPath=%s\n",
			qm, s["Directory"], prefix, dataPath(e, s))
	default:
		return rcBadArgs
	}
	return rcOK
}

func dspmq(e env, out io.Writer, args []string) int {
	fs := flag.NewFlagSet("dspmq", flag.ContinueOnError)
	n := fs.Bool("n", false, "untranslated")
	m := fs.String("m", "", "queue manager")
	x := fs.Bool("x", false, "instances")
	fs.String("o", "", "ignored")
	fs.Bool("s", false, "ignored")
	if err := fs.Parse(args); err != nil || fs.NArg() != 0 {
		return rcBadArgs
	}
	var list []stanza
	if *m != "" {
		s, ok := e.lookup(*m)
		if !ok {
			return notKnown(out)
		}
		list = []stanza{s}
	} else {
		list, _ = e.readMqsIni()
	}
	for _, s := range list {
		data := dataPath(e, s)
		st := "STATUS NOT AVAILABLE"
		if _, err := os.Stat(data); err == nil {
			st = e.status(data)
		}
		word := st
		if !*n {
			word = translated[st]
		}
		fmt.Fprintf(out, "%-58sSTATUS(%s)\n", "QMNAME("+s["Name"]+")", word)
		if *x && (st == "RUNNING" || st == "RUNNING ELSEWHERE") {
			r, _ := readRecord(data)
			fmt.Fprintf(out, "    INSTANCE(%s) MODE(Active)\n", r.Host)
		}
	}
	return rcOK
}

func strmqm(e env, out io.Writer, args []string) int {
	fs := flag.NewFlagSet("strmqm", flag.ContinueOnError)
	fs.Bool("x", false, "multi-instance (treated as single)")
	qm, ok := qmArg(fs, args)
	if !ok {
		return rcBadArgs
	}
	s, ok := e.lookup(qm)
	if !ok {
		fmt.Fprintln(out, "AMQ8118E: IBM MQ queue manager does not exist.")
		return rcNotExist
	}
	data := dataPath(e, s)
	if _, err := os.Stat(filepath.Join(data, "qm.ini")); err != nil {
		fmt.Fprintf(out, "AMQ6235E: Directory '%s' missing.\n", data)
		return rcStorage
	}
	switch e.status(data) {
	case "RUNNING", "STARTING":
		fmt.Fprintf(out, "IBM MQ queue manager '%s' running.\n", qm)
		return rcRunning
	case "RUNNING ELSEWHERE":
		fmt.Fprintf(out, "AMQ7265E? IBM MQ queue manager '%s' is active on another node.\n", qm)
		return rcActiveNoSb
	case "QUIESCING", "ENDING IMMEDIATELY", "ENDING PREEMPTIVELY":
		fmt.Fprintf(out, "IBM MQ queue manager '%s' ending.\n", qm)
		return 49
	}
	fmt.Fprintf(out, "IBM MQ queue manager '%s' starting.\nThe queue manager is associated with installation 'Installation1'.\n", qm)
	self, err := os.Executable()
	if err != nil {
		return rcUnexpected
	}
	devnull, _ := os.Open(os.DevNull)
	errlog, err := os.OpenFile(filepath.Join(data, "AMQERR01.LOG"), os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o644)
	if err != nil {
		fmt.Fprintln(out, "AMQ6235E:", err)
		return rcStorage
	}
	cmd := exec.Command(self, "-m", qm)
	cmd.Args[0] = "amqzxma0"
	cmd.Stdin, cmd.Stdout, cmd.Stderr = devnull, errlog, errlog
	cmd.SysProcAttr = detached()
	if err := cmd.Start(); err != nil {
		fmt.Fprintln(out, "AMQ6119S: An internal IBM MQ error has occurred:", err)
		return rcUnexpected
	}
	errlog.Close()
	exited := make(chan struct{})
	go func() { cmd.Wait(); close(exited) }()
	slow := e.faultDuration("slow_start") > 0
	for {
		r, _ := readRecord(data)
		if r.PID == cmd.Process.Pid && (r.Status == "RUNNING" || slow && r.Status == "STARTING") {
			break
		}
		select {
		case <-exited:
			fmt.Fprintf(out, "AMQ7017E: Log not available or queue manager '%s' ended during start; see %s/AMQERR01.LOG.\n", qm, data)
			return rcUnexpected
		case <-time.After(20 * time.Millisecond):
		}
	}
	fmt.Fprintf(out, "Log replay for queue manager '%s' complete.\nTransaction manager state recovered for queue manager '%s'.\n", qm, qm)
	if slow {
		fmt.Fprintf(out, "IBM MQ queue manager '%s' starting (restart recovery continues).\n", qm)
	} else {
		fmt.Fprintf(out, "IBM MQ queue manager '%s' started using V9.3.0.0.\n", qm)
	}
	return rcOK
}

func endmqm(e env, out io.Writer, args []string) int {
	fs := flag.NewFlagSet("endmqm", flag.ContinueOnError)
	c := fs.Bool("c", false, "controlled")
	w := fs.Bool("w", false, "controlled wait")
	i := fs.Bool("i", false, "immediate")
	p := fs.Bool("p", false, "preemptive")
	fs.Bool("r", false, "reconnect")
	fs.Bool("s", false, "switch")
	fs.Bool("x", false, "standby")
	fs.Int("tp", 0, "grace")
	qm, ok := qmArg(fs, args)
	if !ok {
		return rcBadArgs
	}
	_ = c
	mode, wait := "c", false
	switch {
	case *p:
		mode = "p"
	case *i:
		mode, wait = "i", true
	case *w:
		mode, wait = "w", true
	}
	s, ok := e.lookup(qm)
	if !ok {
		return notKnown(out)
	}
	data := dataPath(e, s)
	switch e.status(data) {
	case "RUNNING", "STARTING", "QUIESCING", "ENDING IMMEDIATELY", "ENDING PREEMPTIVELY":
	default:
		fmt.Fprintln(out, "AMQ8146E: IBM MQ queue manager not available.")
		return rcNotAvailable
	}
	conn, err := net.Dial("unix", e.sock(qm))
	if err != nil {
		fmt.Fprintln(out, "AMQ8146E: IBM MQ queue manager not available.")
		return rcNotAvailable
	}
	fmt.Fprintf(conn, "END %s\n", mode)
	if _, err := bufio.NewReader(conn).ReadString('\n'); err != nil {
		// It may end before answering (-p): that is fine.
		conn.Close()
	}
	conn.Close()
	fmt.Fprintf(out, "IBM MQ queue manager '%s' ending.\n", qm)
	if !wait {
		return rcOK
	}
	for lockHeld(data) {
		time.Sleep(20 * time.Millisecond)
	}
	fmt.Fprintf(out, "IBM MQ queue manager '%s' ended.\n", qm)
	return rcOK
}
