// Command conformance runs libiscsi's iscsi-test-cu against an iSCSI target
// on loopback, prints one line per test and, with --gate, fails on any
// failure not listed in e2e/conformance/expected-failures.txt, on any skip
// not listed in e2e/conformance/skips.txt and on any regression from
// e2e/conformance/baseline.txt. Against tandem-target it then runs a few
// suites again with CHAP on the LUN, one-way and mutual (see chapSuites).
//
//	conformance                     # build and test tandem-target
//	conformance --target tgt        # test tgt, the reference
//	conformance --gate              # what `make test` runs
//	conformance exec -- CMD {url}   # start a target, run CMD against it
package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/tandem-ha/tandem/e2e/conformance"
	"github.com/tandem-ha/tandem/e2e/internal/lab"
	"github.com/tandem-ha/tandem/target/config"
)

type flags struct {
	root       string
	target     string
	targetBin  string
	targetArgs []string
	targetCmd  string
	url        string
	port       int
	iqn        string
	lun        uint64
	lunSize    string
	thin       bool
	prealloc   bool
	keep       bool

	suiteBin   string
	family     string
	test       string
	initiator  string
	initiator2 string
	stall      time.Duration
	timeout    time.Duration
	jsonPath   string
	verbose    bool
	multipath  bool

	chap bool

	gate           bool
	expected       string
	skips          string
	baseline       string
	updateBaseline bool
}

// errGate makes main exit 1 without printing an error line.
var errGate = errors.New("conformance gate failed")

func main() {
	if err := newRoot().Execute(); err != nil {
		if !errors.Is(err, errGate) {
			fmt.Fprintln(os.Stderr, "conformance:", err)
		}
		os.Exit(1)
	}
}

func newRoot() *cobra.Command {
	f := &flags{}
	root := &cobra.Command{
		Use:           "conformance",
		Short:         "Run libiscsi's iscsi-test-cu against an iSCSI target and gate the result",
		SilenceUsage:  true,
		SilenceErrors: true,
		Args:          cobra.NoArgs,
		RunE:          func(cmd *cobra.Command, _ []string) error { return run(cmd.OutOrStdout(), f) },
	}
	addTargetFlags(root, f)
	p := root.Flags()
	p.StringVar(&f.suiteBin, "suite-bin", "iscsi-test-cu", "the libiscsi test tool")
	p.StringVar(&f.family, "family", "ALL", "test family (ALL has 230 tests: the SCSI and iSCSI suites once each)")
	p.StringVar(&f.test, "test", "", "run only FAMILY[.SUITE[.TEST]] (default: the whole family; no gate completeness check)")
	p.StringVar(&f.initiator, "initiator", "iqn.2007-10.com.github:sahlberg:libiscsi:iscsi-test", "first initiator name (-i)")
	p.StringVar(&f.initiator2, "initiator2", "iqn.2007-10.com.github:sahlberg:libiscsi:iscsi-test-2", "second initiator name (-I)")
	p.DurationVar(&f.stall, "stall", 2*time.Minute, "kill the suite when no new test starts for this long")
	p.DurationVar(&f.timeout, "timeout", 30*time.Minute, "kill the suite after this long in total")
	p.StringVar(&f.jsonPath, "json", "", "also write the results as JSON to this file")
	p.BoolVarP(&f.verbose, "verbose", "v", false, "stream the suite's raw output to stderr")
	p.BoolVar(&f.multipath, "multipath", true, "give the suite the LUN's URL twice, which runs the MultipathIO tests")
	p.BoolVar(&f.gate, "gate", false, "compare with expected-failures.txt and baseline.txt, exit 1 on unexpected failures or regressions")
	p.StringVar(&f.expected, "expected", "", "expected failures file (default <root>/e2e/conformance/expected-failures.txt)")
	p.StringVar(&f.skips, "skips", "", "allowed skips file (default <root>/e2e/conformance/skips.txt)")
	p.BoolVar(&f.chap, "chap", true, "against tandem, also run the CHAP suites with one-way and with mutual CHAP")
	p.StringVar(&f.baseline, "baseline", "", "baseline file (default <root>/e2e/conformance/baseline.txt)")
	p.BoolVar(&f.updateBaseline, "update-baseline", false, "rewrite the baseline with the tests that passed (tandem target only)")
	root.AddCommand(newExec())
	return root
}

