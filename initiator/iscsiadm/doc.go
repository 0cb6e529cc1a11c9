// Package iscsiadm drives open-iscsi's iscsiadm(8) for the kernel iSCSI
// initiator: discovery (with CHAP, through discoverydb), node records with
// one-way and mutual CHAP, login and logout, the session list with the
// block devices of each LUN, the replacement timeout used during failover,
// and waiting for a LUN's /dev node.
//
// It builds on github.com/dell/goiscsi (its Target and Session types, its
// initiator name reader) and adds what that package lacks: a configurable
// binary path, a context deadline on every call, errors that carry
// iscsiadm's exit code and message (*OpError, errors.Is with ExitCode),
// and secrets that never reach logs or errors. goiscsi's own calls print
// to stdout and have neither; tests run the fake iscsiadm of
// iscsiadmtest instead of goiscsi's package-global mock.
//
// Order matters with open-iscsi: discovery rewrites the node records it
// finds and resets their CHAP settings, so set node CHAP after discovery
// (Client.Setup does).
package iscsiadm
