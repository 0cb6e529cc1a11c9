// Command mq is the IBM MQ resource for heartbeat's resource.d (and for
// hand use): `mq QM start|stop|status` with heartbeat's words, "running" or
// "stopped", on status. It is the same mqres resource tandem-agent and the
// OCF agent use, so users can adopt it before adopting the agent.
//
// Settings come from the environment (heartbeat passes none on the command
// line) or from flags placed before QM:
//
//	MQ_BIN / -mqbin              MQ bin directory (/opt/mqm/bin)
//	MQ_USER / -user              run-as user (mqm; "" = no switch)
//	MQ_SHARED_MOUNT / -shared    refuse a queue manager not on this mount
//	MQ_START_TIMEOUT, MQ_STOP_TIMEOUT, MQ_END_TIMEOUT, MQ_MONITOR_TIMEOUT
//
// Pair set-up: `mq -shared /MQHA QM setup` prints the crtmqm for the first
// node (-run runs it, then prints the addmqinf line for the second node);
// `mq QM addmqinf` prints that line again; `mq QM join 'addmqinf ...'` runs
// it on the second node.
package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strings"

	"github.com/tandem-ha/tandem/mqres"
)

func main() { os.Exit(run(os.Args[1:], os.LookupEnv, os.Stdout, os.Stderr)) }

// LSB exit codes: heartbeat reads the words, scripts read the codes.
const (
	exitOK         = 0
	exitFailed     = 1
	exitUsage      = 2
	exitNotRunning = 3
)

func run(args []string, env func(string) (string, bool), stdout, stderr io.Writer) int {
	p := map[string]string{}
	for _, k := range []string{mqres.ParamBinDir, mqres.ParamUser, mqres.ParamSharedMount,
		mqres.ParamStartTimeout, mqres.ParamStopTimeout, mqres.ParamEndTimeout, mqres.ParamMonitorTimeout} {
		name := "MQ_" + strings.ToUpper(k)
		if k == mqres.ParamBinDir {
			name = "MQ_BIN"
		}
		if v, ok := env(name); ok {
			p[k] = v
		}
	}
	fs := flag.NewFlagSet("mq", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprintln(stderr, "usage: mq [-mqbin DIR] [-user U] [-shared MOUNT] QM start|stop|status|monitor|setup [-run]|addmqinf|join LINE")
	}
	flagParam := func(name, key, usage string) {
		fs.Func(name, usage, func(v string) error { p[key] = v; return nil })
	}
	flagParam("mqbin", mqres.ParamBinDir, "MQ bin directory")
	flagParam("user", mqres.ParamUser, "run-as user")
	flagParam("shared", mqres.ParamSharedMount, "shared filesystem mount point")
	verbose := fs.Bool("v", false, "log decisions to stderr")
	if err := fs.Parse(args); err != nil || fs.NArg() < 2 {
		fs.Usage()
		return exitUsage
	}
	p[mqres.ParamQMgr] = fs.Arg(0)
	cfg, err := mqres.ConfigFromParams(p)
	if err != nil {
		fmt.Fprintln(stderr, "mq:", err)
		return exitUsage
	}
	level := slog.LevelWarn
	if *verbose {
		level = slog.LevelDebug
	}
	cfg.Log = slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: level}))
	r, err := mqres.New(cfg)
	if err != nil {
		fmt.Fprintln(stderr, "mq:", err)
		return exitUsage
	}
	ctx := context.Background()
	rest := fs.Args()[2:]
	switch fs.Arg(1) {
	case "start":
		return done(stderr, r.Start(ctx))
	case "stop":
		return done(stderr, r.Stop(ctx))
	case "status", "monitor":
		st, err := r.Monitor(ctx)
		if err != nil {
			fmt.Fprintln(stderr, "mq:", err)
		}
		switch st {
		case mqres.StateRunning:
			fmt.Fprintln(stdout, "running")
			return exitOK
		case mqres.StateStopped:
			fmt.Fprintln(stdout, "stopped")
			return exitNotRunning
		}
		// heartbeat knows two words; a failed queue manager is not running.
		fmt.Fprintln(stdout, "stopped")
		fmt.Fprintln(stderr, "mq: queue manager failed: stop it to clean up")
		return exitFailed
	case "setup":
		return setup(ctx, r, cfg, rest, stdout, stderr)
	case "addmqinf":
		line, err := r.AddmqinfLine(ctx)
		if err != nil {
			return done(stderr, err)
		}
		fmt.Fprintln(stdout, line)
		return exitOK
	case "join":
		if len(rest) == 0 {
			fmt.Fprintln(stderr, "usage: mq QM join 'addmqinf -v ...'")
			return exitUsage
		}
		return done(stderr, r.Addmqinf(ctx, strings.Join(rest, " ")))
	}
	fs.Usage()
	return exitUsage
}

func setup(ctx context.Context, r *mqres.Resource, cfg mqres.Config, args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("setup", flag.ContinueOnError)
	fs.SetOutput(stderr)
	doRun := fs.Bool("run", false, "run crtmqm on this node")
	if err := fs.Parse(args); err != nil {
		return exitUsage
	}
	if cfg.SharedMount == "" {
		fmt.Fprintln(stderr, "mq setup: give the shared filesystem's mount point with -shared /MQHA (or MQ_SHARED_MOUNT)")
		return exitUsage
	}
	s := mqres.SetupFor(cfg.QMgr, cfg.SharedMount)
	crt := "crtmqm " + strings.Join(s.CrtmqmArgs(), " ")
	if !*doRun {
		fmt.Fprintf(stdout, "# on the first node, as %s, with %s mounted:\n%s\n", orMQM(cfg.User), cfg.SharedMount, crt)
		fmt.Fprintf(stdout, "# then, for the second node: mq %s addmqinf (prints the addmqinf line)\n", cfg.QMgr)
		return exitOK
	}
	out, err := r.Crtmqm(ctx, s)
	fmt.Fprint(stdout, out)
	if err != nil {
		return done(stderr, err)
	}
	line, err := r.AddmqinfLine(ctx)
	if err != nil {
		return done(stderr, err)
	}
	fmt.Fprintf(stdout, "# on the second node, as %s:\n%s\n", orMQM(cfg.User), line)
	return exitOK
}

func orMQM(u string) string {
	if u == "" {
		return "the MQ user"
	}
	return u
}

func done(stderr io.Writer, err error) int {
	if err != nil {
		fmt.Fprintln(stderr, "mq:", err)
		return exitFailed
	}
	return exitOK
}