func addTargetFlags(c *cobra.Command, f *flags) {
	p := c.Flags()
	p.StringVar(&f.root, "root", "", "repository root (default: the directory holding go.work above the working directory)")
	p.StringVar(&f.target, "target", "tandem", "target to start: tandem, tgt, cmd (--target-cmd) or none (--url)")
	p.StringVar(&f.targetBin, "target-bin", "", "tandem-target binary (default: build target/cmd/tandem-target into <root>/bin)")
	p.StringSliceVar(&f.targetArgs, "target-args", []string{"--config", "{config}"}, "tandem-target arguments; {config} is the generated YAML")
	p.StringVar(&f.targetCmd, "target-cmd", "", "with --target cmd: shell command that runs a target in the foreground; {port} {iqn} {lun} {dir} are replaced")
	p.StringVar(&f.url, "url", "", "with --target none: the iSCSI URL of a running target")
	p.IntVar(&f.port, "port", 0, "iSCSI port on 127.0.0.1 (0: a free one)")
	p.StringVar(&f.iqn, "iqn", "iqn.2024-01.io.tandem:conformance", "target name")
	p.Uint64Var(&f.lun, "lun", 1, "LUN number")
	p.StringVar(&f.lunSize, "lun-size", "1GiB", "size of the file LUN")
	p.BoolVar(&f.thin, "thin", true, "thin-provisioned LUN (tandem only): enables the UNMAP/GET LBA STATUS tests")
	p.BoolVar(&f.prealloc, "preallocate", false, "allocate the LUN file's blocks instead of leaving it sparse")
	p.BoolVar(&f.keep, "keep", false, "keep the scratch directory (config, logs, LUN file)")
}

// findRoot walks up from the working directory to the one holding go.work.
func findRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.work")); err == nil {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", errors.New("no go.work above the working directory: run from the repository or pass --root")
		}
		dir = parent
	}
}

// startTarget starts the target f asks for in a fresh scratch directory.
// The returned cleanup stops it and removes the directory unless keep.
func startTarget(f *flags, w io.Writer, chap lab.CHAP) (*lab.Target, string, func(keep bool), error) {
	if f.root == "" {
		r, err := findRoot()
		if err != nil {
			return nil, "", nil, err
		}
		f.root = r
	}
	size, err := config.ParseSize(f.lunSize)
	if err != nil {
		return nil, "", nil, fmt.Errorf("--lun-size: %w", err)
	}
	dir, err := os.MkdirTemp("", "tandem-conformance-")
	if err != nil {
		return nil, "", nil, fmt.Errorf("scratch directory: %w", err)
	}
	opts := lab.Options{Dir: dir, Port: f.port, IQN: f.iqn, LUN: f.lun, LUNSize: size, Preallocate: f.prealloc, Thin: f.thin, CHAP: chap}
	var t *lab.Target
	switch f.target {
	case "tandem":
		bin := f.targetBin
		if bin == "" {
			bin = filepath.Join(f.root, "bin", "tandem-target")
			fmt.Fprintf(w, "building %s\n", bin)
			build := exec.Command("go", "build", "-o", bin, "./target/cmd/tandem-target")
			build.Dir = f.root
			if out, err := build.CombinedOutput(); err != nil {
				os.RemoveAll(dir)
				return nil, "", nil, fmt.Errorf("build tandem-target: %w\n%s", err, out)
			}
		}
		t, err = lab.StartTandem(bin, f.targetArgs, opts)
	case "tgt":
		t, err = lab.StartTGT(opts)
	case "cmd":
		if f.targetCmd == "" {
			err = errors.New("--target cmd needs --target-cmd")
		} else {
			t, err = lab.StartCommand(f.targetCmd, opts)
		}
	case "none":
		if f.url == "" {
			err = errors.New("--target none needs --url iscsi://HOST:PORT/IQN/LUN")
		} else {
			t = lab.Attach(f.url)
		}
	default:
		err = fmt.Errorf("--target %q: use tandem, tgt, cmd or none", f.target)
	}
	if err != nil {
		os.RemoveAll(dir)
		return nil, "", nil, err
	}
	if f.url != "" {
		t.URL = f.url
	}
	if t.Proc != nil {
		fmt.Fprintf(w, "target %s running as PID %d, log %s\n", f.target, t.Proc.PID(), t.LogPath)
	}
	cleanup := func(keep bool) {
		t.Stop()
		if f.keep {
			fmt.Fprintf(w, "kept scratch directory %s\n", dir)
			return
		}
		if keep {
			// Keep the logs for a post-mortem, not the 1 GiB LUN file.
			os.Remove(filepath.Join(dir, "lun.img"))
			fmt.Fprintf(w, "kept logs in %s\n", dir)
			return
		}
		os.RemoveAll(dir)
	}
	return t, dir, cleanup, nil
}

