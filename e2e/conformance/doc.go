// Package conformance turns the output of libiscsi's iscsi-test-cu into one
// verdict per test and gates a run against the committed expectations.
//
// It is pure: the harness in e2e/cmd/conformance runs the target and the
// suite and hands the captured output to Parse, Complete and Gate.
//
// CUnit reports a skipped test as passed, so a test whose output contains
// "[SKIPPED]" counts as SKIP; the verdict itself is CUnit's "passed" or
// "FAILED" that ends each test, not libiscsi's "[FAILED]" log lines, which
// can also appear in passing tests.
//
// The committed files next to this package:
//
//   - expected-failures.txt: "NAME reason..." per line; tests allowed to
//     fail. NAME may be a path.Match pattern such as ALL.ProutRegister.*.
//   - baseline.txt: one NAME per line, tests that passed before; one that
//     now fails or is skipped is a regression.
package conformance
