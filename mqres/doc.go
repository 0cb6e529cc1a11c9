// Package mqres is the IBM MQ resource: it starts, stops and monitors one
// queue manager through MQ's documented control commands (strmqm, endmqm,
// dspmq, dspmqinf), so tandem-agent, heartbeat's resource.d (cmd/mq) and
// Pacemaker (cmd/ocf-ibmmq, ocf:tandem:ibmmq) share one implementation.
//
// Decisions are pure: ParseDspmq maps dspmq output to a QMStatus and
// QMStatus.State folds it into running/stopped/failed. I/O goes through a
// Runner (commands) and a ProcTable (the process sweep of the stop path), so
// tests drive the resource against the stand-in (mqrestest), a test
// double of MQ's command-line contract, never against a real MQ.
package mqres