// report is the --json document.
type report struct {
	Target          string               `json:"target"`
	URL             string               `json:"url"`
	Family          string               `json:"family"`
	Started         time.Time            `json:"started"`
	DurationSeconds float64              `json:"duration_seconds"`
	Aborted         string               `json:"aborted,omitempty"`
	Passed          int                  `json:"passed"`
	Failed          int                  `json:"failed"`
	Skipped         int                  `json:"skipped"`
	Results         []conformance.Result `json:"results"`
	Gate            *conformance.Verdict `json:"gate,omitempty"`
	CUnit           *conformance.Summary `json:"cunit_summary,omitempty"`
}

func run(w io.Writer, f *flags) error {
	if f.updateBaseline && f.target != "tandem" {
		return errors.New("--update-baseline records tandem-target's passes: use it with --target tandem")
	}
	var exp expectations
	if f.gate {
		// Read the expectations first: a typo there should not cost a run.
		var err error
		if exp, err = loadExpectations(f); err != nil {
			return err
		}
	}
	t, dir, cleanup, err := startTarget(f, os.Stderr, lab.CHAP{})
	if err != nil {
		return err
	}
	keep := false
	defer func() { cleanup(keep) }()

	logPath := filepath.Join(dir, "iscsi-test-cu.log")
	logFile, err := os.Create(logPath)
	if err != nil {
		return fmt.Errorf("suite log: %w", err)
	}
	defer logFile.Close()
	var log io.Writer = logFile
	if f.verbose {
		log = io.MultiWriter(logFile, os.Stderr)
	}
	selector := f.family
	if f.test != "" {
		selector = f.test
	}
	// --allow-sanitize runs the SANITIZE suite. A second URL to the same
	// LUN opens the MultipathIO suite (two sessions, one LU), but it also
	// keeps that second session for the whole run, and the SANITIZE
	// suite's RESERVE(6) through it is never released, which breaks the
	// tests after it. So the family runs with one URL and MultipathIO gets
	// a run of its own with two.
	mpSuite := f.family + ".MultipathIO"
	mpOnly := strings.HasPrefix(selector, mpSuite)
	args := suiteArgs(f, selector, t.URL, f.multipath && mpOnly)
	var targetDone <-chan struct{}
	if t.Proc != nil {
		targetDone = t.Proc.Done()
	}
	fmt.Fprintf(os.Stderr, "running %s %s\n", f.suiteBin, strings.Join(args, " "))
	started := time.Now()
	sr := lab.RunSuite(lab.SuiteOptions{Bin: f.suiteBin, Args: args, Stall: f.stall, Timeout: f.timeout, TargetDone: targetDone, Log: log})

	results, summary, perr := conformance.Parse(bytes.NewReader(sr.Stdout), f.family)
	if perr != nil && !errors.Is(perr, conformance.ErrNoTests) {
		return perr
	}
	if f.multipath && !mpOnly && sr.Aborted == "" && (selector == f.family || strings.HasPrefix(mpSuite, selector+".")) {
		mpArgs := suiteArgs(f, mpSuite, t.URL, true)
		fmt.Fprintf(os.Stderr, "running %s %s\n", f.suiteBin, strings.Join(mpArgs, " "))
		mp := lab.RunSuite(lab.SuiteOptions{Bin: f.suiteBin, Args: mpArgs, Stall: f.stall, Timeout: f.timeout, TargetDone: targetDone, Log: log})
		sr.Duration += mp.Duration
		if mp.Aborted != "" {
			sr.Aborted = "MultipathIO run: " + mp.Aborted
		}
		mpResults, _, err := conformance.Parse(bytes.NewReader(mp.Stdout), f.family)
		if err != nil && !errors.Is(err, conformance.ErrNoTests) {
			return err
		}
		results = conformance.Replace(results, mpResults)
	}
	if f.test == "" {
		why := sr.Aborted
		if why == "" {
			why = fmt.Sprintf("iscsi-test-cu stopped early (%v)", sr.ExitErr)
		}
		list, err := listTests(f)
		if err != nil {
			return err
		}
		results = conformance.Complete(results, list, why)
	}
	if len(results) == 0 {
		keep = true
		return fmt.Errorf("iscsi-test-cu ran no test (%v): is the URL %s right?\n%s", sr.ExitErr, t.URL, lab.Tail(logPath, 20))
	}
	if f.chap && f.target == "tandem" && f.test == "" && sr.Aborted == "" {
		cr, d, err := runCHAP(f, log)
		if err != nil {
			keep = true
			return err
		}
		sr.Duration += d
		results = append(results, cr...)
	}
	for _, r := range results {
		if r.Reason != "" {
			fmt.Fprintf(w, "%s %s  %s\n", r.Status, r.Name, r.Reason)
		} else {
			fmt.Fprintf(w, "%s %s\n", r.Status, r.Name)
		}
	}
	counts := conformance.Count(results)
	rep := report{
		Target: f.target, URL: t.URL, Family: f.family, Started: started.UTC(),
		DurationSeconds: sr.Duration.Seconds(), Aborted: sr.Aborted,
		Passed: counts.Passed, Failed: counts.Failed, Skipped: counts.Skipped,
		Results: results, CUnit: summary,
	}
	var failure error
	if sr.Aborted != "" {
		keep = true
		fmt.Fprintf(w, "ABORTED: %s\n", sr.Aborted)
		if t.LogPath != "" {
			fmt.Fprintln(w, lab.Tail(t.LogPath, 20))
		}
		failure = errGate
	}
	if f.gate {
		v := conformance.Gate(results, exp.failures, exp.skips, exp.baseline)
		rep.Gate = &v
		v.Report(w)
		if !v.OK() {
			keep = true
			failure = errGate
		}
	}
	if f.updateBaseline && sr.Aborted == "" {
		if err := os.WriteFile(baselinePath(f), conformance.FormatBaseline(results), 0o644); err != nil {
			return fmt.Errorf("write baseline: %w", err)
		}
		fmt.Fprintf(w, "wrote %d passing tests to %s\n", counts.Passed, baselinePath(f))
	}
	if f.jsonPath != "" {
		b, err := json.MarshalIndent(rep, "", "  ")
		if err != nil {
			return err
		}
		if err := os.WriteFile(f.jsonPath, append(b, '\n'), 0o644); err != nil {
			return fmt.Errorf("write --json: %w", err)
		}
	}
	fmt.Fprintf(w, "suite took %.1fs against %s (%s)\n", sr.Duration.Seconds(), f.target, t.URL)
	fmt.Fprintln(w, counts.String())
	return failure
}

