// Package itest holds the integration tests of tandem-target: they build
// the daemon once, start it as a child process on 127.0.0.1 with a
// generated configuration, and drive it with the native initiator
// (github.com/tandem-ha/tandem/initiator), hand-built login PDUs and the
// libiscsi command line tools. The package has no code of its own.
package itest
