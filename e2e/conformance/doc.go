// Package conformance turns the output of libiscsi's iscsi-test-cu into one
// verdict per test and gates a run against the committed expectations.
//
// It is pure: the harness in e2e/cmd/conformance runs the target and the
// suite and hands the captured output to Parse, Complete and Gate.
//
// CUnit reports a skipped test as passed, so a test whose output contains
// "[SKIPPED]" counts as SKIP. A test fails when CUnit says "FAILED" and
// also when libiscsi logged "[FAILED]" in it, since some of its tests log
// a failed check and still end in CU_PASS.
//
// The committed files next to this package:
//
//   - expected-failures.txt: "NAME reason..." per line; tests allowed to
//     fail. NAME may be a path.Match pattern such as ALL.ProutRegister.*.
//   - skips.txt: the same format; the tests allowed to skip, each with
//     why tandem does not offer what it needs. A skip not listed fails
//     the gate, so a feature cannot silently go missing.
//   - baseline.txt: one NAME per line, tests that passed before; one that
//     now fails or is skipped is a regression.
package conformance