func baselinePath(f *flags) string {
	if f.baseline != "" {
		return f.baseline
	}
	return filepath.Join(f.root, "e2e", "conformance", "baseline.txt")
}

// expectations are the committed files the gate compares with.
type expectations struct {
	failures, skips []conformance.Expectation
	baseline        []string
}

func loadExpectations(f *flags) (expectations, error) {
	var e expectations
	if f.root == "" {
		r, err := findRoot()
		if err != nil {
			return e, err
		}
		f.root = r
	}
	read := func(flag, name string) ([]conformance.Expectation, error) {
		p := flag
		if p == "" {
			p = filepath.Join(f.root, "e2e", "conformance", name)
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return nil, fmt.Errorf("read %s: %w", name, err)
		}
		list, err := conformance.ParseExpected(bytes.NewReader(b))
		if err != nil {
			return nil, fmt.Errorf("%s: %w", p, err)
		}
		return list, nil
	}
	var err error
	if e.failures, err = read(f.expected, "expected-failures.txt"); err != nil {
		return e, err
	}
	if e.skips, err = read(f.skips, "skips.txt"); err != nil {
		return e, err
	}
	bb, err := os.ReadFile(baselinePath(f))
	if err != nil {
		return e, fmt.Errorf("read baseline: %w", err)
	}
	if e.baseline, err = conformance.ParseBaseline(bytes.NewReader(bb)); err != nil {
		return e, err
	}
	return e, nil
}

// listTests asks the suite for the names of the family's tests, so that
// tests an aborted run never reached still show up (as failures).
func listTests(f *flags) ([]string, error) {
	out, err := exec.Command(f.suiteBin, "--list").Output()
	if err != nil {
		return nil, fmt.Errorf("%s --list: %w", f.suiteBin, err)
	}
	names, err := conformance.ParseList(bytes.NewReader(out), f.family)
	if err != nil {
		return nil, err
	}
	if len(names) == 0 {
		return nil, fmt.Errorf("%s --list shows no test in family %q", f.suiteBin, f.family)
	}
	return names, nil
}

// suiteArgs are iscsi-test-cu's arguments for one run; multipath gives
// it the LUN's URL twice.
func suiteArgs(f *flags, selector, url string, multipath bool) []string {
	args := []string{"--dataloss", "--allow-sanitize", "--test", selector, "--initiator-name", f.initiator, "--initiator-name-2", f.initiator2, url}
	if multipath {
		args = append(args, url)
	}
	return args
}
