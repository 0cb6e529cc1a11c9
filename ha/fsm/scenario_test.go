package fsm

import (
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

var rewrite = flag.Bool("rewrite", false, "rewrite the golden output of testdata/*.txt scenarios")

// TestScenarios runs the datadriven scripts in testdata/*.txt. Each case is
// comment lines (#), one command line, "----", then the expected output up
// to a blank line. Commands:
//
//	cluster [nodes=a,b] [links=2] [preferred=a] [autofailback=true] [resources=ip,fs]
//	        [max-restarts=N] [monitor=1s] [step=50ms] [delay=0s] [verbose=true]
//	        [fence=RES] [arbiter=true] [fence-action=log]
//	start NODE...           power on agents (a new boot; resources keep their state)
//	poweroff NODE...        the node vanishes (no heartbeats, no results)
//	kill NODE...            kill -9 of the agent: its guard stops the group and
//	                        sends a released heartbeat on every link not cut
//	run DURATION            advance simulated time, ticking every step
//	cut [link=N] [from=NODE]   drop datagrams on a link (all links; both directions)
//	heal [link=N] [from=NODE]
//	fail NODE RES OP [n=1]  the next n OPs (start|stop|forcestop) of RES fail
//	crash NODE RES [n=1]    the next n monitors of RES report it failed
//	fenced NODE RES [n=1]   the next n monitors of RES report resource.ErrFenced
//	disk cut|heal NODE      NODE's I/O to the arbiter fails / works again
//	holder NODE HOLDER      NODE's fence reads HOLDER holding the reservation ("-": nobody)
//	cmd NODE standby|takeover|maintenance-on|maintenance-off|rejoin
//	status                  each node's state, peer view, links and resources
func TestScenarios(t *testing.T) {
	files, err := filepath.Glob("testdata/*.txt")
	require.NoError(t, err)
	require.NotEmpty(t, files)
	for _, f := range files {
		t.Run(strings.TrimSuffix(filepath.Base(f), ".txt"), func(t *testing.T) { runScript(t, f) })
	}
}

type scriptCase struct {
	comments []string
	cmd      string
	want     string
	line     int
}

func parseScript(t *testing.T, path string) []scriptCase {
	data, err := os.ReadFile(path)
	require.NoError(t, err)
	lines := strings.Split(string(data), "\n")
	var cases []scriptCase
	var c scriptCase
	for i := 0; i < len(lines); i++ {
		l := lines[i]
		switch {
		case strings.HasPrefix(l, "#"):
			c.comments = append(c.comments, l)
		case strings.TrimSpace(l) == "":
			if len(c.comments) > 0 && c.cmd == "" {
				c.comments = append(c.comments, "")
			}
		default:
			c.cmd, c.line = l, i+1
			i++
			require.True(t, i < len(lines) && lines[i] == "----", "%s:%d: expected ---- after the command", path, c.line)
			var out []string
			for i+1 < len(lines) && lines[i+1] != "" {
				i++
				out = append(out, lines[i])
			}
			c.want = strings.Join(out, "\n")
			cases = append(cases, c)
			c = scriptCase{}
		}
	}
	return cases
}

func runScript(t *testing.T, path string) {
	cases := parseScript(t, path)
	var s *sim
	var b strings.Builder
	for _, c := range cases {
		got, err := exec(&s, c.cmd)
		if err != nil {
			got = "error: " + err.Error()
		}
		if *rewrite {
			for _, l := range c.comments {
				b.WriteString(l + "\n")
			}
			b.WriteString(c.cmd + "\n----\n")
			if got != "" {
				b.WriteString(got + "\n")
			}
			b.WriteString("\n")
			continue
		}
		require.Equal(t, c.want, got, "%s:%d: %s", path, c.line, c.cmd)
	}
	if *rewrite {
		require.NoError(t, os.WriteFile(path, []byte(strings.TrimSuffix(b.String(), "\n")), 0o644))
	}
}

func exec(sp **sim, line string) (string, error) {
	f := strings.Fields(line)
	var pos []string
	kv := map[string]string{}
	for _, a := range f[1:] {
		if k, v, ok := strings.Cut(a, "="); ok {
			kv[k] = v
		} else {
			pos = append(pos, a)
		}
	}
	dur := func(k, def string) time.Duration {
		v := kv[k]
		if v == "" {
			v = def
		}
		d, err := time.ParseDuration(v)
		if err != nil {
			panic(err)
		}
		return d
	}
	num := func(k string, def int) int {
		v, ok := kv[k]
		if !ok {
			return def
		}
		n, err := strconv.Atoi(v)
		if err != nil {
			panic(err)
		}
		return n
	}
	s := *sp
	if f[0] != "cluster" && s == nil {
		return "", fmt.Errorf("no cluster: start the script with a cluster command")
	}
	node := func(name string) (*simNode, error) {
		if n := s.node(name); n != nil {
			return n, nil
		}
		return nil, fmt.Errorf("unknown node %q", name)
	}
	switch f[0] {
	case "cluster":
		names := strings.Split(kv["nodes"], ",")
		if kv["nodes"] == "" {
			names = []string{"a", "b"}
		}
		links := num("links", 2)
		var rcs []ResourceConfig
		if kv["resources"] != "" {
			for _, r := range strings.Split(kv["resources"], ",") {
				rcs = append(rcs, ResourceConfig{Name: r, MonitorInterval: dur("monitor", "1s"), MonitorTimeout: 5 * time.Second,
					StartTimeout: 30 * time.Second, StopTimeout: 30 * time.Second, MaxRestarts: num("max-restarts", 2),
					Fence: r == kv["fence"]})
			}
		}
		var cfgs []Config
		for i, n := range names {
			peer := "peer"
			if len(names) == 2 {
				peer = names[1-i]
			}
			cfgs = append(cfgs, Config{Self: n, Peer: peer, Preferred: kv["preferred"], AutoFailback: kv["autofailback"] == "true",
				Keepalive: dur("keepalive", "200ms"), DeadTime: dur("deadtime", "1s"), InitDead: dur("initdead", "10s"),
				Links: links, Resources: rcs, Arbiter: kv["arbiter"] == "true"})
		}
		ns, err := newSim(links, dur("step", "50ms"), cfgs...)
		if err != nil {
			return "", err
		}
		ns.opDelay = dur("delay", "0s")
		ns.verbose = kv["verbose"] == "true"
		ns.arbiter = kv["arbiter"] == "true"
		ns.fenceLog = kv["fence-action"] == "log"
		*sp = ns
		return "", nil
	case "start":
		for _, p := range pos {
			n, err := node(p)
			if err != nil {
				return "", err
			}
			if err := s.power(n); err != nil {
				return "", err
			}
		}
	case "poweroff":
		for _, p := range pos {
			n, err := node(p)
			if err != nil {
				return "", err
			}
			s.powerOff(n)
			s.logf(n, "POWER OFF")
		}
	case "kill":
		for _, p := range pos {
			n, err := node(p)
			if err != nil {
				return "", err
			}
			s.kill(n)
		}
	case "run":
		d, err := time.ParseDuration(pos[0])
		if err != nil {
			return "", err
		}
		s.run(d)
	case "cut", "heal":
		for l := range s.links {
			if v, ok := kv["link"]; ok && v != strconv.Itoa(l) {
				continue
			}
			for _, n := range s.nodes {
				if from, ok := kv["from"]; ok && from != n.name {
					continue
				}
				s.cut[l][n.name] = f[0] == "cut"
			}
		}
	case "disk":
		n, err := node(pos[1])
		if err != nil {
			return "", err
		}
		s.diskCut[n.name] = pos[0] == "cut"
	case "holder":
		n, err := node(pos[0])
		if err != nil {
			return "", err
		}
		h := pos[1]
		if h == "-" {
			h = ""
		}
		s.stepNode(n, ReservationHolder{Node: h})
		s.drain()
	case "fail", "crash", "fenced":
		n, err := node(pos[0])
		if err != nil {
			return "", err
		}
		r := n.res[pos[1]]
		if r == nil {
			return "", fmt.Errorf("unknown resource %q", pos[1])
		}
		k := num("n", 1)
		if f[0] == "crash" {
			r.crash += k
			break
		}
		if f[0] == "fenced" {
			r.fenced += k
			break
		}
		switch pos[2] {
		case "start":
			r.failStart += k
		case "stop":
			r.failStop += k
		case "forcestop":
			r.failForce += k
		default:
			return "", fmt.Errorf("unknown op %q", pos[2])
		}
	case "cmd":
		n, err := node(pos[0])
		if err != nil {
			return "", err
		}
		kinds := map[string]CommandKind{"standby": CmdStandby, "takeover": CmdTakeover, "maintenance-on": CmdMaintenanceOn, "maintenance-off": CmdMaintenanceOff, "rejoin": CmdRejoin}
		k, ok := kinds[pos[1]]
		if !ok {
			return "", fmt.Errorf("unknown command %q", pos[1])
		}
		s.stepNode(n, Command{Kind: k})
		s.drain()
	case "status":
		out := s.flush()
		if out != "" {
			out += "\n"
		}
		return out + s.status(), nil
	default:
		return "", fmt.Errorf("unknown command %q", f[0])
	}
	return s.flush(), nil
}
