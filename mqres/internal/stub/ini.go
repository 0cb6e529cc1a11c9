package stub

import (
	"bufio"
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"
)

// env is the node-local environment of one invocation.
type env struct {
	prefix string
	host   string
}

func newEnv() env {
	e := env{prefix: os.Getenv("MQSTUB_PREFIX"), host: os.Getenv("MQSTUB_HOST")}
	if e.prefix == "" {
		e.prefix = "/var/mqm"
	}
	if e.host == "" {
		e.host, _ = os.Hostname()
	}
	return e
}

func (e env) mqsIni() string               { return filepath.Join(e.prefix, "mqs.ini") }
func (e env) sock(qm string) string        { return filepath.Join(e.prefix, "sockets", qm+".sock") }
func (e env) faultsFile() string           { return filepath.Join(e.prefix, "mqstub.faults") }
func (e env) invocationLog() string        { return filepath.Join(e.prefix, "mqstub.log") }
func (e env) defaultData(qm string) string { return filepath.Join(e.prefix, "qmgrs", qm) }

// stanza is one "QueueManager:" entry of mqs.ini.
type stanza map[string]string

// readMqsIni returns the QueueManager stanzas of mqs.ini.
func (e env) readMqsIni() ([]stanza, error) {
	b, err := os.ReadFile(e.mqsIni())
	if os.IsNotExist(err) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var out []stanza
	var cur stanza
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		l := strings.TrimSpace(sc.Text())
		switch {
		case l == "QueueManager:":
			cur = stanza{}
			out = append(out, cur)
		case strings.HasSuffix(l, ":"):
			cur = nil
		default:
			if k, v, ok := strings.Cut(l, "="); ok && cur != nil {
				cur[k] = v
			}
		}
	}
	return out, nil
}

func (e env) lookup(qm string) (stanza, bool) {
	all, _ := e.readMqsIni()
	for _, s := range all {
		if s["Name"] == qm {
			return s, true
		}
	}
	return nil, false
}

func (e env) addStanza(s stanza) error {
	if err := os.MkdirAll(e.prefix, 0o755); err != nil {
		return err
	}
	f, err := os.OpenFile(e.mqsIni(), os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o644)
	if err != nil {
		return err
	}
	defer f.Close()
	_, err = f.WriteString(formatStanza(s))
	return err
}

func formatStanza(s stanza) string {
	var b strings.Builder
	b.WriteString("QueueManager:\n")
	for _, k := range []string{"Name", "Prefix", "Directory", "DataPath", "InstallationName"} {
		if v, ok := s[k]; ok {
			fmt.Fprintf(&b, "   %s=%s\n", k, v)
		}
	}
	return b.String()
}

func dataPath(e env, s stanza) string {
	if d := s["DataPath"]; d != "" {
		return d
	}
	p := s["Prefix"]
	if p == "" {
		p = e.prefix
	}
	return filepath.Join(p, "qmgrs", s["Directory"])
}

// logPath reads LogPath from the queue manager's qm.ini on the data path.
func logPath(data string) (string, error) {
	v, ok, err := qmIni(data, "Log", "LogPath")
	if err != nil {
		return "", err
	}
	if !ok {
		return "", fmt.Errorf("no LogPath in %s/qm.ini", data)
	}
	return v, nil
}

// listenerPort reads Port from qm.ini's TCP stanza, as MQ's listener
// started with the queue manager (CONTROL(QMGR)) uses it; "" = no TCP
// listener.
func listenerPort(data string) (string, error) {
	v, _, err := qmIni(data, "TCP", "Port")
	return v, err
}

// qmIni reads key from stanza of the queue manager's qm.ini.
func qmIni(data, stanza, key string) (string, bool, error) {
	b, err := os.ReadFile(filepath.Join(data, "qm.ini"))
	if err != nil {
		return "", false, err
	}
	in := false
	for _, l := range strings.Split(string(b), "\n") {
		l = strings.TrimSpace(l)
		if strings.HasSuffix(l, ":") {
			in = l == stanza+":"
			continue
		}
		if k, v, ok := strings.Cut(l, "="); ok && in && strings.TrimSpace(k) == key {
			return strings.TrimSpace(v), true, nil
		}
	}
	return "", false, nil
}

// faults reads the fault file afresh.
func (e env) faults() map[string]string {
	m := map[string]string{}
	b, err := os.ReadFile(e.faultsFile())
	if err != nil {
		return m
	}
	for _, l := range strings.Split(string(b), "\n") {
		if k, v, ok := strings.Cut(strings.TrimSpace(l), "="); ok {
			m[k] = v
		}
	}
	return m
}

func (e env) faultList(key string) map[string]bool {
	out := map[string]bool{}
	for _, v := range strings.Split(e.faults()[key], ",") {
		if v = strings.TrimSpace(v); v != "" {
			out[v] = true
		}
	}
	return out
}

func (e env) faultDuration(key string) time.Duration {
	d, _ := time.ParseDuration(e.faults()[key])
	return d
}

// WriteFaults replaces the fault file of prefix (tests use it).
func WriteFaults(prefix string, kv map[string]string) error {
	keys := make([]string, 0, len(kv))
	for k := range kv {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var b strings.Builder
	for _, k := range keys {
		fmt.Fprintf(&b, "%s=%s\n", k, kv[k])
	}
	if err := os.MkdirAll(prefix, 0o755); err != nil {
		return err
	}
	return os.WriteFile(filepath.Join(prefix, "mqstub.faults"), []byte(b.String()), 0o644)
}

// Invocations returns the commands run under prefix, one "name args" a line.
func Invocations(prefix string) []string {
	b, _ := os.ReadFile(filepath.Join(prefix, "mqstub.log"))
	var out []string
	for _, l := range strings.Split(strings.TrimSpace(string(b)), "\n") {
		if l != "" {
			out = append(out, l)
		}
	}
	return out
}

func (e env) logInvocation(args []string) {
	if os.MkdirAll(e.prefix, 0o755) != nil {
		return
	}
	f, err := os.OpenFile(e.invocationLog(), os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o644)
	if err != nil {
		return
	}
	defer f.Close()
	fmt.Fprintln(f, strings.Join(args, " "))
}
