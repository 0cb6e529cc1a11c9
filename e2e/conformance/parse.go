package conformance

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"regexp"
	"strings"
)

// Status is a test's verdict.
type Status string

// The verdicts, as printed in the table.
const (
	Pass Status = "PASS"
	Fail Status = "FAIL"
	Skip Status = "SKIP"
)

// Result is one test's verdict.
type Result struct {
	// Name is FAMILY.Suite.Test, what iscsi-test-cu -t accepts.
	Name   string `json:"name"`
	Status Status `json:"status"`
	// Reason is the skip message, or the first failure message.
	Reason string `json:"reason,omitempty"`
}

// Summary is the CUnit "Run Summary" test line, when present.
type Summary struct {
	Total, Ran, Passed, Failed int
}

// Counts tallies results.
type Counts struct {
	Passed, Failed, Skipped int
}

// String is the final line of a run, exactly "N passed, N failed, N skipped".
func (c Counts) String() string {
	return fmt.Sprintf("%d passed, %d failed, %d skipped", c.Passed, c.Failed, c.Skipped)
}

// Count tallies results by status.
func Count(results []Result) Counts {
	var c Counts
	for _, r := range results {
		switch r.Status {
		case Pass:
			c.Passed++
		case Fail:
			c.Failed++
		case Skip:
			c.Skipped++
		}
	}
	return c
}

// NoVerdict is the reason given to a test whose output stops before CUnit
// printed a verdict: the suite was killed or crashed inside it.
const NoVerdict = "no verdict: the suite stopped inside this test"

var (
	summaryRE = regexp.MustCompile(`^\s+tests\s+(\d+)\s+(\d+)\s+(\d+)\s+(\d+)`)
	assertRE  = regexp.MustCompile(`^\s+\d+\. (.*)$`)
)

// ErrNoTests is returned by Parse when the output holds no test at all,
// typically because iscsi-test-cu could not log in.
var ErrNoTests = errors.New("no tests in the iscsi-test-cu output")

// Parse reads iscsi-test-cu verbose output (its stdout) and returns one
// result per test in output order, named family.Suite.Test, and the CUnit
// run summary (nil when the output was cut short).
func Parse(r io.Reader, family string) ([]Result, *Summary, error) {
	p := parser{family: family, lastFailed: -1}
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64*1024), 4*1024*1024)
	for sc.Scan() {
		p.line(sc.Text())
	}
	if err := sc.Err(); err != nil {
		return nil, nil, fmt.Errorf("read iscsi-test-cu output: %w", err)
	}
	p.close(false)
	if len(p.results) == 0 {
		return nil, p.summary, ErrNoTests
	}
	return p.results, p.summary, nil
}

type parser struct {
	family  string
	suite   string
	results []Result
	summary *Summary
	done    bool // past the run summary

	open       bool // a test started and has no verdict yet
	name       string
	skipped    bool
	skipReason string
	failReason string
	lastFailed int // index of the last FAIL result, for its assertion lines; -1 none
}

func (p *parser) line(s string) {
	if p.done {
		return
	}
	switch {
	case strings.HasPrefix(s, "Suite: "):
		p.close(false)
		p.suite = strings.TrimSpace(strings.TrimPrefix(s, "Suite: "))
		return
	case strings.HasPrefix(s, "  Test: "):
		p.close(false)
		rest := strings.TrimPrefix(s, "  Test: ")
		name, out, _ := strings.Cut(rest, " ...")
		p.open = true
		p.name = p.family + "." + p.suite + "." + strings.TrimSpace(name)
		p.skipped, p.skipReason, p.failReason = false, "", ""
		p.content(out)
		return
	case strings.HasPrefix(s, "Run Summary:"):
		p.close(false)
		return
	}
	if m := summaryRE.FindStringSubmatch(s); m != nil && !p.open {
		var sum Summary
		fmt.Sscan(m[1]+" "+m[2]+" "+m[3]+" "+m[4], &sum.Total, &sum.Ran, &sum.Passed, &sum.Failed)
		p.summary = &sum
		p.done = true
		return
	}
	if !p.open {
		// CUnit lists the failed assertions after FAILED.
		if m := assertRE.FindStringSubmatch(s); m != nil && p.lastFailed >= 0 {
			if r := &p.results[p.lastFailed]; r.Reason == "" {
				r.Reason = strings.TrimSpace(m[1])
			}
		}
		return
	}
	p.content(s)
}

// content handles output that belongs to the open test.
func (p *parser) content(s string) {
	switch {
	case strings.HasPrefix(s, "passed"):
		p.close(true)
		return
	case strings.HasPrefix(s, "FAILED"):
		p.closeFailed()
		return
	}
	if _, after, ok := strings.Cut(s, "[SKIPPED]"); ok && !p.skipped {
		p.skipped = true
		p.skipReason = strings.TrimSpace(after)
	}
	if _, after, ok := strings.Cut(s, "[FAILED]"); ok && p.failReason == "" {
		p.failReason = strings.TrimSpace(after)
	}
}

// close ends the open test; passed says CUnit printed "passed".
func (p *parser) close(passed bool) {
	if !p.open {
		return
	}
	p.open = false
	p.lastFailed = -1
	r := Result{Name: p.name}
	switch {
	case !passed:
		r.Status, r.Reason = Fail, NoVerdict
	case p.failReason != "":
		// libiscsi logs [FAILED] where a check failed but some of its
		// tests go on to CU_PASS: a failure all the same.
		r.Status, r.Reason = Fail, p.failReason
	case p.skipped:
		r.Status, r.Reason = Skip, p.skipReason
	default:
		r.Status = Pass
	}
	p.results = append(p.results, r)
	if r.Status == Fail {
		p.lastFailed = len(p.results) - 1
	}
}

func (p *parser) closeFailed() {
	p.open = false
	p.results = append(p.results, Result{Name: p.name, Status: Fail, Reason: p.failReason})
	p.lastFailed = len(p.results) - 1
}

// ParseList reads `iscsi-test-cu -l` output and returns the test names of
// one family (FAMILY.Suite.Test), in listing order.
func ParseList(r io.Reader, family string) ([]string, error) {
	var names []string
	sc := bufio.NewScanner(r)
	for sc.Scan() {
		s := strings.TrimSpace(sc.Text())
		if strings.HasPrefix(s, family+".") && strings.Count(s, ".") == 2 {
			names = append(names, s)
		}
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("read test list: %w", err)
	}
	return names, nil
}

// Complete returns results extended with a FAIL for every listed test that
// has no result, with the given reason (why the run stopped). Results keep
// their order; the missing ones follow in list order.
func Complete(results []Result, all []string, reason string) []Result {
	seen := make(map[string]bool, len(results))
	for _, r := range results {
		seen[r.Name] = true
	}
	out := append([]Result(nil), results...)
	for _, n := range all {
		if !seen[n] {
			out = append(out, Result{Name: n, Status: Fail, Reason: "not run: " + reason})
		}
	}
	return out
}

// Replace returns results with each test that also appears in newer taken
// from newer (a second run of one suite under other conditions); tests
// only in newer are appended.
func Replace(results, newer []Result) []Result {
	at := make(map[string]int, len(results))
	out := append([]Result(nil), results...)
	for i, r := range out {
		at[r.Name] = i
	}
	for _, r := range newer {
		if i, ok := at[r.Name]; ok {
			out[i] = r
		} else {
			out = append(out, r)
		}
	}
	return out
}
