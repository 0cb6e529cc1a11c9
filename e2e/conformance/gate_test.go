package conformance

import (
	"bytes"
	"os"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestGate(t *testing.T) {
	results := []Result{
		{Name: "ALL.A.Pass", Status: Pass},
		{Name: "ALL.A.NewPass", Status: Pass},
		{Name: "ALL.A.WasExpected", Status: Pass},
		{Name: "ALL.A.Broken", Status: Fail, Reason: "boom"},
		{Name: "ALL.ProutRegister.X", Status: Fail, Reason: "no PR"},
		{Name: "ALL.A.NowSkipped", Status: Skip, Reason: "not implemented"},
		{Name: "ALL.B.ListedSkip", Status: Skip, Reason: "not removable"},
		{Name: "ALL.B.NewSkip", Status: Skip, Reason: "not implemented"},
		{Name: "ALL.B.SkipRuns", Status: Pass},
	}
	expected, err := ParseExpected(strings.NewReader("# comment\n\nALL.ProutRegister.* persistent reservations\nALL.A.WasExpected used to fail\n"))
	require.NoError(t, err)
	skips, err := ParseExpected(strings.NewReader("ALL.B.ListedSkip removable media only\nALL.A.NowSkipped was skipped\nALL.B.SkipRuns needed a feature\n"))
	require.NoError(t, err)
	baseline, err := ParseBaseline(strings.NewReader("# header\nALL.A.Pass\nALL.A.NowSkipped\nALL.A.Gone\nALL.B.SkipRuns\n"))
	require.NoError(t, err)

	v := Gate(results, expected, skips, baseline)
	assert.False(t, v.OK())
	assert.Equal(t, []Result{{Name: "ALL.A.Broken", Status: Fail, Reason: "boom"}}, v.Unexpected)
	assert.Equal(t, []Result{
		{Name: "ALL.A.NowSkipped", Status: Skip, Reason: "not implemented"},
		{Name: "ALL.A.Gone", Status: Fail, Reason: "in baseline but missing from this run"},
	}, v.Regressions)
	assert.Equal(t, []Result{{Name: "ALL.ProutRegister.X", Status: Fail, Reason: "no PR (expected: persistent reservations)"}}, v.Tolerated)
	assert.Equal(t, []string{"ALL.A.WasExpected"}, v.NowPassing)
	assert.Equal(t, []Result{{Name: "ALL.B.NewSkip", Status: Skip, Reason: "not implemented"}}, v.UnlistedSkips,
		"a skip nobody listed fails the gate; a listed one does not")
	assert.Equal(t, []string{"ALL.B.SkipRuns"}, v.SkipsNowRun)
	assert.Equal(t, []string{"ALL.A.NewPass", "ALL.A.WasExpected"}, v.NewPasses)

	var out bytes.Buffer
	v.Report(&out)
	assert.Contains(t, out.String(), "UNEXPECTED FAILURES")
	assert.Contains(t, out.String(), "REGRESSIONS")
	assert.Contains(t, out.String(), "UNLISTED SKIPS")
	assert.Contains(t, out.String(), "remove them from skips.txt")
	assert.Contains(t, out.String(), "gate: FAILED (1 unexpected failures, 2 regressions, 1 unlisted skips)")

	ok := Gate(results[:3], expected, skips, []string{"ALL.A.Pass"})
	assert.True(t, ok.OK())
	out.Reset()
	ok.Report(&out)
	assert.Contains(t, out.String(), "gate: OK")
}

func TestParseExpectedErrors(t *testing.T) {
	_, err := ParseExpected(strings.NewReader("ALL.A.B\n"))
	assert.ErrorContains(t, err, "line 1")
	assert.ErrorContains(t, err, "no reason")
	_, err = ParseExpected(strings.NewReader("ALL.[ bad pattern\n"))
	assert.ErrorContains(t, err, "bad pattern")
}

func TestFormatBaselineRoundTrip(t *testing.T) {
	rs := []Result{{Name: "ALL.B.X", Status: Pass}, {Name: "ALL.A.Y", Status: Pass}, {Name: "ALL.C.Z", Status: Skip}}
	b := FormatBaseline(rs)
	names, err := ParseBaseline(bytes.NewReader(b))
	require.NoError(t, err)
	assert.Equal(t, []string{"ALL.A.Y", "ALL.B.X"}, names)
}

// TestCommittedFiles keeps the committed expectation files parseable.
func TestCommittedFiles(t *testing.T) {
	b, err := os.ReadFile("expected-failures.txt")
	require.NoError(t, err)
	_, err = ParseExpected(bytes.NewReader(b))
	require.NoError(t, err)
	b, err = os.ReadFile("skips.txt")
	require.NoError(t, err)
	_, err = ParseExpected(bytes.NewReader(b))
	require.NoError(t, err)
	b, err = os.ReadFile("baseline.txt")
	require.NoError(t, err)
	_, err = ParseBaseline(bytes.NewReader(b))
	require.NoError(t, err)
}
