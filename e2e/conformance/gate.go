package conformance

import (
	"bufio"
	"fmt"
	"io"
	"path"
	"sort"
	"strings"
)

// Expectation is one line of expected-failures.txt.
type Expectation struct {
	// Pattern is a test name or a path.Match pattern (ALL.ProutRegister.*).
	Pattern string
	Reason  string
}

// ParseExpected reads expected-failures.txt or skips.txt: "NAME
// reason..." per line, blank lines and # comments ignored. Every entry
// needs a reason so the file documents why each failure or skip is
// tolerated.
func ParseExpected(r io.Reader) ([]Expectation, error) {
	var out []Expectation
	sc := bufio.NewScanner(r)
	for n := 1; sc.Scan(); n++ {
		s := strings.TrimSpace(sc.Text())
		if s == "" || strings.HasPrefix(s, "#") {
			continue
		}
		name, reason, _ := strings.Cut(s, " ")
		reason = strings.TrimSpace(reason)
		if reason == "" {
			return nil, fmt.Errorf("expected failures line %d: %q has no reason: write `NAME why it may fail`", n, name)
		}
		if _, err := path.Match(name, ""); err != nil {
			return nil, fmt.Errorf("expected failures line %d: bad pattern %q: %w", n, name, err)
		}
		out = append(out, Expectation{Pattern: name, Reason: reason})
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("read expected failures: %w", err)
	}
	return out, nil
}

// ParseBaseline reads baseline.txt: one test name per line, blank lines and
// # comments ignored.
func ParseBaseline(r io.Reader) ([]string, error) {
	var out []string
	sc := bufio.NewScanner(r)
	for sc.Scan() {
		s := strings.TrimSpace(sc.Text())
		if s == "" || strings.HasPrefix(s, "#") {
			continue
		}
		name, _, _ := strings.Cut(s, " ")
		out = append(out, name)
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("read baseline: %w", err)
	}
	return out, nil
}

// FormatBaseline returns baseline.txt content listing the passing tests of
// results, sorted, under a header saying how to regenerate it.
func FormatBaseline(results []Result) []byte {
	var names []string
	for _, r := range results {
		if r.Status == Pass {
			names = append(names, r.Name)
		}
	}
	sort.Strings(names)
	var b strings.Builder
	b.WriteString("# Tests that passed against tandem-target; one now failing or skipped fails the gate.\n")
	b.WriteString("# Regenerate after an improvement: make conformance-baseline\n")
	for _, n := range names {
		b.WriteString(n)
		b.WriteByte('\n')
	}
	return []byte(b.String())
}

// Verdict is the outcome of Gate.
type Verdict struct {
	// Unexpected are failures no expectation covers.
	Unexpected []Result `json:"unexpected,omitempty"`
	// Regressions are baseline tests that now fail, are skipped or did
	// not run.
	Regressions []Result `json:"regressions,omitempty"`
	// Tolerated are failures an expectation covers.
	Tolerated []Result `json:"tolerated,omitempty"`
	// NowPassing are exact expected-failure entries whose test passed:
	// the entry can go.
	NowPassing []string `json:"now_passing,omitempty"`
	// UnlistedSkips are skips no skips.txt entry covers: a feature the
	// suite found missing that nobody decided to leave out.
	UnlistedSkips []Result `json:"unlisted_skips,omitempty"`
	// SkipsNowRun are exact skips.txt entries whose test ran and passed:
	// the entry can go (and the test joins the baseline).
	SkipsNowRun []string `json:"skips_now_run,omitempty"`
	// NewPasses are passing tests missing from the baseline.
	NewPasses []string `json:"new_passes,omitempty"`
}

// OK reports whether the gate passes.
func (v Verdict) OK() bool {
	return len(v.Unexpected) == 0 && len(v.Regressions) == 0 && len(v.UnlistedSkips) == 0
}

// Gate compares results with the expected failures, the allowed skips and
// the baseline.
func Gate(results []Result, expected, skips []Expectation, baseline []string) Verdict {
	var v Verdict
	byName := make(map[string]Result, len(results))
	for _, r := range results {
		byName[r.Name] = r
	}
	inBaseline := make(map[string]bool, len(baseline))
	for _, n := range baseline {
		inBaseline[n] = true
		r, ok := byName[n]
		switch {
		case !ok:
			v.Regressions = append(v.Regressions, Result{Name: n, Status: Fail, Reason: "in baseline but missing from this run"})
		case r.Status != Pass:
			v.Regressions = append(v.Regressions, r)
		}
	}
	for _, r := range results {
		switch r.Status {
		case Fail:
			if e, ok := match(expected, r.Name); ok {
				r.Reason = strings.TrimSpace(r.Reason + " (expected: " + e.Reason + ")")
				v.Tolerated = append(v.Tolerated, r)
			} else {
				v.Unexpected = append(v.Unexpected, r)
			}
		case Pass:
			if !inBaseline[r.Name] {
				v.NewPasses = append(v.NewPasses, r.Name)
			}
			for _, e := range expected {
				if e.Pattern == r.Name {
					v.NowPassing = append(v.NowPassing, r.Name)
				}
			}
			for _, e := range skips {
				if e.Pattern == r.Name {
					v.SkipsNowRun = append(v.SkipsNowRun, r.Name)
				}
			}
		case Skip:
			if _, ok := match(skips, r.Name); !ok {
				v.UnlistedSkips = append(v.UnlistedSkips, r)
			}
		}
	}
	return v
}

func match(expected []Expectation, name string) (Expectation, bool) {
	for _, e := range expected {
		if ok, _ := path.Match(e.Pattern, name); ok {
			return e, true
		}
	}
	return Expectation{}, false
}

// Report writes a human summary of v.
func (v Verdict) Report(w io.Writer) {
	section := func(title string, rs []Result) {
		if len(rs) == 0 {
			return
		}
		fmt.Fprintf(w, "%s (%d):\n", title, len(rs))
		for _, r := range rs {
			fmt.Fprintf(w, "  %s %s  %s\n", r.Status, r.Name, r.Reason)
		}
	}
	section("tolerated failures (expected-failures.txt)", v.Tolerated)
	if len(v.NowPassing) > 0 {
		fmt.Fprintf(w, "expected failures that now pass, remove them from expected-failures.txt (%d):\n", len(v.NowPassing))
		for _, n := range v.NowPassing {
			fmt.Fprintf(w, "  %s\n", n)
		}
	}
	if len(v.SkipsNowRun) > 0 {
		fmt.Fprintf(w, "listed skips that now run and pass, remove them from skips.txt (%d):\n", len(v.SkipsNowRun))
		for _, n := range v.SkipsNowRun {
			fmt.Fprintf(w, "  %s\n", n)
		}
	}
	if len(v.NewPasses) > 0 {
		fmt.Fprintf(w, "%d passing tests are not in baseline.txt yet: lock them in with `make conformance-baseline`\n", len(v.NewPasses))
	}
	section("UNEXPECTED FAILURES: fix them or list them in e2e/conformance/expected-failures.txt with a reason", v.Unexpected)
	section("REGRESSIONS: these passed before (baseline.txt) and now do not", v.Regressions)
	section("UNLISTED SKIPS: implement what they need or list them in e2e/conformance/skips.txt with the reason", v.UnlistedSkips)
	if v.OK() {
		fmt.Fprintln(w, "gate: OK")
	} else {
		fmt.Fprintf(w, "gate: FAILED (%d unexpected failures, %d regressions, %d unlisted skips)\n",
			len(v.Unexpected), len(v.Regressions), len(v.UnlistedSkips))
	}
}
