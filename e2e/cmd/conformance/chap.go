package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/url"
	"os"
	"os/exec"
	"strings"
	"time"

	"github.com/tandem-ha/tandem/e2e/conformance"
	"github.com/tandem-ha/tandem/e2e/internal/lab"
)

// chapSuites run again against a target whose LUN demands CHAP: the
// iSCSI suites, which drive the session layer; a read and a write suite;
// and RESERVE(6), whose tests log in with the second initiator name and
// again after resets and nexus losses. Each mode takes about 15 s here.
var chapSuites = []string{"iSCSIcmdsn", "iSCSIdatasn", "iSCSIResiduals", "iSCSITMF", "Read10", "Write10", "Reserve6"}

// chapMode is one CHAP pass; its results are named Prefix:FAMILY.Suite.Test.
type chapMode struct {
	Prefix string
	Creds  lab.CHAP
}

var chapModes = []chapMode{
	{"chap", lab.CHAP{User: "conformance-initiator", Secret: "initiator-secret-4711"}},
	{"mutual-chap", lab.CHAP{User: "conformance-initiator", Secret: "initiator-secret-4711",
		MutualUser: "conformance-target", MutualSecret: "target-secret-0815"}},
}

// chapURL puts creds into a libiscsi URL iscsi://HOST:PORT/IQN/LUN:
// user%secret@ for the initiator, target_user and target_password
// arguments for mutual CHAP.
func chapURL(base string, creds lab.CHAP) string {
	rest, ok := strings.CutPrefix(base, "iscsi://")
	if !ok || creds.User == "" {
		return base
	}
	u := "iscsi://" + url.PathEscape(creds.User) + "%" + url.PathEscape(creds.Secret) + "@" + rest
	if creds.MutualUser != "" {
		u += "?target_user=" + url.QueryEscape(creds.MutualUser) + "&target_password=" + url.QueryEscape(creds.MutualSecret)
	}
	return u
}

// prefixed names results of a CHAP pass after its mode.
func prefixed(prefix string, rs []conformance.Result) []conformance.Result {
	out := make([]conformance.Result, len(rs))
	for i, r := range rs {
		r.Name = prefix + ":" + r.Name
		out[i] = r
	}
	return out
}

// inSuite returns the names of all that belong to suite (FAMILY.Suite).
func inSuite(all []string, suite string) []string {
	var out []string
	for _, n := range all {
		if strings.HasPrefix(n, suite+".") {
			out = append(out, n)
		}
	}
	return out
}

// runCHAP runs chapSuites once per chapModes against a fresh tandem-target
// each, after checking that the target really refuses wrong credentials.
func runCHAP(f *flags, log io.Writer) ([]conformance.Result, time.Duration, error) {
	all, err := listTests(f)
	if err != nil {
		return nil, 0, err
	}
	var results []conformance.Result
	var took time.Duration
	for _, m := range chapModes {
		rs, d, err := runCHAPMode(f, log, m, all)
		if err != nil {
			return nil, 0, fmt.Errorf("%s pass: %w", m.Prefix, err)
		}
		results = append(results, rs...)
		took += d
	}
	return results, took, nil
}

func runCHAPMode(f *flags, log io.Writer, m chapMode, all []string) ([]conformance.Result, time.Duration, error) {
	g := *f
	g.port = 0 // the main target may still hold --port
	t, _, cleanup, err := startTarget(&g, os.Stderr, m.Creds)
	if err != nil {
		return nil, 0, err
	}
	defer cleanup(false)
	if err := checkCHAPEnforced(t.URL, m.Creds); err != nil {
		return nil, 0, err
	}
	var targetDone <-chan struct{}
	if t.Proc != nil {
		targetDone = t.Proc.Done()
	}
	var results []conformance.Result
	var took time.Duration
	for _, s := range chapSuites {
		suite := f.family + "." + s
		args := suiteArgs(f, suite, chapURL(t.URL, m.Creds), false)
		fmt.Fprintf(os.Stderr, "running %s %s with %s\n", f.suiteBin, suite, m.Prefix)
		sr := lab.RunSuite(lab.SuiteOptions{Bin: f.suiteBin, Args: args, Stall: f.stall, Timeout: f.timeout, TargetDone: targetDone, Log: log})
		took += sr.Duration
		rs, _, err := conformance.Parse(bytes.NewReader(sr.Stdout), f.family)
		if err != nil && !errors.Is(err, conformance.ErrNoTests) {
			return nil, 0, err
		}
		why := sr.Aborted
		if why == "" {
			why = fmt.Sprintf("iscsi-test-cu stopped early (%v); did the CHAP login fail?", sr.ExitErr)
		}
		results = append(results, conformance.Complete(rs, inSuite(all, suite), why)...)
	}
	return prefixed(m.Prefix, results), took, nil
}

// checkCHAPEnforced is the negative control of a CHAP pass: iscsi-inq
// must fail without credentials and with a wrong secret, and with mutual
// CHAP when the initiator expects another target secret; it must succeed
// with the right ones. Otherwise a pass could succeed on a target that
// ignores CHAP.
func checkCHAPEnforced(base string, creds lab.CHAP) error {
	wrong := creds
	wrong.Secret = "wrong-" + creds.Secret
	cases := []struct {
		desc string
		url  string
		ok   bool
	}{
		{"no credentials", base, false},
		{"a wrong initiator secret", chapURL(base, wrong), false},
		{"the right credentials", chapURL(base, creds), true},
	}
	if creds.MutualUser != "" {
		impostor := creds
		impostor.MutualSecret = "wrong-" + creds.MutualSecret
		cases = append(cases, struct {
			desc string
			url  string
			ok   bool
		}{"a target secret the initiator does not expect", chapURL(base, impostor), false})
	}
	for _, c := range cases {
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		out, err := exec.CommandContext(ctx, "iscsi-inq", c.url).CombinedOutput()
		cancel()
		switch {
		case c.ok && err != nil:
			return fmt.Errorf("iscsi-inq with %s failed: %w: %s", c.desc, err, bytes.TrimSpace(out))
		case !c.ok && err == nil:
			return fmt.Errorf("iscsi-inq with %s logged in: the target does not enforce CHAP", c.desc)
		}
	}
	return nil
}
