package conformance

import (
	"bytes"
	"os"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func readTestdata(t *testing.T, name string) []byte {
	t.Helper()
	b, err := os.ReadFile("testdata/" + name)
	require.NoError(t, err)
	return b
}

func find(t *testing.T, rs []Result, name string) Result {
	t.Helper()
	for _, r := range rs {
		if r.Name == name {
			return r
		}
	}
	t.Fatalf("no result for %s", name)
	return Result{}
}

// TestParseTgt checks the parser against a real run of iscsi-test-cu 1.19.0
// -t ALL against tgt 1.0.85: CUnit says 222 passed, 8 failed; 62 of the
// "passed" are skips and 2 logged [FAILED].
func TestParseTgt(t *testing.T) {
	rs, sum, err := Parse(bytes.NewReader(readTestdata(t, "tgt-1.0.85-all.txt")), "ALL")
	require.NoError(t, err)
	require.Len(t, rs, 230)
	require.NotNil(t, sum)
	assert.Equal(t, Summary{Total: 230, Ran: 230, Passed: 222, Failed: 8}, *sum)
	c := Count(rs)
	assert.Equal(t, Counts{Passed: 158, Failed: 10, Skipped: 62}, c)
	assert.Equal(t, "158 passed, 10 failed, 62 skipped", c.String())
	assert.Equal(t, c.Passed+c.Skipped+2, sum.Passed)
	assert.Equal(t, c.Failed-2, sum.Failed)

	list, err := ParseList(bytes.NewReader(readTestdata(t, "list-1.19.0.txt")), "ALL")
	require.NoError(t, err)
	require.Len(t, list, 230)
	for i, r := range rs {
		assert.Equal(t, list[i], r.Name, "output order is list order")
	}

	assert.Equal(t, Result{Name: "ALL.Inquiry.Standard", Status: Pass}, find(t, rs, "ALL.Inquiry.Standard"))
	assert.Equal(t, Result{Name: "ALL.CompareAndWrite.Simple", Status: Skip, Reason: "COMPAREANDWRITE is not implemented."},
		find(t, rs, "ALL.CompareAndWrite.Simple"))
	assert.Equal(t, Result{Name: "ALL.GetLBAStatus.BeyondEol", Status: Fail,
		Reason: "GET_LBA_STATUS successful but should have failed with ILLEGAL_REQUEST(0x05)/LBA_OUT_OF_RANGE(0x2100)"},
		find(t, rs, "ALL.GetLBAStatus.BeyondEol"))
	// A [FAILED] log line in a test CUnit passed makes it fail: tgt
	// refuses WRITE SAME with UNMAP and the test still ends in CU_PASS.
	assert.Equal(t, Result{Name: "ALL.WriteSame10.UnmapVPD", Status: Fail,
		Reason: "WRITESAME10 command failed with status 2 / sense key ILLEGAL_REQUEST(0x05) / ASCQ INVALID_FIELD_IN_CDB(0x2400)"},
		find(t, rs, "ALL.WriteSame10.UnmapVPD"))
	// Output after "passed" on the same line belongs to no test.
	assert.Equal(t, Pass, find(t, rs, "ALL.Reserve6.LUNReset").Status)
	// Multi-line test output with the message in the middle.
	assert.Equal(t, Result{Name: "ALL.Reserve6.2Initiators", Status: Fail,
		Reason: "MODESENSE6 successful but should have failed with NO SENSE(0x00)/NO ASCQ(0x0000)"},
		find(t, rs, "ALL.Reserve6.2Initiators"))
	assert.Equal(t, Skip, find(t, rs, "ALL.Reserve6.TargetColdReset").Status)
	// A failure without a [FAILED] message takes the first assertion.
	assert.Equal(t, Result{Name: "ALL.iSCSIdatasn.iSCSIDataSnInvalid", Status: Fail,
		Reason: "test_iscsi_datasn_invalid.c:98  - CU_ASSERT_NOT_EQUAL(ret,0)"},
		find(t, rs, "ALL.iSCSIdatasn.iSCSIDataSnInvalid"))
}

// TestParseTruncated checks a run killed inside a test (the watchdog's
// case): the open test fails with NoVerdict, Complete fills in the rest.
func TestParseTruncated(t *testing.T) {
	full := string(readTestdata(t, "tgt-1.0.85-all.txt"))
	cut := full[:strings.Index(full, "  Test: AllocLength ...")+len("  Test: AllocLength ...")]
	rs, sum, err := Parse(strings.NewReader(cut), "ALL")
	require.NoError(t, err)
	assert.Nil(t, sum)
	last := rs[len(rs)-1]
	assert.Equal(t, Result{Name: "ALL.Inquiry.AllocLength", Status: Fail, Reason: NoVerdict}, last)
	assert.Equal(t, Counts{Passed: 2, Failed: 2, Skipped: 12}, Count(rs))

	list, err := ParseList(bytes.NewReader(readTestdata(t, "list-1.19.0.txt")), "ALL")
	require.NoError(t, err)
	all := Complete(rs, list, "target died")
	require.Len(t, all, 230)
	assert.Equal(t, Result{Name: "ALL.Inquiry.EVPD", Status: Fail, Reason: "not run: target died"}, find(t, all, "ALL.Inquiry.EVPD"))
	assert.Equal(t, last, find(t, all, "ALL.Inquiry.AllocLength"))
}

func TestParseNoTests(t *testing.T) {
	_, _, err := Parse(strings.NewReader("iscsi_connect failed. Failed to connect to 127.0.0.1\n"), "ALL")
	assert.ErrorIs(t, err, ErrNoTests)
}

func TestParseSynthetic(t *testing.T) {
	out := "\nSuite: S\n" +
		"  Test: A ...passed\n" +
		"  Test: B ...    some log\n    [SKIPPED] not here\npassed\n" +
		"  Test: C ...FAILED\n    1. x.c:1  - CU_ASSERT(0)\n    2. x.c:2  - CU_ASSERT(1)\n" +
		"  Test: D ...  [FAILED] boom\n    [SKIPPED] then skipped\nFAILED\n" +
		"  Test: E ...\n" +
		"  Test: G ...  [FAILED] logged\npassed\n"
	rs, _, err := Parse(strings.NewReader(out), "F")
	require.NoError(t, err)
	assert.Equal(t, []Result{
		{Name: "F.S.A", Status: Pass},
		{Name: "F.S.B", Status: Skip, Reason: "not here"},
		{Name: "F.S.C", Status: Fail, Reason: "x.c:1  - CU_ASSERT(0)"},
		{Name: "F.S.D", Status: Fail, Reason: "boom"},
		{Name: "F.S.E", Status: Fail, Reason: NoVerdict},
		{Name: "F.S.G", Status: Fail, Reason: "logged"},
	}, rs)
}

func FuzzParse(f *testing.F) {
	f.Add(readTestdataF(f, "tgt-1.0.85-all.txt"))
	f.Add([]byte("Suite: S\n  Test: A ...passed\n"))
	f.Add([]byte("  Test: A ...\n    1. orphan assertion\n"))
	f.Add([]byte("    1. assertion before any test\nSuite: \n  Test:  ...FAILED\n"))
	f.Fuzz(func(t *testing.T, b []byte) {
		rs, _, err := Parse(bytes.NewReader(b), "ALL")
		if err != nil {
			return
		}
		c := Count(rs)
		if c.Passed+c.Failed+c.Skipped != len(rs) {
			t.Fatalf("counts %v do not add up to %d results", c, len(rs))
		}
	})
}

func readTestdataF(f *testing.F, name string) []byte {
	b, err := os.ReadFile("testdata/" + name)
	if err != nil {
		f.Fatal(err)
	}
	return b
}

// TestParseKilled checks real output of a run whose target (tgtd) was
// killed with SIGKILL inside ALL.Reserve6.LUNReset.
func TestParseKilled(t *testing.T) {
	rs, sum, err := Parse(bytes.NewReader(readTestdata(t, "tgt-1.0.85-killed.txt")), "ALL")
	require.NoError(t, err)
	assert.Nil(t, sum)
	assert.Equal(t, Result{Name: "ALL.Reserve6.LUNReset", Status: Fail, Reason: NoVerdict}, rs[len(rs)-1])
	list, err := ParseList(bytes.NewReader(readTestdata(t, "list-1.19.0.txt")), "ALL")
	require.NoError(t, err)
	all := Complete(rs, list, "the target exited")
	assert.Len(t, all, 230)
	assert.Equal(t, Counts{Passed: 72, Failed: 129, Skipped: 29}, Count(all))
}

func TestReplace(t *testing.T) {
	a := []Result{{Name: "ALL.A.x", Status: Pass}, {Name: "ALL.M.y", Status: Skip, Reason: "no multipath"}}
	b := []Result{{Name: "ALL.M.y", Status: Pass}, {Name: "ALL.M.z", Status: Fail}}
	got := Replace(a, b)
	assert.Equal(t, []Result{{Name: "ALL.A.x", Status: Pass}, {Name: "ALL.M.y", Status: Pass}, {Name: "ALL.M.z", Status: Fail}}, got)
	assert.Equal(t, Skip, a[1].Status, "the input is not modified")
}
