// Package e2e is tandem's lab: the conformance harness (cmd/conformance,
// which runs libiscsi's iscsi-test-cu against tandem-target or tgt and
// gates the result), the demo (cmd/tandem-demo) and, later, multi-node
// scenarios in network namespaces and qemu VMs.
package e2e
